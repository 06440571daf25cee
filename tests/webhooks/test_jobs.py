"""The job side of webhook runs: attempts fenced by number, leases and their recovery, retries with
backoff, and a run recorded exactly once whatever was retried or crashed before."""

import datetime

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from flows import engine
from flows.models import Message
from webhooks import jobs
from webhooks.models import WebhookRun
from webhooks.services import receive_webhook

pytestmark = pytest.mark.django_db

Status = WebhookRun.Status


@pytest.fixture
def call(webhook_flow):
    """Record a webhook call of the flow (as the route does); return its run."""

    def make(body='{"text": "hi"}') -> WebhookRun:
        return receive_webhook(flow=webhook_flow, body=body)

    return make


def reload(run: WebhookRun) -> WebhookRun:
    return WebhookRun.objects.get(pk=run.pk)


def jobs_of(run: WebhookRun) -> list[DBTaskResult]:
    return [job for job in DBTaskResult.objects.order_by("enqueued_at") if job.args_kwargs["args"][0] == str(run.pk)]


def expire_lease(run: WebhookRun) -> None:
    WebhookRun.objects.filter(pk=run.pk).update(lease_until=timezone.now() - datetime.timedelta(seconds=1))


def messages() -> int:
    return Message.objects.count()


# --- Backoff --------------------------------------------------------------------------------------

def test_the_retry_delay_doubles_from_its_setting_up_to_an_hour(settings):
    settings.WEBHOOK_RETRY_DELAY = 10
    assert [jobs.retry_delay(attempt) for attempt in (1, 2, 3, 4)] == [10, 20, 40, 80]
    assert jobs.retry_delay(30) == 3600


# --- Fencing --------------------------------------------------------------------------------------

def test_an_attempt_claims_the_run_once(call):
    run = call()
    claimed = jobs.claim(str(run.pk), 1)
    assert claimed is not None and claimed.status == Status.RUNNING and claimed.attempts == 1
    assert claimed.started_at is not None and claimed.lease_until > timezone.now()
    assert claimed.worker == jobs.worker_name()
    assert jobs.claim(str(run.pk), 1) is None  # the same job delivered twice
    assert jobs.claim(str(run.pk), 2) is None  # an attempt out of turn


def test_a_duplicated_job_runs_the_flow_once(call, run_jobs):
    run = call()
    from webhooks.tasks import run_webhook

    run_webhook.enqueue(str(run.pk), 1)  # the same attempt queued again
    run_jobs()
    assert reload(run).status == Status.DONE
    assert messages() == 1
    outcomes = sorted(job.return_value for job in jobs_of(run))
    assert outcomes == ["done", "skipped"]


def test_a_finished_run_is_not_run_again(call, run_jobs):
    run = call()
    run_jobs()
    assert jobs.execute(str(run.pk), 1) == "skipped"
    assert jobs.execute(str(run.pk), 2) == "skipped"
    assert messages() == 1


def test_a_run_of_a_deleted_flow_is_gone_with_it(call, webhook_flow, run_jobs):
    run = call()
    webhook_flow.delete()
    run_jobs()
    assert not WebhookRun.objects.filter(pk=run.pk).exists()


# --- Failures and retries --------------------------------------------------------------------------

def failing(monkeypatch, error):
    calls = []

    def run_flow(run):
        calls.append(run.attempts)
        raise error

    monkeypatch.setattr(jobs, "_run_flow", run_flow)
    return calls


def test_a_failure_that_may_pass_is_retried_after_its_backoff(call, monkeypatch, settings, run_jobs):
    settings.WEBHOOK_RETRY_DELAY = 30
    failing(monkeypatch, engine.UpstreamError("Node LanguageModel-1: the model server answered 500"))
    run = call()
    before = timezone.now()
    run_jobs()
    run = reload(run)
    assert (run.status, run.attempts) == (Status.RETRYING, 1)
    assert "answered 500" in run.error
    assert before + datetime.timedelta(seconds=29) < run.next_attempt_at < timezone.now() + datetime.timedelta(seconds=31)
    first, second = jobs_of(run)
    assert first.status == "FAILED" and "UpstreamError" in first.exception_class_path
    assert second.status == "READY" and second.args_kwargs["args"] == [str(run.pk), 2]
    assert second.run_after == run.next_attempt_at and str(second.pk) == run.task_id
    run_jobs()  # not due yet
    assert reload(run).attempts == 1


def test_a_run_that_keeps_failing_is_marked_failed_after_its_last_attempt(call, monkeypatch, settings, run_jobs):
    settings.WEBHOOK_MAX_ATTEMPTS = 3
    attempts = failing(monkeypatch, RuntimeError("database went away"))
    run = call()
    for _ in range(3):
        DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())  # skip the wait
        run_jobs()
    run = reload(run)
    assert attempts == [1, 2, 3]
    assert (run.status, run.attempts) == (Status.FAILED, 3)
    assert run.error == "RuntimeError: database went away" and run.finished_at is not None
    assert [job.status for job in jobs_of(run)] == ["FAILED"] * 3


