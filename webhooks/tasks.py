"""The django-tasks task of a webhook run: one job per attempt, queued on "webhooks"."""

from django_tasks import task

from . import jobs


@task(queue_name="webhooks")
def run_webhook(run_id: str, attempt: int) -> str:
    """Run attempt ``attempt`` of webhook run ``run_id`` (see ``webhooks.jobs``)."""
    return jobs.execute(run_id, attempt)
