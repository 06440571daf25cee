import datetime

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.utils import timezone

from apikeys.services import prune_audit_log, prune_request_log


class Command(BaseCommand):
    help = ("Delete API-key audit events and daily usage rows older than AUDIT_RETENTION_DAYS days, and "
            "request log rows older than REQUEST_LOG_RETENTION_DAYS. Run it daily (cron, a systemd timer).")

    def add_arguments(self, parser):
        parser.add_argument("--days", type=int, default=None, metavar="N",
                            help="keep the last N days instead of AUDIT_RETENTION_DAYS "
                                 f"(now {settings.AUDIT_RETENTION_DAYS})")

    def handle(self, *args, days, **options):
        days = settings.AUDIT_RETENTION_DAYS if days is None else days
        if days < 1:
            raise CommandError("--days must be at least 1.")
        now = timezone.now()
        events, usage = prune_audit_log(days=days, now=now)
        cutoff = (now - datetime.timedelta(days=days)).astimezone(datetime.UTC)
        self.stdout.write(f"Deleted {events} audit event(s) and {usage} daily usage row(s) older than {days} days "
                          f"(before {cutoff:%Y-%m-%d %H:%M} UTC).")
        request_days = settings.REQUEST_LOG_RETENTION_DAYS
        requests = prune_request_log(days=request_days, now=now)
        self.stdout.write(f"Deleted {requests} request log row(s) older than {request_days} days.")
