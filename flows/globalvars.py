"""Flows and the owner's global variables (the ``variables`` app), Django side of the engine.

At run time, ``fill_variables`` puts the values of the fields that load a global variable
(``Node.variables``, found when the graph was compiled) into the plan's parameters; the engine
itself never sees where they came from. On save and import, ``take_secrets`` moves literal keys
out of a flow's JSON into Credential variables (``variables.flowsecrets``).
"""

from __future__ import annotations

from collections.abc import Mapping

from variables import flowsecrets
from variables.resolve import VariableProblem, VariableUndecryptable, Wanted, normalized, resolve

from . import engine

# A field naming where a node connects (a model server's base URL, a host): a run's tweaks may
# not change it on a node that receives a stored credential, or a caller allowed to run the
# flow (an API key with only ``run``) could send the owner's key to a server of its choosing.
_ADDRESS_WORDS = ("url", "base", "host", "endpoint", "server", "proxy")


class VariableUnavailable(engine.FlowError):
    """A variable the run needs cannot be decrypted with the server's keys: fail closed."""

    status_code = 500


def fill_variables(plan: engine.Plan, *, owner_id, request_variables: Mapping[str, str] | None = None) -> None:
    """Set every needed node's variable-loaded fields that the run's tweaks left unset.

    Raises ``engine.InvalidRunRequest`` (422) naming the variable and the node when one is
    missing or may not go there, ``VariableUnavailable`` (500) when its key is gone."""
    request_values = request_variables or {}
    wanted = [
        Wanted(node_id=node.id, field=ref.field, name=ref.name, secret=ref.secret)
        for node in plan.run_order for ref in node.variables
        if plan.params[node.id].get(ref.field) is None  # a tweak's value wins, as given
    ]
    if not wanted:
        return
    try:
        values = resolve(owner_id, wanted, request_values)
    except VariableUndecryptable as error:
        raise VariableUnavailable(str(error), node_ids=error.node_ids) from None
    except VariableProblem as error:
        raise engine.InvalidRunRequest(str(error), node_ids=error.node_ids) from None
    stored_secrets = {item.node_id for item in wanted if item.secret and normalized(item.name) not in request_values}
    for node_id in stored_secrets:
        _refuse_redirected(plan.graph.nodes[node_id], plan.params[node_id])
    for (node_id, field), value in values.items():
        plan.params[node_id][field] = value


def _refuse_redirected(node, params: dict) -> None:
    changed = [name for name, value in params.items()
               if any(word in name.lower() for word in _ADDRESS_WORDS) and value != node.params.get(name)]
    if changed:
        raise engine.InvalidRunRequest(
            f"Node {node.id} sends a stored credential: a run's tweaks cannot change its "
            f"'{changed[0]}' (change the flow itself, or send the key in the request's headers).",
            node_ids=(node.id,))


def variable_names(owner_id):
    """The owner's variable names, read once when first needed: one per import, for all its flows."""
    return flowsecrets.owner_names(owner_id)


def take_secrets(flow, taken_names=None) -> None:
    """Move the literal keys of ``flow.data`` to variable names (in place, before the flow is
    checked and compiled); ``store_secrets`` creates them in the flow's transaction."""
    flow.pending_secrets = flowsecrets.plan_secrets(
        flow.data, flow_name=flow.name, taken_names=taken_names or flowsecrets.owner_names(flow.owner_id))


def store_secrets(flow) -> None:
    """Create the Credential variables ``take_secrets`` found (inside the caller's transaction);
    ``flow.moved_secrets`` then says where each went (never the value)."""
    pending = getattr(flow, "pending_secrets", None) or []
    flow.moved_secrets = flowsecrets.store_secrets(flow.owner_id, pending) if pending else []
    flow.pending_secrets = []
