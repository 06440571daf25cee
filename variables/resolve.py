"""Values for a run's fields that load a global variable (``load_from_db``), by name.

In order: the request's own ``X-LANGFLOW-GLOBAL-VAR-<NAME>`` headers (for that run only), the
flow owner's variables (never another user's, whatever the name), then, only when the operator
sets ``VARIABLES_FALLBACK_TO_ENV``, the server's environment variable of that name. One query
for all the names a run needs.

A Credential fills only a field the template marks as secret (``password: true``: a key sent to
a provider), never a text a flow could echo into its answer; the environment counts as a
Credential, and the server's own secrets are never handed out that way.
"""

from __future__ import annotations

import logging
import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass

from django.conf import settings

from .crypto import UndecryptableValue
from .models import Variable, VariableType
from .services import reveal

logger = logging.getLogger("variables")

HEADER_PREFIX = "X-LANGFLOW-GLOBAL-VAR-"
# Environment variables that hold this server's own secrets or connections: never a flow's value.
SERVER_SECRETS = frozenset({
    "SECRET_KEY", "API_KEY_PEPPERS", "VARIABLE_ENCRYPTION_KEYS", "DATABASE_URL", "CACHE_URL",
    "LANGFLOW_SUPERUSER_PASSWORD", "SQL_DATABASES",
})


@dataclass(frozen=True)
class Wanted:
    """A field of a node that loads the variable ``name``; ``secret``: the template marks it a password."""

    node_id: str
    field: str
    name: str
    secret: bool


class VariableProblem(Exception):
    """Why a run cannot have a variable; ``str()`` is safe to show (it names the variable and the node)."""

    status_code = 422

    def __init__(self, message: str, *, node_ids: tuple[str, ...] = ()):
        super().__init__(message)
        self.node_ids = node_ids


class VariableUndecryptable(VariableProblem):
    status_code = 500


def normalized(name: str) -> str:
    """How a header names a variable: HTTP header names ignore case, and proxies (and Django) turn
    '_' and '-' into each other, so both sides are compared upper-cased with '-' as '_'."""
    return name.upper().replace("-", "_")


def from_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The run's own values, from its ``X-LANGFLOW-GLOBAL-VAR-<NAME>`` headers (normalized names)."""
    values = {}
    for header, value in headers.items():
        if normalized(header).startswith(normalized(HEADER_PREFIX)) and len(header) > len(HEADER_PREFIX):
            values[normalized(header[len(HEADER_PREFIX):])] = value
    return values


def resolve(owner_id, wanted: Iterable[Wanted], request_values: Mapping[str, str] | None = None
            ) -> dict[tuple[str, str], str]:
    """Return ``{(node id, field): value}`` for every wanted field; raise VariableProblem naming
    the variable and the node when one cannot be had."""
    wanted = list(wanted)
    if not wanted:
        return {}
    request_values = request_values or {}
    names = {item.name for item in wanted if normalized(item.name) not in request_values}
    stored = {variable.name: variable for variable in Variable.objects.filter(owner_id=owner_id, name__in=names)} if names else {}
    values: dict[tuple[str, str], str] = {}
    for item in wanted:
        where = f"node {item.node_id}, field '{item.field}'"
        if normalized(item.name) in request_values:
            values[(item.node_id, item.field)] = request_values[normalized(item.name)]
            continue
        variable = stored.get(item.name)
        if variable is not None:
            if variable.type == VariableType.CREDENTIAL and not item.secret:
                raise VariableProblem(
                    f"The variable '{item.name}' is a Credential: it can fill only secret fields (a key or a "
                    f"password), not {where}.", node_ids=(item.node_id,))
            try:
                values[(item.node_id, item.field)] = reveal(variable)
            except UndecryptableValue as error:
                logger.error("Variable %r of user %s cannot be decrypted (key version %s)",
                             item.name, owner_id, error.version)
                raise VariableUndecryptable(f"{error} ({where})", node_ids=(item.node_id,)) from None
            continue
        fallback = _environment(item)
        if fallback is None:
            raise VariableProblem(
                f"The variable '{item.name}' ({where}) does not exist: create it on the Variables page "
                f"or send it in a {HEADER_PREFIX}{item.name} header.", node_ids=(item.node_id,))
        values[(item.node_id, item.field)] = fallback
    return values


def _environment(item: Wanted) -> str | None:
    """The server's environment variable of that name, when the operator allows it, for a secret field."""
    if not settings.VARIABLES_FALLBACK_TO_ENV or not item.secret or item.name.upper() in SERVER_SECRETS:
        return None
    return os.environ.get(item.name) or None
