"""Every component this server can run, registered by Langflow's ``data.type``."""

from . import io, language_model, parser, prompt  # noqa: F401  (registers them)
from . import sql  # noqa: F401  (SQL Database, Split Text, Batch Run, Loop)
from .base import REGISTRY, Component, RunContext, register

__all__ = ["REGISTRY", "Component", "RunContext", "register"]
