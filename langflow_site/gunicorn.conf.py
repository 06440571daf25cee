"""Gunicorn settings for `make run` and production; every value can be overridden on the command line.

Values come from the environment, then `.env` (as Django's settings read it), then the defaults,
so `make run PORT=9000` and a `.env` with HOST=0.0.0.0 both work.
"""

import os
from pathlib import Path

import environ

environ.Env.read_env(Path(__file__).resolve().parent.parent / ".env", overwrite=False)

bind = f"{os.environ.get('HOST', '127.0.0.1')}:{os.environ.get('PORT', '7860')}"
workers = int(os.environ.get("WEB_CONCURRENCY", "2"))
threads = int(os.environ.get("GUNICORN_THREADS", "1"))
timeout = int(os.environ.get("GUNICORN_TIMEOUT", "60"))
graceful_timeout = 30
keepalive = 5
# Access lines go through Django's LOGGING (the "gunicorn.access" logger), whose filter
# redacts any x-api-key passed in a query string.
accesslog = os.environ.get("GUNICORN_ACCESS_LOG", "-")
access_log_format = '%(h)s "%(r)s" %(s)s %(b)s %(M)sms'
errorlog = "-"
# The control socket lives at one fixed path per user: two servers on one machine would fight over it.
control_socket_disable = True
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1")


def post_fork(server, worker):
    """Attach the redaction filter to gunicorn's own access handlers too."""
    import logging

    from apikeys.logging import RedactApiKeysFilter

    for name in ("gunicorn.access", "gunicorn.error"):
        for handler in logging.getLogger(name).handlers:
            handler.addFilter(RedactApiKeysFilter())
