"""The component contract and the registry that maps a node's ``data.type`` to its class.

Adding a component is one small class::

    @register("UpperCase")
    class UpperCase(Component):
        outputs = {"text": "uppercase"}

        def uppercase(self):
            return Message(text=self.text("input_value").upper())

An output method returns the value sent along the node's edges. It may also be a generator
that yields events (``("token", {...})``) while it works and returns its value at the end, or,
when it waits on the network, a coroutine or an async generator (which yields its events and
then ``Produced(value)``): a run waiting on a model holds no thread.
A component never executes or evaluates the node's ``code`` field: it is not even given it.
"""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar, overload

from ..errors import ComponentError, FlowError
from ..limits import RunBudget, ValueTooLarge
from ..memory import ChatMemory
from ..messages import Message, as_text

if TYPE_CHECKING:
    from ..filestore import FileStore
    from ..graph import Node
    from ..knowledge import KnowledgeStore

REGISTRY: dict[str, type[Component]] = {}


def register(*type_names: str):
    """Class decorator: make the component run the nodes whose ``data.type`` is one of ``type_names``."""

    def decorate(cls: type[Component]) -> type[Component]:
        for name in type_names:
            if name in REGISTRY:
                raise RuntimeError(f"Component type {name!r} is registered twice")
            REGISTRY[name] = cls
        cls.type_names = type_names
        return cls

    return decorate


@dataclass(frozen=True)
class Produced:
    """An async output method's value, yielded last (an async generator cannot return one)."""

    value: Any


@dataclass(frozen=True)
class RunContext:
    """What every component of one run shares, its budget (sizes and time) included."""

    flow_id: str
    session_id: str
    stream: bool
    budget: RunBudget = field(default_factory=RunBudget)
    # The flow owner's files (``filestore.FileStore``), set by whoever plans the run; None: no files.
    files: FileStore | None = None
    # The flow's chat messages (flows.engine.memory); None: the run stores and reads none.
    memory: ChatMemory | None = None
    # The flow owner's knowledge bases (flows.engine.knowledge); None: the run finds none.
    knowledge: KnowledgeStore | None = None


class Component:
    """One node of one run: its parameters in, its outputs out."""

    type_names: ClassVar[tuple[str, ...]] = ()
    # Output name -> method name; the first is the one computed when nothing is connected.
    outputs: ClassVar[dict[str, str]] = {}
    # "chat_input", "text_input", "chat_output" or "text_output" for the flow's ends.
    role: ClassVar[str | None] = None
    # Fields a tweak may set although Langflow's exports do not list them.
    extra_fields: ClassVar[frozenset[str]] = frozenset()

    def __init__(self, *, node: Node, params: dict[str, Any], context: RunContext):
        self.node = node
        self.params = params
        self.context = context

    @classmethod
    def dynamic_fields(cls, params: dict[str, Any], memo: dict[Hashable, Any] | None = None) -> frozenset[str]:
        """Fields that exist because of other parameters' values (a prompt's variables).

        ``memo`` is shared by the nodes of one run: many nodes may be given one (large) value
        by a tweak, and it is read once, not once per node."""
        return frozenset()

    async def check(self) -> None:
        """Refuse, before anything runs, what is wrong in the parameters no edge will replace
        (``params`` holds only those here), so that a streamed run answers a 4xx rather than
        an error event. Raise FlowError subclasses."""

    # -- Parameters, converted with errors that name the node and the field -----------------

    def fail(self, field: str, problem: str) -> ComponentError:
        return ComponentError(f"Node {self.node.id}: '{field}' {problem}", node_ids=(self.node.id,))

    def value_room(self) -> int:
        """The most UTF-8 bytes a value this node builds may have (see ``limits.RunBudget``)."""
        return self.context.budget.value_room()

    def too_large(self) -> FlowError:
        return self.context.budget.too_large(self.node.id)

    def text(self, field: str, default: str = "") -> str:
        """The parameter as text; one built from several values (a list, Data) is refused when
        it would be larger than ``value_room()``."""
        value = self.params.get(field)
        if value is None:
            return default
        if isinstance(value, str):
            return value
        if isinstance(value, (dict, list, Message)):
            try:
                return as_text(value, limit=self.value_room())
            except ValueTooLarge:
                raise self.too_large() from None
            except ValueError as error:
                raise self.fail(field, f"cannot be read as text: {error}") from None
        if isinstance(value, (int, float, bool)):
            return str(value)
        raise self.fail(field, "must be text")

    def boolean(self, field: str, default: bool = False) -> bool:
        value = self.params.get(field)
        if value is None or value == "":
            return default
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.lower() in {"true", "false"}:
            return value.lower() == "true"
        raise self.fail(field, "must be true or false")

    def number(self, field: str, default: float | None, *, minimum: float, maximum: float,
               integer: bool = False) -> float | int | None:
        value = self.params.get(field)
        if value is None or value == "":
            return default
        if isinstance(value, bool) or not isinstance(value, (int, float, str)):
            raise self.fail(field, "must be a number")
        try:
            number = int(value) if integer else float(value)
        except (TypeError, ValueError):
            raise self.fail(field, f"must be {'an integer' if integer else 'a number'}") from None
        if not minimum <= number <= maximum:
            raise self.fail(field, f"must be between {minimum:g} and {maximum:g}")
        return number

    @overload
    def integer(self, field: str, default: int, *, minimum: int, maximum: int) -> int: ...

    @overload
    def integer(self, field: str, default: None, *, minimum: int, maximum: int) -> int | None: ...

    def integer(self, field: str, default: int | None, *, minimum: int, maximum: int) -> int | None:
        """``number(..., integer=True)``, typed: an int, or ``default`` when the field is empty."""
        value = self.number(field, default, minimum=minimum, maximum=maximum, integer=True)
        return None if value is None else int(value)

    def message(self, text: str, *, sender: str, sender_name: str) -> Message:
        """A Message from this node, in this run's session."""
        return Message(
            text=text,
            sender=self.text("sender", sender) or sender,
            sender_name=self.text("sender_name", sender_name) or sender_name,
            session_id=self.text("session_id") or self.context.session_id,
            flow_id=self.context.flow_id,
        )
