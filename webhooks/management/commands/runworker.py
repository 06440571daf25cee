"""``manage.py runworker``: django-tasks-db's ``db_worker`` for the site's jobs, plus the
heartbeat and the sweep that take back a run whose worker died (``webhooks.jobs``).

Any number may run, on any machine that reaches the database (PostgreSQL when there are
several machines): each claims one job at a time. ``make run`` starts JOB_WORKERS of them.
"""

from django_tasks_db.management.commands import db_worker

from webhooks import jobs


class Command(db_worker.Command):
    help = "Run the background jobs (webhook runs): django-tasks-db's worker with leases and retries."

    def add_arguments(self, parser):
        super().add_arguments(parser)
        parser.set_defaults(queue_name="webhooks,default", interval=0.5)

    def handle(self, *args, **options):
        jobs.start_housekeeping()
        super().handle(*args, **options)
