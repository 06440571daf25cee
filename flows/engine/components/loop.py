"""Loop: Langflow's loop over Data. The engine runs its body once per item (``engine.loops``);
this component only says, at each visit, which item is current and, at the end, what was
gathered.

``data`` is a DataFrame (a list of records), one record, a Message, or a list of those; each
becomes one item (a record; a Message or a text becomes ``{"text": ...}``). At most
FLOW_MAX_ITERATIONS items: more is refused before the first iteration.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings

from ..errors import ComponentError
from ..limits import LimitExceeded
from ..loops import LOOP_STATE, LoopState
from ..messages import Message
from .base import Component, register


def _item(value: Any) -> dict | None:
    if isinstance(value, dict):
        return value
    if isinstance(value, Message):
        return {"text": value.text, "sender": value.sender, "sender_name": value.sender_name}
    if isinstance(value, str):
        return {"text": value}
    if value is None:
        return None
    return {"text": str(value)}


@register("LoopComponent")
class Loop(Component):
    outputs = {"item": "item_output", "done": "done_output"}
    # Outputs whose consumers run once per item (an edge may come back into them).
    loop_outputs = frozenset({"item"})

    def items(self) -> list[dict]:
        value = self.params.get("data")
        if value is None or value == "":
            return []
        if not isinstance(value, list):
            value = [value]
        limit = settings.FLOW_MAX_ITERATIONS
        if len(value) > limit:
            raise LimitExceeded(f"Node {self.node.id}: {len(value):,} items to loop over, more than "
                                f"FLOW_MAX_ITERATIONS ({limit:,}).", node_ids=(self.node.id,))
        items = []
        for entry in value:
            item = _item(entry)
            if item is not None:
                items.append(item)
        return items

    def state(self) -> LoopState:
        state = self.params.get(LOOP_STATE)
        if not isinstance(state, LoopState):
            raise ComponentError(f"Node {self.node.id}: a Loop runs only as part of its flow.",
                                 node_ids=(self.node.id,))
        if state.items is None:
            state.start(self.items())
        return state

    def item_output(self) -> dict | None:
        """The current item (None once every item has been through the body)."""
        return self.state().current

    def done_output(self) -> list[dict] | None:
        """What the body fed back, one row per item, once the last item is through (None before)."""
        state = self.state()
        return state.results if state.finished else None
