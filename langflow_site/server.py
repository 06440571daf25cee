"""The ASGI worker `make run` serves with: gunicorn supervises, uvicorn serves each process.

One event loop per process: an async run waiting on a model costs that process a coroutine,
not a thread, so each worker holds thousands of runs and streams in flight.
"""

from uvicorn_worker import UvicornWorker


class Worker(UvicornWorker):
    # Django answers no ASGI lifespan events; uvloop and httptools are the fast loop and parser.
    CONFIG_KWARGS = {"loop": "uvloop", "http": "httptools", "lifespan": "off", "server_header": False}
