"""Parser: render structured input (Data, a list of it, a Message) as text through a template.

The template is parsed once for all the items; each rendering, and the joined result, is
measured before it is built, against the run's value limit (see ``messages.DataTemplate``).
Langflow exports the current Parser as ``ParserComponent`` or ``parser`` (same fields: ``mode``
Parser/Stringify, ``pattern``, ``sep``); a DataFrame (a list of records) is one item per row.
"""

import json

from ..limits import ValueTooLarge, json_size, text_size
from ..messages import DataTemplate, Message
from .base import Component, register


def _record(item) -> dict:
    if isinstance(item, Message):
        return {"text": item.text, "sender": item.sender, "sender_name": item.sender_name}
    if isinstance(item, dict):
        return item
    return {"text": "" if item is None else str(item)}


def _stringify(item, limit: int) -> tuple[str, int]:
    """The item as text, and its size; a JSON rendering is measured before it is written."""
    if isinstance(item, Message):
        return item.text, text_size(item.text)
    if isinstance(item, (dict, list)):
        if json_size(item) > limit:
            raise ValueTooLarge(limit)
        text = json.dumps(item, ensure_ascii=False, default=str)
        return text, text_size(text)
    text = "" if item is None else str(item)
    return text, text_size(text)


class _TemplateParser(Component):
    """Shared by Langflow's current Parser and its older Parse Data."""

    input_field = "input_data"
    template_field = "pattern"

    def render(self) -> Message:
        value = self.params.get(self.input_field)
        items = value if isinstance(value, list) else [value]
        separator = self.text("sep", "\n")
        separator_size = text_size(separator)
        limit = self.value_room()
        if self.text("mode", "Parser") == "Stringify":
            separator, separator_size = "\n", 1
            render = _stringify
        else:
            try:
                template = DataTemplate(self.text(self.template_field, "{text}"))
            except ValueError as error:
                raise self.fail(self.template_field, f"cannot be applied: {error}") from None

            def render(item, room):
                return template.render(_record(item), room)

        parts: list[str] = []
        size = 0
        try:
            for item in items:
                if parts:
                    size += separator_size
                text, text_bytes = render(item, limit - size)
                size += text_bytes
                if size > limit:
                    raise ValueTooLarge(limit)
                parts.append(text)
        except ValueTooLarge:
            raise self.too_large() from None
        return self.message(separator.join(parts), sender="Machine", sender_name="AI")


@register("ParserComponent", "parser")
class Parser(_TemplateParser):
    outputs = {"parsed_text": "render"}


@register("ParseData")
class ParseData(_TemplateParser):
    input_field = "data"
    template_field = "template"
    outputs = {"text": "render"}