def test_a_flow_that_cannot_run_as_called_fails_at_once(call, monkeypatch, run_jobs):
    failing(monkeypatch, engine.InvalidRunRequest("Node Prompt-1 has no field 'x'."))
    run = call()
    run_jobs()
    run = reload(run)
    assert (run.status, run.attempts, run.error) == (Status.FAILED, 1, "Node Prompt-1 has no field 'x'.")
    assert len(jobs_of(run)) == 1


def test_a_retry_succeeds_and_records_the_run_once(call, monkeypatch, run_jobs):
    real = jobs._run_flow
    outcomes = iter([engine.UpstreamError("timeout"), None])

    def flaky(run):
        error = next(outcomes)
        if error:
            raise error
        return real(run)

    monkeypatch.setattr(jobs, "_run_flow", flaky)
    run = call()
    run_jobs()
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_jobs()
    run = reload(run)
    assert (run.status, run.attempts, run.error) == (Status.DONE, 2, "")
    assert messages() == 1


# --- Leases: a worker that dies ---------------------------------------------------------------------

def test_the_heartbeat_extends_only_the_leases_of_runs_this_process_is_running(call):
    held, left = call(), call()
    for run in (held, left):
        jobs.claim(str(run.pk), 1)
        expire_lease(run)
    jobs._held.add(str(held.pk))
    try:
        assert jobs.heartbeat() == 1
    finally:
        jobs._held.discard(str(held.pk))
    assert reload(held).lease_until > timezone.now()
    assert reload(left).lease_until < timezone.now()


def test_a_run_whose_worker_died_is_taken_back_and_queued_again(call, settings):
    settings.WEBHOOK_RETRY_DELAY = 5
    run = call()
    job = DBTaskResult.objects.get(pk=run.task_id)
    job.claim("dead-worker")  # the library marks its job RUNNING...
    jobs.claim(str(run.pk), 1)  # ...and the attempt takes the run; then the process is killed
    assert jobs.recover_lost_runs() == 0  # its lease still holds
    expire_lease(run)
    assert jobs.recover_lost_runs() == 1
    run = reload(run)
    assert (run.status, run.attempts, run.error) == (Status.RETRYING, 1, jobs.LOST)
    assert run.worker == "" and run.lease_until is None
    old, new = jobs_of(run)
    assert old.status == "FAILED" and old.exception_class_path == "webhooks.jobs.WorkerLost"
    assert new.status == "READY" and new.args_kwargs["args"] == [str(run.pk), 2]
    assert jobs.recover_lost_runs() == 0  # once


def test_a_run_that_loses_its_worker_on_the_last_attempt_fails(call, settings):
    settings.WEBHOOK_MAX_ATTEMPTS = 1
    run = call()
    jobs.claim(str(run.pk), 1)
    expire_lease(run)
    jobs.recover_lost_runs()
    run = reload(run)
    assert (run.status, run.error) == (Status.FAILED, jobs.LOST)


def test_a_crash_after_the_flow_ran_but_before_it_was_recorded_leaves_no_trace_and_the_retry_records_once(
        call, monkeypatch, run_jobs):
    """The chat messages are written with "done", in one transaction: an attempt that dies in
    between wrote nothing, and the next attempt writes its own, once."""
    run = call()

    def crash(*args):
        raise KeyboardInterrupt  # as SIGKILL would: nothing after the flow's run happens

    with monkeypatch.context() as patched, pytest.raises(KeyboardInterrupt):
        patched.setattr(jobs, "finish", crash)
        jobs.execute(str(run.pk), 1)
    assert messages() == 0
    expire_lease(run)
    jobs.recover_lost_runs()
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_jobs()
    run = reload(run)
    assert (run.status, run.attempts) == (Status.DONE, 2)
    assert list(Message.objects.values_list("session_id", flat=True)) == [str(run.pk)]


def test_an_attempt_that_lost_its_lease_cannot_record_the_run(call, run_jobs, monkeypatch):
    """A worker that was only slow (its lease ran out, another attempt took over) finishes to
    find the run no longer its own: it records nothing, and the run is recorded once."""
    run = call()
    claimed = jobs.claim(str(run.pk), 1)
    expire_lease(run)
    jobs.recover_lost_runs()
    DBTaskResult.objects.filter(status="READY").update(run_after=timezone.now())
    run_jobs()  # attempt 2 runs and records the run
    assert jobs.finish(claimed, 1, [engine.messages.Message(text="late", sender="Machine", sender_name="AI",
                                                              session_id=str(run.pk), flow_id=str(run.flow_id))]) is False
    assert reload(run).status == Status.DONE
    assert list(Message.objects.values_list("text", flat=True)) == ['{"text": "hi"}']
