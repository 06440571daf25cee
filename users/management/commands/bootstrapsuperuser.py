from django.core.management.base import BaseCommand

from users.services import ensure_superuser


class Command(BaseCommand):
    help = "Create the LANGFLOW_SUPERUSER if it does not exist (never changes an existing one)."

    def handle(self, *args, **options):
        user, created = ensure_superuser()
        verb = "Created" if created else "Found"
        self.stdout.write(f"{verb} superuser {user.username!r}.")
