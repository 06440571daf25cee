import re
import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import ProhibitNullCharactersValidator, RegexValidator
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.jsonlimits import MAX_JSON_DEPTH, nesting_exceeds

from .engine.structure import empty_flow_data, structure_errors

# \A and \Z, not ^ and $: "$" also matches before a final newline, so "echo\n" passed the check,
# was stored, and could never be run (a run reference is matched whole).
ENDPOINT_NAME_PATTERN = r"\A[a-zA-Z0-9_-]+\Z"
ENDPOINT_NAME_MESSAGE = "Use only letters, digits, '-' and '_'."
validate_endpoint_name = RegexValidator(ENDPOINT_NAME_PATTERN, ENDPOINT_NAME_MESSAGE)
DATA_TOO_DEEP = f"The graph is nested more than {MAX_JSON_DEPTH} levels deep."


class FlowPermission(models.TextChoices):
    """What a request wants to do with a flow; see ``FlowQuerySet.visible_to``."""

    READ = "read", "Read"
    WRITE = "write", "Write"
    RUN = "run", "Run"


class FlowQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(owner=user)

    def visible_to(self, user, api_key=None, permission: str = FlowPermission.READ):
        """The flows a request may use for ``permission``: the one place that decides it.

        A session acts as its user with every permission: the user's flows. An API key
        (``request.auth``) acts as its owner within its limits, which came with the key row
        (no query): a key limited to chosen flows sees only those, any other flow exactly like
        a missing one, and a key without ``permission`` sees none (the API refuses it first,
        with a 403 naming the permission: flows.api.ApiKeyGrants).
        """
        if not may_use_flows(user, api_key, permission):
            return self.none()
        scope = None if api_key is None else api_key.flow_scope  # the key's answer (apikeys.models.ApiKey)
        if scope is None:
            return self.owned_by(user)
        # One filter() call: building the query is a good part of a run's time.
        return self.filter(owner=user, pk__in=scope)  # an empty scope: no flow, and no query


def may_use_flows(user, api_key, permission: str) -> bool:
    """Whether the request may use any flow for ``permission``: signed in, and its key (if any) grants it."""
    return user is not None and user.is_authenticated and (api_key is None or api_key.grants(permission))


def reference_terms(reference: str) -> tuple[uuid.UUID | None, str | None]:
    """Return what a run reference can name: ``(flow id, endpoint name)``, either None when it cannot be one."""
    endpoint_name = reference if re.search(ENDPOINT_NAME_PATTERN, reference) else None
    try:
        flow_id = uuid.UUID(reference)
    except ValueError:
        flow_id = None
    return flow_id, endpoint_name


class Flow(models.Model):
    """A Langflow-format flow (its ``data`` holds the graph's ``nodes`` and ``edges``), owned by one user."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="flows")
    name = models.CharField(max_length=255, validators=[ProhibitNullCharactersValidator()])
    description = models.TextField(blank=True, default="", validators=[ProhibitNullCharactersValidator()])
    # NULL, not "", for "none": the per-owner unique constraint below holds only for set names.
    endpoint_name = models.CharField(  # noqa: DJ001
        max_length=255,
        null=True,
        blank=True,
        validators=[validate_endpoint_name],
        help_text="Optional name to run the flow by, instead of its id.",
    )
    data = models.JSONField(default=empty_flow_data, blank=True)  # clean() says what is missing
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = FlowQuerySet.as_manager()

    class Meta:
        ordering = ["-updated_at"]
        constraints = [
            models.UniqueConstraint(fields=["owner", "name"], name="flows_unique_name_per_owner"),
            models.UniqueConstraint(
                fields=["owner", "endpoint_name"],
                condition=Q(endpoint_name__isnull=False),
                name="flows_unique_endpoint_name_per_owner",
            ),
        ]

    def __str__(self) -> str:
        return self.name

    def clean_fields(self, exclude=None):
        """Refuse absurd nesting first: Django's own check of a JSONField serialises it recursively."""
        if (exclude is None or "data" not in exclude) and nesting_exceeds(self.data):
            raise ValidationError({"data": [DATA_TOO_DEEP]})
        super().clean_fields(exclude)

    def clean(self):
        """Normalise blanks and check the graph's shape and the per-owner unique names."""
        self.endpoint_name = self.endpoint_name or None
        errors = {}
        problems = structure_errors(self.data)
        if problems:
            errors["data"] = problems
        if self.owner_id is not None:
            others = Flow.objects.owned_by(self.owner_id).exclude(pk=self.pk)
            # Only values clean_fields() accepted are looked up: PostgreSQL refuses a NUL in a query.
            if self.name and "\x00" not in self.name and others.filter(name=self.name).exists():
                errors["name"] = [f"You already have a flow named {self.name!r}."]
            if (self.endpoint_name and re.search(ENDPOINT_NAME_PATTERN, self.endpoint_name)
                    and others.filter(endpoint_name=self.endpoint_name).exists()):
                errors["endpoint_name"] = [f"You already have a flow with the endpoint name {self.endpoint_name!r}."]
        if errors:
            raise ValidationError(errors)

    def validate_constraints(self, exclude=None):
        # clean() reports the per-owner unique names in words people understand; the
        # constraints stay in the database for the race between two saves.
        return None


class MessageQuerySet(models.QuerySet):
    def visible_to(self, user, api_key=None, permission: str = FlowPermission.READ):
        """The messages a request may use for ``permission``: those of the flows it may use
        (``FlowQuerySet.visible_to``'s rule: the user's, within the key's flow scope)."""
        if not may_use_flows(user, api_key, permission):
            return self.none()
        scope = None if api_key is None else api_key.flow_scope
        if scope is None:
            return self.filter(flow__owner=user)
        return self.filter(flow__owner=user, flow_id__in=scope)


class Message(models.Model):
    """One chat message of a flow's conversation ``session_id`` (Langflow's message table).

    Stored by the Chat Input and Chat Output of a run (``flows.memory``), read back by memory
    components and listed by the monitor API. Owned through its flow: it goes with the flow.
    """

    class Sender(models.TextChoices):
        USER = "User", "User"
        MACHINE = "Machine", "Machine"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    # No index of its own: the two below begin with the flow.
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="messages", db_index=False)
    session_id = models.CharField(max_length=255)
    sender = models.CharField(max_length=255, default=Sender.MACHINE)  # Langflow's "User"/"Machine", or a tweak's
    sender_name = models.CharField(max_length=255, default="AI")
    text = models.TextField(blank=True, default="")
    timestamp = models.DateTimeField(default=timezone.now)
    files = models.JSONField(default=list, blank=True)
    properties = models.JSONField(default=dict, blank=True)
    category = models.CharField(max_length=64, default="message")
    content_blocks = models.JSONField(default=list, blank=True)
    error = models.BooleanField(default=False)
    edit = models.BooleanField(default=False)

    objects = MessageQuerySet.as_manager()

    class Meta:
        ordering = ["timestamp", "id"]
        indexes = [
            # The latest N of one conversation (memory), and the oldest of a flow (its cap).
            models.Index(fields=["flow", "session_id", "timestamp"], name="flows_msg_flow_session_time"),
            models.Index(fields=["flow", "timestamp"], name="flows_msg_flow_time"),
        ]

    def __str__(self) -> str:
        return f"{self.sender_name}: {self.text[:40]}"
