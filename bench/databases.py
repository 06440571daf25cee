"""Send every query to the database chosen at run time, so one process can time two databases."""

import contextlib

SELECTED = {"alias": "default"}


class SelectedDatabase:
    """Route every query to the database chosen by ``selected()``: the same code, two databases."""

    def db_for_read(self, model, **hints):
        return SELECTED["alias"]

    db_for_write = db_for_read

    def allow_relation(self, *args, **hints):
        return True

    def allow_migrate(self, *args, **hints):
        return True


@contextlib.contextmanager
def selected(alias: str):
    previous, SELECTED["alias"] = SELECTED["alias"], alias
    try:
        yield
    finally:
        SELECTED["alias"] = previous
