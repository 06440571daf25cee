"""Parser: render structured input (Data, a list of it, a Message) as text through a template."""

import json

from ..messages import Message, format_data
from .base import Component, register


def _record(item) -> dict:
    if isinstance(item, Message):
        return {"text": item.text, "sender": item.sender, "sender_name": item.sender_name}
    if isinstance(item, dict):
        return item
    return {"text": "" if item is None else str(item)}


def _stringify(item) -> str:
    if isinstance(item, Message):
        return item.text
    if isinstance(item, (dict, list)):
        return json.dumps(item, ensure_ascii=False, default=str)
    return "" if item is None else str(item)


class _TemplateParser(Component):
    """Shared by Langflow's current Parser and its older Parse Data."""

    input_field = "input_data"
    template_field = "pattern"

    def render(self) -> Message:
        value = self.params.get(self.input_field)
        items = value if isinstance(value, list) else [value]
        separator = self.text("sep", "\n")
        if self.text("mode", "Parser") == "Stringify":
            text = "\n".join(_stringify(item) for item in items)
        else:
            template = self.text(self.template_field, "{text}")
            try:
                text = separator.join(format_data(template, _record(item)) for item in items)
            except ValueError as error:
                raise self.fail(self.template_field, f"cannot be applied: {error}") from None
        return self.message(text, sender="Machine", sender_name="AI")


@register("ParserComponent")
class Parser(_TemplateParser):
    outputs = {"parsed_text": "render"}


@register("ParseData")
class ParseData(_TemplateParser):
    input_field = "data"
    template_field = "template"
    outputs = {"text": "render"}
