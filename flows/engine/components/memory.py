"""Memory Base: recall earlier messages of the flow's conversations (``RunContext.memory``).

Langflow's Memory Base searches a vector store that its server fills with a flow's chat
history. Here the memory base is that history itself, the messages Chat Input and Chat Output
stored (``flows.memory``): the messages sharing the most words with ``search_query`` come
first, of the run's session (``filter_by_session``, the default) or of all the flow's sessions.
The export's ``memory_base`` (the name of a base attached in Langflow's UI, often empty) selects
nothing else and is not required. Most often an Agent calls it as its ``retrieve_memory`` tool.
"""

from __future__ import annotations

import asyncio

from .base import Component, register

MAX_TOP_K = 100


@register("MemoryBase")
class MemoryBase(Component):
    outputs = {"retrieve_data": "retrieve_memory"}
    # As a tool (Langflow's Actions table names it after the method): retrieve_memory(search_query).
    tool_outputs = {"retrieve_memory": "retrieve_data"}

    async def retrieve_memory(self) -> list[dict]:
        """Rows ``{"content", "_score"}``, with the message's ``session_id``, ``sender``,
        ``sender_name``, ``timestamp``, ``message_id`` and ``flow_id`` when ``include_metadata``."""
        query = self.text("search_query")
        top_k = self.integer("top_k", 5, minimum=1, maximum=MAX_TOP_K)
        include_metadata = self.boolean("include_metadata", True)
        all_sessions = not self.boolean("filter_by_session", True)
        memory = self.context.memory
        if memory is None or not query.strip():
            return []  # as Langflow: an empty query asks for nothing
        budget = self.context.budget
        budget.check_time(self.node.id)
        try:
            async with asyncio.timeout(budget.remaining()):
                found = await memory.search(query, top_k, all_sessions=all_sessions, max_bytes=self.value_room())
        except TimeoutError:
            raise budget.out_of_time(self.node.id) from None
        rows = []
        for message, score in found:
            row = {"content": message.text, "_score": score}
            if include_metadata:
                row.update(session_id=message.session_id, sender=message.sender, sender_name=message.sender_name,
                           timestamp=message.timestamp, message_id=message.id, flow_id=message.flow_id)
            rows.append(row)
        return rows
