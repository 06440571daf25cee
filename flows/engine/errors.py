"""Why a flow cannot run. Each error carries the HTTP status the API answers with."""


class FlowError(Exception):
    """A flow that cannot run as asked; ``str(error)`` is safe to show to the caller."""

    status_code = 422

    def __init__(self, message: str, *, node_ids: tuple[str, ...] = ()):
        super().__init__(message)
        self.node_ids = node_ids


class InvalidGraph(FlowError):
    """The stored graph cannot run: a cycle, a dangling edge, an unsupported component or output."""


class InvalidRunRequest(FlowError):
    """The run request does not fit the flow: a tweak or an input that names nothing, a bad choice."""


class ComponentError(FlowError):
    """A component refused its parameters (a wrong type, a missing value)."""


class UpstreamError(FlowError):
    """A service a component calls (the model server) failed. The details go to the log only."""

    status_code = 502
