import datetime

from django.contrib.auth import get_user_model
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys.models import ApiKey, ApiKeyEvent
from apikeys.rates import RATE_HELP, is_valid_rate
from apikeys.services import create_api_key


def positive_days(value: str) -> int:
    try:
        days = int(value)
    except ValueError:
        raise CommandError(f"--expires-in must be a whole number of days, not {value!r}.") from None
    if not 1 <= days <= 3650:
        raise CommandError("--expires-in must be between 1 and 3650 days.")
    return days


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print only the key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-in", dest="expires_in", metavar="DAYS", default=None)
        parser.add_argument("--rate-limit", dest="rate_limit", metavar="RATE", default="",
                            help="requests this key may make, e.g. 100/min (default: the server's API_KEY_RATE)")

    def handle(self, *args, username, name, expires_in, rate_limit, **options):
        max_length = ApiKey._meta.get_field("name").max_length
        if len(name) > max_length:
            raise CommandError(f"--name must be at most {max_length} characters.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        expires_at = None
        if expires_in is not None:
            expires_at = timezone.now() + datetime.timedelta(days=positive_days(expires_in))
        if rate_limit and not is_valid_rate(rate_limit):
            raise CommandError(f"--rate-limit: {RATE_HELP}")
        api_key, raw_key = create_api_key(
            user=user, name=name, expires_at=expires_at, rate_limit=rate_limit, actor=ApiKeyEvent.Actor.ADMIN
        )
        self.stderr.write(f"Created API key {api_key.masked} (id {api_key.pk}). It will not be shown again.")
        self.stdout.write(raw_key)
