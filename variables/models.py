"""Each user's global variables (Langflow's): named values that flows load by name at run time."""

import uuid

from django.conf import settings
from django.core.validators import ProhibitNullCharactersValidator
from django.db import models

MASK = "********"


class VariableType(models.TextChoices):
    """Langflow's two types: a Credential is a secret (encrypted, never shown again); a Generic is not."""

    CREDENTIAL = "Credential", "Credential"
    GENERIC = "Generic", "Generic"


class VariableQuerySet(models.QuerySet):
    def owned_by(self, user_or_id):
        return self.filter(owner_id=getattr(user_or_id, "pk", user_or_id))


class Variable(models.Model):
    """One user's named value. A Credential's ``value`` is a ciphertext (``variables.crypto``),
    under the key ``key_version``; a Generic's is its text. Read it with
    ``variables.services.reveal``, never from ``value``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.ForeignKey(settings.AUTH_USER_MODEL, on_delete=models.CASCADE, related_name="variables")
    name = models.CharField(max_length=255, validators=[ProhibitNullCharactersValidator()])
    type = models.CharField(max_length=16, choices=VariableType.choices, default=VariableType.CREDENTIAL)
    value = models.TextField()
    # The key version of a Credential's ciphertext (None for a Generic): rotation finds old ones by it.
    key_version = models.PositiveIntegerField(null=True, blank=True)
    # The fields this variable applies to (Langflow's default_fields), e.g. ["api_key"].
    default_fields = models.JSONField(default=list, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    objects = VariableQuerySet.as_manager()

    class Meta:
        ordering = ["name"]
        constraints = [models.UniqueConstraint(fields=["owner", "name"], name="variable_name_unique_per_owner")]

    def __str__(self) -> str:
        return self.name

    @property
    def is_credential(self) -> bool:
        return self.type == VariableType.CREDENTIAL

    @property
    def masked(self) -> str:
        """What may be shown of the value: a Generic's text, a Credential's mask only."""
        return MASK if self.is_credential else self.value
