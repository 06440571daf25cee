"""A file's bytes go when its row goes: deleted by the API, replaced, or with its owner."""

from django.db import transaction
from django.db.models.signals import post_delete
from django.dispatch import receiver

from .models import UserFile
from .storage import delete_blob


@receiver(post_delete, sender=UserFile)
def delete_stored_bytes(sender, instance: UserFile, **kwargs) -> None:
    # After the commit: a rolled-back delete must still find its bytes.
    path = instance.path
    transaction.on_commit(lambda: delete_blob(path))
