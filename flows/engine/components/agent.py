"""Agent: Langflow's tool-calling agent over the OpenAI-compatible chat-completions API.

The loop: ask the model, offering the agent's tools (OpenAI function tools); when it answers
with ``tool_calls``, run each tool and send its result back as a ``tool`` message; ask again;
stop at an answer without tool calls, or after ``max_iterations`` model calls (then the answer
is Langflow's "Agent stopped due to max iterations."). The tools are the components connected
to the agent's ``tools`` input in tool mode (``flows.engine.tools``; an agent too), plus, as in
Langflow, the current-date and calculator tools when ``add_current_date_tool`` and
``add_calculator_tool`` are on. A tool's failure is told to the model, never fails the run.

The model fields are the Language Model's (``model``, ``api_key``; ``base_url`` and
``model_name`` by tweak), with its egress rules; every call's deadline is the run's remaining
time. The system prompt's ``{current_date}`` and ``{model_name}`` are filled in. With chat
memory (``RunContext.memory``), the session's last ``n_messages`` messages come before the input.

Streamed runs send each step as it happens: ``tool_call`` (the call: ``name``, ``arguments``)
and ``tool_result`` (``output``, ``error``) events, both with the agent message's ``id``, the
node's ``node_id`` and the ``tool_call_id``; and the answer's text as ``token`` events.
"""

from __future__ import annotations

import asyncio
import datetime
from collections.abc import AsyncGenerator
from contextlib import aclosing
from dataclasses import replace
from types import MappingProxyType
from typing import Any

from .. import openai_chat
from ..limits import text_size
from ..messages import Message
from ..tools import Tool, ToolResult, ToolSpec, bound_tools, tool_name
from .base import Produced, register
from .calculator import Calculator
from .current_date import CurrentDate
from .language_model import LanguageModel
from .structured_output import as_data, conform, parse_json_answer, schema_fields

MAX_ITERATIONS = 1000
MAX_HISTORY_MESSAGES = 10_000
# More calls than this in one answer are each told to try again in a later turn.
MAX_TOOL_CALLS_PER_TURN = 32
STOPPED = "Agent stopped due to max iterations."

_CURRENT_DATE = ToolSpec(
    name="get_current_date",
    description="Returns the current date and time in the selected timezone.",
    parameters=MappingProxyType({"type": "object", "properties": {"timezone": {
        "type": "string", "title": "Timezone", "default": "UTC",
        "description": "The IANA timezone for the current date and time, e.g. UTC or Europe/Paris."}}}),
    output="current_date",
)
_CALCULATOR = ToolSpec(
    name="evaluate_expression",
    description="Perform basic arithmetic operations on a given expression.",
    parameters=MappingProxyType({"type": "object", "properties": {"expression": {
        "type": "string", "title": "Expression",
        "description": "The arithmetic expression to evaluate (e.g., '4*4*(33/22)+12-20')."}},
        "required": ["expression"]}),
    output="result",
)


