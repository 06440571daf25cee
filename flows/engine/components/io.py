"""The flow's ends: where the run's input enters and where its answer leaves."""

import json

from ..limits import ValueTooLarge
from ..memory import label_problem
from ..messages import Message, as_text
from .base import Component, Produced, register


def message_event(message: Message) -> tuple[str, dict]:
    """Langflow's ``add_message`` event (the message's fields), plus the ``message`` key
    that ``langflow-sdk``'s ``StreamChunk.text`` reads."""
    data = message.to_dict()
    data["message"] = {"text": message.text}
    return "add_message", data


async def remember(component: Component, message: Message) -> None:
    """Store ``message`` in the run's chat memory, as Langflow does when the node's
    ``should_store_message`` is on (its default) and the message has a session."""
    memory = component.context.memory
    if memory is None or not message.session_id or not component.boolean("should_store_message", True):
        return
    problem = label_problem(message)
    if problem:
        raise component.fail(*problem)
    await memory.store(message)


@register("ChatInput")
class ChatInput(Component):
    role = "chat_input"
    outputs = {"message": "message_response"}

    async def message_response(self):
        message = self.message(self.text("input_value"), sender="User", sender_name="User")
        await remember(self, message)
        yield message_event(message)
        yield Produced(message)


@register("TextInput")
class TextInput(Component):
    role = "text_input"
    outputs = {"text": "text_response"}

    def text_response(self):
        return self.message(self.text("input_value"), sender="User", sender_name="User")


@register("ChatOutput")
class ChatOutput(Component):
    role = "chat_output"
    outputs = {"message": "message_response"}

    async def message_response(self):
        value = self.params.get("input_value")
        if isinstance(value, (dict, list)):
            self.params["input_value"] = _format_data(self, value)
        message = self.message(self.text("input_value"), sender="Machine", sender_name="AI")
        await remember(self, message)
        yield message_event(message)
        yield Produced(message)


@register("TextOutput")
class TextOutput(Component):
    role = "text_output"
    outputs = {"text": "text_response"}

    def text_response(self):
        return self.message(self.text("input_value"), sender="Machine", sender_name="AI")


def _format_data(component: Component, value) -> str:
    """Render Data through the Chat Output's ``data_template`` (``{text}`` by default).

    Rows with no ``text`` under the default template (an agent's structured answer) are shown as
    a JSON block, as Langflow 1.13 does, rather than as empty lines."""
    template = component.text("data_template", "{text}") or "{text}"
    if template == "{text}" and not _any_text(value):
        return _json_block(component, value)
    try:
        return as_text(value, template=template, limit=component.value_room())
    except ValueTooLarge:
        raise component.too_large() from None
    except ValueError as error:
        raise component.fail("data_template", f"cannot be applied: {error}") from None


def _any_text(value) -> bool:
    rows = value if isinstance(value, list) else [value]
    return any(not isinstance(row, dict) or "text" in row for row in rows)


def _json_block(component: Component, value) -> str:
    try:
        text = json.dumps(value, indent=2, ensure_ascii=False, default=str)
    except (TypeError, ValueError) as error:
        raise component.fail("input_value", f"cannot be shown as JSON: {error}") from None
    block = f"```json\n{text}\n```"
    if len(block.encode()) > component.value_room():
        raise component.too_large()
    return block
