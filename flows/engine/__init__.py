"""The flow engine: runs Langflow-format graphs with the components registered in ``components``.

Pure Python apart from reading the model settings: no database, no request. Node ``code``
fields are never executed or evaluated. Where a flow may make the server connect is ``egress``.
"""

from .cache import GraphCache
from .errors import ComponentError, FlowError, InvalidGraph, InvalidRunRequest, UpstreamError
from .graph import Graph, compile_graph
from .responses import process_response, run_response
from .run import RESULT, Plan, RunRequest, RunResult, check_plan, execute, plan_run, run_to_end

__all__ = [
    "RESULT", "ComponentError", "FlowError", "Graph", "GraphCache", "InvalidGraph", "InvalidRunRequest",
    "Plan", "RunRequest", "RunResult", "UpstreamError", "check_plan", "compile_graph", "execute", "plan_run",
    "process_response", "run_response", "run_to_end",
]
