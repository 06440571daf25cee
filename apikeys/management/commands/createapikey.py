import datetime

from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys import access
from apikeys.access import KeyAccess
from apikeys.models import ApiKey, ApiKeyEvent, all_permissions
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


def _checked(option: str, clean, *args):
    try:
        return clean(*args)
    except ValidationError as error:
        raise CommandError(f"{option}: {' '.join(error.messages)}") from None


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print only the key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-in", dest="expires_in", metavar="DAYS", default=None)
        parser.add_argument("--rate-limit", dest="rate_limit", metavar="RATE", default="",
                            help="requests this key may make, e.g. 100/min (default: the server's API_KEY_RATE)")
        parser.add_argument("--flow", dest="flows", metavar="ID", action="append", default=[],
                            help="limit the key to this flow of USERNAME's (repeat for more; default: all flows)")
        parser.add_argument("--permissions", metavar="LIST", default=",".join(all_permissions()),
                            help="what the key may do: some of run,read,write (default: all three)")
        parser.add_argument("--allow-ip", dest="allowed_ips", metavar="CIDR", action="append", default=[],
                            help="an address or CIDR range the key may be used from (repeat for more; "
                                 "default: anywhere)")

    def handle(self, *args, username, name, expires_in, rate_limit, flows, permissions, allowed_ips, **options):
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
        key_access = KeyAccess(
            all_flows=not flows,
            flow_ids=_checked("--flow", access.clean_flow_ids, user, flows),
            permissions=_checked("--permissions", access.clean_permissions, access.split_entries(permissions)),
            allowed_ips=_checked("--allow-ip", access.clean_allowed_ips, allowed_ips),
        )
        api_key, raw_key = create_api_key(
            user=user, name=name, expires_at=expires_at, rate_limit=rate_limit, access=key_access,
            actor=ApiKeyEvent.Actor.ADMIN,
        )
        self.stderr.write(f"Created API key {api_key.masked} (id {api_key.pk}). It will not be shown again.")
        self.stdout.write(raw_key)
