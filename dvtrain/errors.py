"""User-facing errors: one line that names the file and the problem."""

from __future__ import annotations

from pathlib import Path


class DvtrainError(Exception):
    """An error the CLI reports as a single line (no traceback), exit code 2."""


class InputError(DvtrainError):
    """A bad or missing input file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


class OutputError(DvtrainError):
    """An output that cannot be written: no room (disk full, file-size limit, quota), a
    read-only or unwritable folder. Names the output, never the temporary file."""

    def __init__(self, path: str | Path, problem: str):
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


def require_file(path: str | Path, what: str = "file") -> Path:
    """Return ``path`` as a Path, or raise InputError if it is not a readable file."""
    p = Path(path)
    if not p.exists():
        raise InputError(p, f"{what} does not exist")
    if not p.is_file():
        raise InputError(p, f"{what} is not a regular file")
    return p


def require_keras_model(path: str | Path, what: str = "model") -> Path:
    """``path`` as a Path, or InputError unless it is a file that looks like a Keras model
    (a .keras zip, or a legacy HDF5 .h5): checked before Keras is even imported."""
    p = require_file(path, what)
    with open(p, "rb") as fh:
        magic = fh.read(8)
    if not (magic.startswith(b"PK\x03\x04") or magic == b"\x89HDF\r\n\x1a\n"):
        raise InputError(p, f"{what} is not a Keras model (.keras zip file)")
    return p


def describe_validation_error(e) -> str:
    """One line from a pydantic ValidationError: ``field: message; ...`` (first three)."""
    parts = []
    for err in e.errors()[:3]:
        loc = ".".join(str(x) for x in err.get("loc", ())) or e.title
        parts.append(f"{loc}: {err.get('msg')}")
    return f"invalid {e.title}: " + "; ".join(parts)


class ShapeMismatchError(InputError):
    """Examples whose image shape/channels differ from each other or from the model.

    Like any :class:`DvtrainError` it is never retried: the same files give the same shapes.
    """


# ------------------------------------------------------------------ retry classification
# Which failures can go away on their own (a retry with backoff may succeed) and which
# cannot. Pure Python, no Prefect: tasks/stages.py turns it into a retry_condition_fn.
# Third-party exceptions (botocore, google-api-core, docker, requests, httpx, urllib3,
# aiohttp, grpc, TensorFlow) are recognised by their class's module and name, so none of
# those packages is imported here.

import errno as _errno  # noqa: E402

TRANSIENT, PERMANENT, UNKNOWN = "transient", "permanent", "unknown"

#: errnos of network and (network) storage hiccups
TRANSIENT_ERRNOS = frozenset(
    getattr(_errno, name) for name in (
        "ECONNRESET", "ECONNREFUSED", "ECONNABORTED", "ETIMEDOUT", "EHOSTUNREACH", "EHOSTDOWN",
        "ENETUNREACH", "ENETDOWN", "ENETRESET", "EPIPE", "EAGAIN", "EWOULDBLOCK", "EBUSY", "EINTR",
        "ESTALE", "EIO", "ENOBUFS", "ECOMM", "EREMOTEIO", "ENOLINK", "EPROTO",
    ) if hasattr(_errno, name)
)
#: HTTP statuses worth another try: timeouts, throttling, server-side errors (not 501)
TRANSIENT_HTTP = frozenset({408, 425, 429, 500, 502, 503, 504, 507, 509, 598, 599})
#: error codes S3 (and S3-compatible stores) use for throttling and server hiccups
TRANSIENT_S3_CODES = frozenset({
    "SlowDown", "Throttling", "ThrottlingException", "ThrottledException", "RequestThrottled",
    "RequestThrottledException", "TooManyRequestsException", "RequestLimitExceeded",
    "ProvisionedThroughputExceededException", "BandwidthLimitExceeded", "RequestTimeout",
    "RequestTimeoutException", "PriorRequestNotComplete", "InternalError", "ServiceUnavailable",
    "EC2ThrottledException", "TransactionInProgressException",
})
#: (module prefix, class name) of third-party transport errors: always transient
_TRANSIENT_CLASSES = {
    "botocore": {"EndpointConnectionError", "ConnectionClosedError", "ReadTimeoutError", "ConnectTimeoutError",
                 "ProxyConnectionError", "ResponseStreamingError", "IncompleteReadError", "HTTPClientError",
                 "ConnectionError"},
    "requests": {"ConnectionError", "Timeout", "ReadTimeout", "ConnectTimeout", "ChunkedEncodingError"},
    "urllib3": {"ProtocolError", "NewConnectionError", "ReadTimeoutError", "ConnectTimeoutError", "IncompleteRead",
                "TimeoutError", "ResponseError", "NameResolutionError"},
    "httpx": {"TransportError", "TimeoutException", "NetworkError", "RemoteProtocolError"},
    "httpcore": {"NetworkError", "TimeoutException", "RemoteProtocolError"},
    "aiohttp": {"ClientConnectionError", "ServerTimeoutError", "ClientPayloadError", "ServerDisconnectedError"},
    "google": {"TransportError", "ServiceUnavailable", "TooManyRequests", "InternalServerError", "DeadlineExceeded",
               "BadGateway", "GatewayTimeout", "TransferStalledError"},
    "tensorflow": {"UnavailableError", "DeadlineExceededError", "AbortedError"},
}
_GRPC_TRANSIENT = {"UNAVAILABLE", "DEADLINE_EXCEEDED", "RESOURCE_EXHAUSTED", "ABORTED"}
_TRANSIENT_WORDS = ("timeout", "timed out", "toomanyrequests", "too many requests", "connection reset",
                    "connection refused", "tls handshake", "temporarily unavailable", "i/o timeout", "eof")


def _classes(exc: BaseException) -> list[tuple[str, str]]:
    return [(c.__module__.split(".")[0], c.__name__) for c in type(exc).__mro__]


def _http_status(exc: BaseException):
    """The HTTP status an exception carries (requests/httpx/docker/aiohttp/google/botocore), else None."""
    for value in (
        getattr(getattr(exc, "response", None), "status_code", None),  # requests, httpx, docker
        getattr(exc, "status", None),  # aiohttp
        getattr(exc, "code", None) if not isinstance(exc, OSError) else None,  # google-api-core
    ):
        if isinstance(value, int) and not isinstance(value, bool) and 100 <= value < 600:
            return value
    response = getattr(exc, "response", None)
    if isinstance(response, dict):  # botocore ClientError
        status = (response.get("ResponseMetadata") or {}).get("HTTPStatusCode")
        return status if isinstance(status, int) else None
    return None


def _classify_one(exc: BaseException) -> str:
    if not isinstance(exc, Exception):  # KeyboardInterrupt, SystemExit, cancellation
        return PERMANENT
    if isinstance(exc, DvtrainError):  # bad input, shape mismatch: the same files fail again
        return PERMANENT
    classes = _classes(exc)
    modules = {m for m, _ in classes}

    # botocore ClientError: the service's error code says whether it is throttling
    if ("botocore", "ClientError") in classes:
        code = str(((getattr(exc, "response", None) or {}).get("Error") or {}).get("Code", ""))
        status = _http_status(exc)
        return TRANSIENT if code in TRANSIENT_S3_CODES or status in TRANSIENT_HTTP else PERMANENT
    # docker: a pull or API call that failed on the daemon/registry side
    if ("docker", "APIError") in classes:
        status = _http_status(exc)
        text = f"{exc} {getattr(exc, 'explanation', '')}".lower()
        if status in TRANSIENT_HTTP or any(w in text for w in _TRANSIENT_WORDS):
            return TRANSIENT
        return PERMANENT  # 404 image/manifest unknown, 401/403 denied, 400 bad request
    if ("docker", "DockerException") in classes:
        return PERMANENT  # bad arguments, missing config, container exit codes
    # grpc (google clients over gRPC, Beam job services)
    if "grpc" in modules and callable(getattr(exc, "code", None)):
        try:
            name = getattr(exc.code(), "name", "")
        except Exception:
            name = ""
        return TRANSIENT if name in _GRPC_TRANSIENT else PERMANENT
    for module, name in classes:
        if name in _TRANSIENT_CLASSES.get(module, ()):
            return TRANSIENT
    if ("botocore", "BotoCoreError") in classes:
        return PERMANENT  # no credentials/region, parameter validation, unknown service
    if ("google", "RetryError") in classes:  # google's own retries ran out: judge the last error
        cause = getattr(exc, "cause", None)
        return classify_error(cause) if isinstance(cause, BaseException) else TRANSIENT
    status = _http_status(exc)
    if status is not None and any(m in modules for m in ("google", "requests", "httpx", "aiohttp")):
        return TRANSIENT if status in TRANSIENT_HTTP else PERMANENT

    # the standard library
    if isinstance(exc, (ConnectionError, TimeoutError)):
        return TRANSIENT
    if isinstance(exc, (FileNotFoundError, IsADirectoryError, NotADirectoryError, PermissionError, FileExistsError)):
        return PERMANENT  # a missing or unreadable input stays missing
    if isinstance(exc, OSError):
        if exc.errno in TRANSIENT_ERRNOS:
            return TRANSIENT
        if exc.errno is not None:
            return PERMANENT  # ENOSPC, EROFS, ENAMETOOLONG, EINVAL, ...
        return UNKNOWN
    if isinstance(exc, (ValueError, TypeError, KeyError, IndexError, AttributeError, NameError, AssertionError,
                        NotImplementedError, ArithmeticError, ImportError, LookupError, SyntaxError)):
        return PERMANENT  # programming or data errors: deterministic
    return UNKNOWN


def classify_error(exc: BaseException) -> str:
    """``"transient"``, ``"permanent"`` or ``"unknown"`` for a task's exception.

    The exception itself decides when it can; an unknown wrapper (``RuntimeError(...)
    from ConnectionResetError``) is judged by its cause or context.
    """
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        verdict = _classify_one(current)
        if verdict != UNKNOWN:
            return verdict
        current = current.__cause__ or current.__context__
    return UNKNOWN


def is_transient(exc: BaseException) -> bool:
    """True for errors that may go away by themselves: network, storage, throttling, registry pulls."""
    return classify_error(exc) == TRANSIENT


def is_permanent(exc: BaseException) -> bool:
    """True for errors that a retry cannot fix: bad input, shape mismatch, programming errors."""
    return classify_error(exc) == PERMANENT
