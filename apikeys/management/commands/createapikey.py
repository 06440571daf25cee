from django.contrib.auth import get_user_model
from django.core.exceptions import ValidationError
from django.core.management.base import BaseCommand, CommandError

from apikeys import access
from apikeys.models import NAME_MAX_LENGTH, ApiKeyEvent, all_permissions
from apikeys.rates import RATE_HELP, is_valid_rate
from apikeys.services import create_api_key

# build_terms's fields, as this command's options.
OPTIONS = {"all_flows": "--flow", "flow_ids": "--flow", "permissions": "--permissions", "allowed_ips": "--allow-ip",
           "expires_at": "--expires-in"}


class Command(BaseCommand):
    help = "Create an API key for USERNAME and print only the key on stdout."

    def add_arguments(self, parser):
        parser.add_argument("username")
        parser.add_argument("--name", default="")
        parser.add_argument("--expires-in", dest="expires_in", metavar="DAYS", default=None,
                            help=f"days until the key stops working, 1 to {access.MAX_LIFETIME.days} "
                                 f"(default: never)")
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
        if len(name) > NAME_MAX_LENGTH:
            raise CommandError(f"--name must be at most {NAME_MAX_LENGTH} characters.")
        user = get_user_model().objects.filter(username=username).first()
        if user is None:
            raise CommandError(f"No user named {username!r}.")
        if not user.is_active:
            raise CommandError(f"User {username!r} is inactive.")
        if rate_limit and not is_valid_rate(rate_limit):
            raise CommandError(f"--rate-limit: {RATE_HELP}")
        try:
            terms = access.build_terms(user, flow_ids=flows or None, permissions=permissions,
                                       allowed_ips=allowed_ips, expires_in_days=expires_in)
        except ValidationError as error:
            raise CommandError(" ".join(f"{OPTIONS[field]}: {' '.join(messages)}"
                                        for field, messages in error.message_dict.items())) from None
        api_key, raw_key = create_api_key(
            user=user, name=name, expires_at=terms.expires_at, rate_limit=rate_limit, access=terms.access,
            actor=ApiKeyEvent.Actor.ADMIN,
        )
        self.stderr.write(f"Created API key {api_key.masked} (id {api_key.pk}). It will not be shown again.")
        self.stdout.write(raw_key)
