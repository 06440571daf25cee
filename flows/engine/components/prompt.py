"""Prompt Template: fill ``{variable}`` placeholders (or ``{{variable}}``) of a template.

The template is read in one pass, whatever the number of variables: their names are found once
per template (shared by every node a tweak gave it), and the filled text is measured before it
is built, against the run's value limit.
"""

import re
from collections.abc import Hashable
from typing import Any

from ..limits import text_size
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


def template_variables(params: dict, memo: dict[Hashable, Any] | None = None) -> frozenset[str]:
    """The variable names of the node's template (one pass over it; once per template with ``memo``)."""
    template = params.get("template")
    if not isinstance(template, str):
        return frozenset()
    double = _as_bool(params.get("use_double_brackets"))
    key = ("prompt variables", double, template)
    if memo is not None and key in memo:
        return memo[key]
    names = frozenset(name for match in _pattern(double).finditer(template) if (name := match.group(1)))
    if memo is not None:
        memo[key] = names
    return names


@register("Prompt", "Prompt Template")
class Prompt(Component):
    outputs = {"prompt": "build_prompt"}

    @classmethod
    def dynamic_fields(cls, params, memo=None):
        return template_variables(params, memo)

    def build_prompt(self):
        """Fill the template in one pass: each variable's text is read once, and the result's
        size (the template's plus every substitution's) is checked before it is joined."""
        template = self.text("template")
        double = self.boolean("use_double_brackets")
        limit = self.value_room()
        size = text_size(template)
        if size > limit:
            raise self.too_large()
        values: dict[str, tuple[str, int]] = {}
        pieces, start = [], 0
        for match in _pattern(double).finditer(template):
            pieces.append(template[start:match.start()])
            start = match.end()
            name = match.group(1)
            if name is None:  # an escaped "{{" or "}}" in single-bracket mode
                pieces.append(match.group(0)[0])
                continue
            if name not in values:
                text = self.text(name)
                values[name] = (text, text_size(text))
            text, text_bytes = values[name]
            size += text_bytes
            if size > limit:
                raise self.too_large()
            pieces.append(text)
        pieces.append(template[start:])
        return self.message("".join(pieces), sender="Machine", sender_name="AI")
