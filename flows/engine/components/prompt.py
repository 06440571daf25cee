"""Prompt Template: fill ``{variable}`` placeholders (or ``{{variable}}``) of a template."""

import re

from .base import Component, register

_VARIABLE = r"[A-Za-z_][A-Za-z0-9_]*"
# Single brackets, as str.format: "{{" and "}}" are literal braces.
_SINGLE = re.compile(r"\{\{|\}\}|\{\s*(" + _VARIABLE + r")\s*\}")
# Double brackets ("use_double_brackets"): single braces are plain text, e.g. JSON examples.
_DOUBLE = re.compile(r"\{\{\s*(" + _VARIABLE + r")\s*\}\}")


def _pattern(double_brackets: bool) -> re.Pattern:
    return _DOUBLE if double_brackets else _SINGLE


def _as_bool(value) -> bool:
    return value is True or (isinstance(value, str) and value.lower() == "true")


def template_variables(params: dict) -> list[str]:
    """The variable names of the node's template, in order of first use."""
    template = params.get("template")
    if not isinstance(template, str):
        return []
    names = (match.group(1) for match in _pattern(_as_bool(params.get("use_double_brackets"))).finditer(template))
    return list(dict.fromkeys(name for name in names if name))


@register("Prompt", "Prompt Template")
class Prompt(Component):
    outputs = {"prompt": "build_prompt"}

    @classmethod
    def dynamic_fields(cls, params):
        return set(template_variables(params))

    def build_prompt(self):
        template = self.text("template")
        double = self.boolean("use_double_brackets")
        values = {name: self.text(name) for name in template_variables(self.params)}

        def fill(match: re.Match) -> str:
            name = match.group(1)
            if name is None:  # an escaped "{{" or "}}" in single-bracket mode
                return match.group(0)[0]
            return values.get(name, "")

        return self.message(_pattern(double).sub(fill, template), sender="Machine", sender_name="AI")
