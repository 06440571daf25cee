"""Gunicorn settings for `make run` and production; every value can be overridden on the command line.

Values come from the environment, then `.env` (as Django's settings read it), then the defaults,
so `make run PORT=9000` and a `.env` with HOST=0.0.0.0 both work.
"""

import os
import resource
from pathlib import Path

import environ

environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env", overwrite=False)

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '7860')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
# ASGI: each worker is one event loop (langflow_site/server.py), with runs awaited on it.
worker_class = "langflow_site.server.Worker"
# Seconds without a heartbeat before gunicorn replaces a worker (a loop blocked that long).
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
# On SIGTERM or a reload (SIGHUP), a worker stops accepting and lets its requests and streams
# in flight finish for this long; new connections go to the new workers meanwhile.
graceful_timeout = int(os.environ.get("GRACEFUL_TIMEOUT", "90"))
keepalive = 5
# Each stream in flight holds a client socket and a model-server socket.
backlog = int(os.environ.get("GUNICORN_BACKLOG", "4096"))
# Access lines (uvicorn's, through gunicorn's handlers) are filtered by post_fork below, which
# redacts any x-api-key passed in a query string.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
errorlog = "-"
# The control socket lives at one fixed path per user: two servers on one machine would fight over it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def _raise_open_file_limit() -> None:
    """As many sockets as the system lets this user have: two per stream in flight."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft != hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


_raise_open_file_limit()


def post_fork(server, worker):
    """Attach the redaction filter to gunicorn's own access handlers too."""
    import logging

    from apikeys.logging import RedactApiKeysFilter

    for name in ("gunicorn.access", "gunicorn.error", "uvicorn.access", "uvicorn.error"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactApiKeysFilter())


# The background job workers (webhook runs): JOB_WORKERS processes of `manage.py runworker`,
# started once the server is ready and stopped with it (langflow_site/jobworkers.py).
def when_ready(server):
    from langflow_site import jobworkers

    jobworkers.start(int(os.environ.get("JOB_WORKERS", "1")), graceful_timeout=graceful_timeout)


def on_exit(server):
    from langflow_site import jobworkers

    jobworkers.stop()