@register("Agent")
class Agent(LanguageModel):
    outputs = {"response": "message_response", "structured_response": "json_response"}
    # Langflow calls an agent used as a tool "Call_Agent"; its answer is the tool's result.
    tool_outputs = {"Call_Agent_message_response": "response"}
    accepts_tools = True

    # -- What the model is given -----------------------------------------------------------------

    def system_prompt(self) -> str:
        """The instructions, their placeholders filled (str.replace: braces in JSON examples stay)."""
        prompt = self.text("system_prompt")
        replacements = {
            "{current_date}": datetime.datetime.now(datetime.UTC).strftime("%Y-%m-%d %H:%M:%S UTC"),
            "{model_name}": self.model_name(),
            "{optional_user_context}": "",
        }
        for placeholder, value in replacements.items():
            prompt = prompt.replace(placeholder, value)
        return prompt

    def tools(self) -> list[tuple[str, Tool]]:
        """Every tool with the name the model knows it by (names made unique)."""
        connected = bound_tools(self.params.get("tools"))
        if connected is None:
            raise self.fail("tools", "must be connected to components in tool mode")
        tools = list(connected)
        if self.boolean("add_current_date_tool", True):
            tools.append(self._builtin(_CURRENT_DATE, CurrentDate))
        if self.boolean("add_calculator_tool", True):
            tools.append(self._builtin(_CALCULATOR, Calculator))
        named, taken = [], set()
        for tool in tools:
            name, number = tool.name, 1
            while name in taken:
                number += 1
                suffix = f"_{number}"
                name = tool_name(tool.name[:64 - len(suffix)] + suffix)
            taken.add(name)
            named.append((name, tool))
        return named

    def _builtin(self, spec: ToolSpec, component) -> Tool:
        from ..graph import Node  # the graph imports the components

        node = Node(id=f"{self.node.id}.{spec.name}", type=component.type_names[0], display_name=spec.name,
                    component=component, params=MappingProxyType({}), fields=frozenset(), inputs=())
        return Tool(spec=spec, node=node, params=MappingProxyType({}))

    async def history(self) -> list[dict]:
        """The session's last ``n_messages`` messages (not the input itself), as chat messages;
        the oldest left out when together they would not fit the run's value limit."""
        memory = self.context.memory
        limit = int(self.number("n_messages", 100, minimum=0, maximum=MAX_HISTORY_MESSAGES, integer=True) or 0)
        if memory is None or not limit:
            return []
        budget = self.context.budget
        budget.check_time(self.node.id)
        try:
            async with asyncio.timeout(budget.remaining()):
                stored = await memory.history(limit)
        except TimeoutError:
            raise budget.out_of_time(self.node.id) from None
        current = self.params.get("input_value")
        current_id = current.id if isinstance(current, Message) else None
        room = self.value_room()
        kept: list[dict] = []
        for message in reversed(stored):
            if message.id == current_id or not message.text:
                continue
            room -= text_size(message.text)
            if room < 0:
                break
            kept.append({"role": "user" if message.sender == "User" else "assistant", "content": message.text})
        kept.reverse()
        return kept

    # -- The loop --------------------------------------------------------------------------------

    async def run_agent(self, system: str, message: Message, *, stream: bool) -> AsyncGenerator[Any, None]:
        """Yield the steps' events, then Produced(the final answer's text)."""
        named = self.tools()
        by_name = dict(named)
        definitions = [tool.spec.definition(name) for name, tool in named] or None
        messages = []
        if system:
            messages.append({"role": "system", "content": system})
        messages += await self.history()
        messages.append({"role": "user", "content": self.text("input_value")})
        iterations = int(self.number("max_iterations", 15, minimum=1, maximum=MAX_ITERATIONS, integer=True) or 15)
        for _ in range(iterations):
            request = replace(self.chat_request(), messages=messages, tools=definitions)
            reply = None
            async with aclosing(self.ask(request, message, stream=stream)) as answers:
                async for item in answers:
                    if isinstance(item, openai_chat.Reply):
                        reply = item
                    else:
                        yield item
            assert reply is not None  # every answer ends with its Reply
            if not reply.tool_calls:
                yield Produced(reply.content)
                return
            messages.append(reply.assistant_message())
            for number, call in enumerate(reply.tool_calls):
                step = {"id": message.id, "node_id": self.node.id, "tool_call_id": call.id, "name": call.name}
                yield "tool_call", {**step, "arguments": call.arguments}
                result = await self.call_tool(by_name, call, number)
                yield "tool_result", {**step, "output": result.text, "error": result.failed}
                messages.append({"role": "tool", "tool_call_id": call.id, "content": result.text})
        yield Produced(STOPPED)

    async def call_tool(self, by_name: dict[str, Tool], call: openai_chat.ToolCall, number: int) -> ToolResult:
        if number >= MAX_TOOL_CALLS_PER_TURN:
            return ToolResult(f"Error: more than {MAX_TOOL_CALLS_PER_TURN} tool calls in one answer; "
                              "make this call again in your next answer.", failed=True)
        tool = by_name.get(call.name)
        if tool is None:
            known = ", ".join(by_name) or "none"
            return ToolResult(f"Error: there is no tool named {call.name[:64]!r}; the tools are: {known}.",
                              failed=True)
        return await tool.call(call.arguments, self.context)

    async def ask(self, request: openai_chat.ChatRequest, message: Message, *,
                  stream: bool) -> AsyncGenerator[Any, None]:
        """One model call: its text pieces as ``token`` events (when streamed), then its Reply."""
        try:
            with self.egress_policy():  # the connection checks the addresses again (DNS rebinding)
                if stream:
                    async with aclosing(openai_chat.stream_chat(request)) as pieces:
                        async for piece in pieces:
                            if isinstance(piece, openai_chat.Reply):
                                yield piece
                            else:
                                yield "token", {"chunk": piece, "id": message.id, "timestamp": message.timestamp}
                else:
                    yield await openai_chat.chat(request)
        except openai_chat.ModelCallFailed as error:
            if self.context.budget.expired():  # the run's budget, not the model, set the deadline
                raise self.context.budget.out_of_time(self.node.id) from None
            raise self.model_call_failed(str(error)) from None

    # -- Outputs ---------------------------------------------------------------------------------

    async def message_response(self):
        message = self.message("", sender="Machine", sender_name="AI")
        async with aclosing(self.run_agent(self.system_prompt(), message, stream=self.context.stream)) as steps:
            async for item in steps:
                if isinstance(item, Produced):
                    message.text = item.value
                else:
                    yield item
        yield Produced(message)

    async def json_response(self):
        """The answer as Data, in the shape of ``output_schema`` when it lists fields (the
        instructions then ask for it); a model that does not answer JSON of that shape is a 502."""
        fields = schema_fields(self)
        parts = [self.system_prompt(), self.text("format_instructions")]
        if fields:
            described = "\n".join(f"- {field.name} ({field.type}{', a list' if field.multiple else ''})"
                                  f"{': ' + field.description if field.description else ''}" for field in fields)
            parts.append('Answer with JSON only: {"objects": [...]}, each object with these fields '
                         f"(null when unknown):\n{described}")
        else:
            parts.append("Answer with JSON only.")
        message = self.message("", sender="Machine", sender_name="AI")
        text = ""
        # The answer is JSON for the next component, not text for the chat: no tokens are streamed.
        async with aclosing(self.run_agent("\n\n".join(part for part in parts if part), message,
                                           stream=False)) as steps:
            async for item in steps:
                if isinstance(item, Produced):
                    text = item.value
                else:
                    yield item
        try:
            value = parse_json_answer(text)
            if fields:
                value = as_data(conform(value, fields))
            elif isinstance(value, list):
                value = {"results": value}
            elif not isinstance(value, dict):
                value = {"result": value}
        except ValueError as error:
            raise self.model_call_failed(f"the answer is not JSON of the output schema: {error}") from None
        yield Produced(value)
