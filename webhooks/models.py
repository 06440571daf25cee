"""One row per webhook call: what the owner sees, and the state its background job is fenced by."""

from __future__ import annotations

import uuid

from django.db import models
from django.db.models import Q

from flows.models import Flow


class WebhookRun(models.Model):
    """A webhook call and its run: received, then running, then done or failed (with the error).

    The row's id is the job's id: every attempt of the run claims and finishes this row
    with a conditional UPDATE on ``attempts``, so a stale or duplicated attempt changes
    nothing, and a run is recorded as done once (``webhooks.jobs``).
    """

    class Status(models.TextChoices):
        RECEIVED = "received", "Received"
        RUNNING = "running", "Running"
        RETRYING = "retrying", "Waiting to retry"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    flow = models.ForeignKey(Flow, on_delete=models.CASCADE, related_name="webhook_runs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.RECEIVED)
    # The request body as text (UTF-8; undecodable bytes replaced), at most WEBHOOK_MAX_BODY_BYTES.
    body = models.TextField(blank=True, default="")
    # Attempts started so far; attempt n may claim the row only while this is n - 1.
    attempts = models.PositiveIntegerField(default=0)
    error = models.TextField(blank=True, default="")
    received_at = models.DateTimeField(auto_now_add=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    next_attempt_at = models.DateTimeField(null=True, blank=True)
    # While running: which worker process holds it, until when (extended by its heartbeat).
    worker = models.CharField(max_length=128, blank=True, default="")
    lease_until = models.DateTimeField(null=True, blank=True)
    # The django-tasks job of the current attempt (django_tasks_db's DBTaskResult id).
    task_id = models.CharField(max_length=64, blank=True, default="")

    class Meta:
        ordering = ["-received_at", "-id"]
        indexes = [
            models.Index(fields=["flow", "-received_at"], name="webhookrun_flow_recent"),
            # The sweep for runs whose worker died: only running rows, by lease.
            models.Index(fields=["lease_until"], name="webhookrun_running_lease",
                         condition=Q(status="running")),
        ]

    def __str__(self) -> str:
        return f"Webhook run {self.pk} of flow {self.flow_id}: {self.status}"

    @property
    def is_finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)
