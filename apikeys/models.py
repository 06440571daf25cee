import uuid

from django.conf import settings
from django.core.exceptions import ValidationError
from django.db import models
from django.db.models import Q
from django.utils import timezone

from core.net import is_in_networks
from flows.models import FlowPermission

from . import crypto
from .rates import RATE_HELP, is_valid_rate

NAME_MAX_LENGTH = 100  # of a key's name

# What a key may do, in the order people read them; a new key may do all three.
PERMISSIONS = (FlowPermission.RUN, FlowPermission.READ, FlowPermission.WRITE)


def all_permissions() -> list[str]:
    return [str(permission) for permission in PERMISSIONS]


def validate_rate(value: str) -> None:
    if value and not is_valid_rate(value):
        raise ValidationError(RATE_HELP)


class ApiKeyQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(user=user)


class ApiKey(models.Model):
    """A secret that acts as its owner on the API. Only a keyed digest of it is stored."""

    class RevokedBy(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Administrator"
        LEAK_REPORT = "leak_report", "Reported leaked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=NAME_MAX_LENGTH, blank=True)
    lookup_id = models.CharField(max_length=crypto.LOOKUP_ID_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    pepper_version = models.PositiveSmallIntegerField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_uses = models.PositiveBigIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=20, choices=RevokedBy.choices, blank=True, editable=False)
    # Rotation: a new secret for the same record. During a grace period the previous secret
    # (its digest, under its own pepper) still authenticates; a later rotation replaces it.
    rotated_at = models.DateTimeField(null=True, blank=True, editable=False)
    previous_digest = models.CharField(max_length=64, blank=True, editable=False)
    previous_pepper_version = models.PositiveSmallIntegerField(null=True, blank=True, editable=False)
    previous_valid_until = models.DateTimeField(null=True, blank=True, editable=False)
    rate_limit = models.CharField(
        max_length=20, blank=True, validators=[validate_rate],
        help_text="Requests this key may make, e.g. 100/min. Empty: the server's API_KEY_RATE.",
    )
    # Least privilege. These travel with the row that authentication loads anyway, so checking
    # them adds no query to a request. Change them through apikeys.services.change_key_access
    # (validated by apikeys.access, and audited).
    all_flows = models.BooleanField(
        default=True, help_text="Every flow of the owner. Off: only the flows in flow_ids (none when it is empty).",
    )
    flow_ids = models.JSONField(default=list, blank=True, help_text="The flows (ids) of a key limited to chosen flows.")
    permissions = models.JSONField(default=all_permissions, help_text="Some of run, read, write.")
    allowed_ips = models.JSONField(
        default=list, blank=True, help_text="Networks (CIDR) the key may be used from; empty: anywhere.",
    )
    # When the owner dismissed the notice of a leak report (the key stays revoked and marked).
    leak_acknowledged_at = models.DateTimeField(null=True, blank=True, editable=False)

    objects = ApiKeyQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]
        verbose_name = "API key"

    def __str__(self) -> str:
        return f"{self.name or 'Untitled'} ({self.masked})"

    @property
    def masked(self) -> str:
        return crypto.mask(self.lookup_id)

    @property
    def is_revoked(self) -> bool:
        return self.revoked_at is not None

    @property
    def is_expired(self) -> bool:
        return self.expires_at is not None and self.expires_at <= timezone.now()

    def previous_secret_is_valid(self, now=None) -> bool:
        """Whether the secret replaced by the last rotation still authenticates (grace period)."""
        return self.grace_period_running(self.previous_digest, self.previous_valid_until, now)

    @staticmethod
    def grace_period_running(previous_digest: str, previous_valid_until, now=None) -> bool:
        """The rule of ``previous_secret_is_valid``, for a key row not (yet) loaded as a model."""
        return bool(previous_digest) and previous_valid_until is not None and previous_valid_until > (now or timezone.now())

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def is_reported_leaked(self) -> bool:
        return self.revoked_by == self.RevokedBy.LEAK_REPORT

    @property
    def reaches_no_flow(self) -> bool:
        """Limited to chosen flows that were all deleted since: it can use no flow at all."""
        return not self.all_flows and not self.flow_ids

    @property
    def needs_leak_notice(self) -> bool:
        return self.is_reported_leaked and self.leak_acknowledged_at is None

    @property
    def display_state(self) -> str:
        """The state the pages show: ``state``, or "no flows" for a usable key that reaches none."""
        if self.is_usable and self.reaches_no_flow:
            return "no flows"
        return self.state

    @property
    def state(self) -> str:
        if self.is_revoked:
            return "reported leaked" if self.is_reported_leaked else "revoked"
        if self.is_expired:
            return "expired"
        return "active"

    def grants(self, permission: str) -> bool:
        """Whether the key may ``run``, ``read`` or ``write`` (within its flow scope)."""
        return permission in self.permissions

    @property
    def flow_scope(self) -> tuple[str, ...] | None:
        """Which flows the key reaches: None for every flow of its owner, else these ids (maybe none).

        The one answer, read by ``reaches_flow`` (a run's flow lookup) and by
        ``FlowQuerySet.visible_to`` (flow lists, as SQL). Ownership is checked apart.
        """
        return None if self.all_flows else tuple(self.flow_ids)

    def reaches_flow(self, flow_id) -> bool:
        """Whether the key's flow scope includes this flow (of its owner's: ownership is checked apart)."""
        scope = self.flow_scope
        return scope is None or str(flow_id) in scope

    @property
    def may_create_flows(self) -> bool:
        """A key limited to chosen flows creates none: that would widen its own scope."""
        return self.all_flows and self.grants(FlowPermission.WRITE)

    def allows_address(self, client_ip: str | None) -> bool:
        """Whether a request from ``client_ip`` may use the key (an unknown address may not, if limited)."""
        return not self.allowed_ips or is_in_networks(client_ip, tuple(self.allowed_ips))

    @property
    def scope_label(self) -> str:
        if self.all_flows:
            return "All flows"
        count = len(self.flow_ids)
        return f"{count} flow{'s' if count != 1 else ''}" if count else "No flows"

    @property
    def permissions_label(self) -> str:
        return ", ".join(permission for permission in PERMISSIONS if permission in self.permissions)

    @property
    def has_full_access(self) -> bool:
        return self.all_flows and set(self.permissions) >= set(PERMISSIONS) and not self.allowed_ips


