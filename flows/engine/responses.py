"""The JSON a run answers with, in Langflow's shapes.

An answer repeats each output's text several times (Langflow's shape), so it is measured before
it is rendered (``limits.json_size``, nothing written) and refused past FLOW_MAX_ANSWER_BYTES:
the body of a plain run, or, for a stream, its last event on top of the events already sent.
"""

from __future__ import annotations

from .limits import json_size
from .messages import Message
from .run import NodeResult, RunResult, output_text


def _component_output(result: NodeResult, session_id: str) -> dict:
    value = result.value
    message = value if isinstance(value, Message) else Message(text=output_text(result), session_id=session_id)
    text = message.text
    is_chat = result.node.role == "chat_output"
    return {
        "results": {result.output: message.to_dict()},
        "artifacts": {"message": text, "sender": message.sender, "sender_name": message.sender_name,
                      "files": [], "type": "text"},
        "outputs": {result.output: {"message": text, "type": "text"}},
        "logs": {result.output: []},
        "messages": [{
            "message": text, "sender": message.sender, "sender_name": message.sender_name,
            "session_id": message.session_id, "stream_url": None, "component_id": result.node.id,
            "files": [], "type": "text",
        }] if is_chat else [],
        "timedelta": None,
        "duration": None,
        "component_display_name": result.node.display_name,
        "component_id": result.node.id,
        "used_frozen_result": False,
    }


def _within_budget(result: RunResult, body: dict, framing: int = 0) -> dict:
    """Return ``body`` if it fits what the run may still answer; raise LimitExceeded otherwise."""
    if result.budget is not None:
        result.budget.charge_answer(json_size(body) + framing)
    return body


def run_response(result: RunResult, *, framing: int = 0) -> dict:
    """``POST /api/v1/run/<flow>``: read ``outputs[0].outputs[i].results.message.text``.

    ``framing``: bytes the caller adds around the body (a stream's ``end`` event)."""
    return _within_budget(result, {
        "session_id": result.session_id,
        "outputs": [{
            "inputs": {"input_value": result.input_value},
            "outputs": [_component_output(item, result.session_id) for item in result.outputs],
        }],
    }, framing)


def process_response(result: RunResult) -> dict:
    """``POST /api/v1/process/<flow>`` (the older API): the output text, and each output's by node id."""
    texts = {item.node.id: output_text(item) for item in result.outputs}
    return _within_budget(result, {
        "result": {"text": next(iter(texts.values()), ""), "outputs": texts},
        "session_id": result.session_id,
    })
