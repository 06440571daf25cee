"""Chat memory: what a run reads of, and adds to, the conversation of its flow and session.

The engine stays pure: it only knows this small async interface, carried by
``RunContext.memory`` (None when the run has no memory: then nothing is stored or read). The
server's implementation keeps messages in its database (``flows.memory``), one conversation
per flow and ``session_id``, as Langflow does.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

from .messages import Message

ORDERS = ("Ascending", "Descending")
SENDERS = ("Machine", "User")
# The longest session id, sender and sender name a stored message may have (the columns' sizes).
MAX_LABEL_CHARS = 255


@runtime_checkable
class ChatMemory(Protocol):
    """The messages of one flow, as seen from one run (whose session is ``history``'s)."""

    async def store(self, message: Message) -> None:
        """Keep ``message`` in the conversation of its flow and ``message.session_id``. It may
        be written when the run ends: this run's own reads need not see it."""

    async def history(self, limit: int, *, sender: str | None = None,
                      order: str = "Ascending") -> list[Message]:
        """The latest ``limit`` messages of the run's session (of ``sender`` only, if given),
        oldest first (``"Ascending"``) or newest first (``"Descending"``)."""

    async def search(self, query: str, limit: int, *, all_sessions: bool = False,
                     max_bytes: int | None = None) -> list[tuple[Message, float]]:
        """At most ``limit`` earlier messages that best match ``query``'s words, best first,
        each with its score (0 to 1]: of the run's session, or of every session of the flow.
        Messages this run stored are left out (they are the question, not a memory). The
        messages stop before their texts add up to more than ``max_bytes``."""


def label_problem(message: Message) -> tuple[str, str] | None:
    """``(field, problem)`` when ``message`` cannot be stored as it is (a label longer than the
    columns), else None."""
    for name in ("session_id", "sender", "sender_name"):
        if len(getattr(message, name)) > MAX_LABEL_CHARS:
            return name, f"is longer than {MAX_LABEL_CHARS} characters: it cannot be kept in chat memory"
    return None
