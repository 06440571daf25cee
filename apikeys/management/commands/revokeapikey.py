import uuid

from django.core.management.base import BaseCommand, CommandError

from apikeys.models import ApiKey
from apikeys.services import revoke_api_key


class Command(BaseCommand):
    help = "Revoke an API key by its id or its public lookup id."

    def add_arguments(self, parser):
        parser.add_argument("id", help="the key's id (UUID) or lookup id (the part after lfsk_)")

    def handle(self, *args, id, **options):
        try:
            query = {"pk": uuid.UUID(id)}
        except ValueError:
            query = {"lookup_id": id}
        api_key = ApiKey.objects.filter(**query).first()
        if api_key is None:
            raise CommandError(f"No API key with id {id!r}.")
        if not revoke_api_key(api_key, revoked_by=ApiKey.RevokedBy.ADMIN):
            raise CommandError(f"API key {api_key.masked} was already revoked.")
        self.stdout.write(f"Revoked API key {api_key.masked}.")