class ApiKeyEvent(models.Model):
    """One line of a key's audit log. Never holds a secret: at most the public lookup id.

    What happened is ``kind``; who, from where and to which key are columns; every other fact
    is structured data in ``data`` (before and after values, a refusal's reason...), whole,
    never words: apikeys.audit writes every event through one function, and alone turns one
    into words, for the pages and the admin.

    Failed authentications are logged with the lookup id (when the key parsed) and the client
    IP; their key is set only when the lookup id named one, so its owner sees them too.
    Their number is bounded by the per-IP failed-authentication throttle, and their age by
    AUDIT_RETENTION_DAYS (``manage.py pruneauditlog``).
    """

    class Kind(models.TextChoices):
        CREATED = "created", "Created"
        ROTATED = "rotated", "Rotated"
        REVOKED = "revoked", "Revoked"
        EXPIRED = "expired", "Expired"
        AUTH_FAILED = "auth_failed", "Failed authentication"
        ACCESS_CHANGED = "access_changed", "Access changed"

    class Actor(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Administrator"
        LEAK_REPORT = "leak_report", "Leak report"
        SYSTEM = "system", "System"

    class FailureReason(models.TextChoices):
        """Why a key was refused (``data["reason"]`` of a failed authentication)."""

        MALFORMED = "malformed_key", "malformed key"
        UNKNOWN = "unknown_key", "unknown key"
        WRONG_SECRET = "wrong_secret", "wrong secret"
        REVOKED = "revoked", "revoked"
        EXPIRED = "expired", "expired"
        OWNER_INACTIVE = "owner_inactive", "owner inactive"
        ADDRESS_NOT_ALLOWED = "address_not_allowed", "address not allowed"
        KEY_CHANGED = "key_changed", "key changed during the request"

    # No index of its own: "apikeys_event_key_time" (api_key, -created_at) starts with it, and one
    # index less to maintain keeps a refused key's audit line cheaper than a valid key's use.
    api_key = models.ForeignKey(ApiKey, null=True, blank=True, on_delete=models.CASCADE, related_name="events",
                                db_index=False)
    kind = models.CharField(max_length=20, choices=Kind.choices)
    actor = models.CharField(max_length=20, choices=Actor.choices, blank=True)
    actor_user = models.ForeignKey(
        settings.AUTH_USER_MODEL, null=True, blank=True, on_delete=models.SET_NULL, related_name="+"
    )
    lookup_id = models.CharField(max_length=crypto.LOOKUP_ID_LENGTH, blank=True)
    client_ip = models.GenericIPAddressField(null=True, blank=True)
    data = models.JSONField(default=dict, blank=True,
                            help_text="The facts of the event (see apikeys.audit), whole.")
    created_at = models.DateTimeField(default=timezone.now, db_index=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key event"
        indexes = [models.Index(fields=["api_key", "-created_at"], name="apikeys_event_key_time")]
        constraints = [
            # Expiry is noticed lazily (on use, on the key's page); this keeps it logged once.
            models.UniqueConstraint(
                fields=["api_key"], condition=Q(kind="expired"), name="apikeys_one_expiry_event_per_key"
            ),
        ]

    def __str__(self) -> str:
        return f"{self.get_kind_display()} {crypto.mask(self.lookup_id) if self.lookup_id else ''}".strip()


class ApiKeyDailyUsage(models.Model):
    """Successful uses of a key per UTC day, for the usage chart.

    Written only by a database trigger on ``ApiKey.total_uses`` (migration 0004): the
    existing use-counting UPDATE keeps this table too, at no extra query per request.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="daily_usage")
    day = models.DateField()
    uses = models.PositiveBigIntegerField(default=0)

    class Meta:
        ordering = ["day"]
        verbose_name = "API key daily usage"
        verbose_name_plural = "API key daily usage"
        constraints = [models.UniqueConstraint(fields=["api_key", "day"], name="apikeys_one_usage_row_per_day")]

    def __str__(self) -> str:
        return f"{self.day}: {self.uses}"


class ApiKeyRequest(models.Model):
    """One request a key authenticated: when, which route, which flow, the answer's status, from where.

    Written in batches after the responses went out (apikeys.request_log), never on a request's
    own path; kept REQUEST_LOG_RETENTION_DAYS days (``manage.py pruneauditlog``). Never holds a
    secret: the path without its query string (where a key may travel), the flow as the URL named it.
    """

    api_key = models.ForeignKey(ApiKey, on_delete=models.CASCADE, related_name="requests", db_index=False)
    created_at = models.DateTimeField(default=timezone.now)
    method = models.CharField(max_length=10)
    path = models.CharField(max_length=300)
    flow_ref = models.CharField(max_length=200, blank=True)
    status = models.PositiveSmallIntegerField()
    client_ip = models.GenericIPAddressField(null=True, blank=True)

    class Meta:
        ordering = ["-created_at", "-id"]
        verbose_name = "API key request"
        indexes = [models.Index(fields=["api_key", "-created_at"], name="apikeys_request_key_time"),
                   models.Index(fields=["created_at"], name="apikeys_request_time")]

    def __str__(self) -> str:
        return f"{self.method} {self.path} {self.status}"
