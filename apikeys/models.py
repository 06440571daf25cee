import uuid

from django.conf import settings
from django.db import models
from django.db.models import Q
from django.utils import timezone

from . import crypto


class ApiKeyQuerySet(models.QuerySet):
    def owned_by(self, user):
        return self.filter(user=user)

    def usable(self):
        """Keys that may still authenticate: not revoked and not expired."""
        now = timezone.now()
        return self.filter(revoked_at__isnull=True).filter(Q(expires_at__isnull=True) | Q(expires_at__gt=now))


class ApiKey(models.Model):
    """A secret that acts as its owner on the API. Only a keyed digest of it is stored."""

    class RevokedBy(models.TextChoices):
        OWNER = "owner", "Owner"
        ADMIN = "admin", "Administrator"
        LEAK_REPORT = "leak_report", "Reported leaked"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    user = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="api_keys")
    name = models.CharField(max_length=100, blank=True)
    lookup_id = models.CharField(max_length=crypto.LOOKUP_ID_LENGTH, unique=True, editable=False)
    digest = models.CharField(max_length=64, editable=False)
    pepper_version = models.PositiveSmallIntegerField(editable=False)
    created_at = models.DateTimeField(default=timezone.now, editable=False)
    last_used_at = models.DateTimeField(null=True, blank=True, editable=False)
    total_uses = models.PositiveBigIntegerField(default=0, editable=False)
    expires_at = models.DateTimeField(null=True, blank=True)
    revoked_at = models.DateTimeField(null=True, blank=True, editable=False)
    revoked_by = models.CharField(max_length=20, choices=RevokedBy.choices, blank=True, editable=False)

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

    @property
    def is_usable(self) -> bool:
        return not self.is_revoked and not self.is_expired

    @property
    def state(self) -> str:
        if self.is_revoked:
            return "reported leaked" if self.revoked_by == self.RevokedBy.LEAK_REPORT else "revoked"
        if self.is_expired:
            return "expired"
        return "active"
