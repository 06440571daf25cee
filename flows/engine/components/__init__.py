"""Every component this server can run, registered by Langflow's ``data.type``."""

# One import line per family of components, each saying what it registers: not merged by isort.
# isort: skip_file

from . import io, language_model, parser, prompt  # noqa: F401  (registers them)
from . import batch_run, loop, split_text, sql  # noqa: F401  (Batch Run, Loop, Split Text, SQL Database)
from . import files  # noqa: F401  (File, Save To File)
from . import agent, calculator, current_date, structured_output  # noqa: F401  (Agent and its tools)
from . import memory  # noqa: F401  (Memory Base)
from . import knowledge  # noqa: F401  (Knowledge: ingest into and retrieve from knowledge bases)
from . import url, web_search  # noqa: F401  (URL, Web Search)
from . import arxiv  # noqa: F401  (arXiv)
from . import webhook  # noqa: F401  (Webhook: a webhook call's body)
from .base import REGISTRY, Component, RunContext, register

__all__ = ["REGISTRY", "Component", "RunContext", "register"]
