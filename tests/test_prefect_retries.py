"""Stage retries: exponential backoff with jitter, only for errors that can go away.

The classification (:func:`dvtrain.errors.classify_error`) is pure Python; the Prefect
part is checked with real task runs against the session's test server.
"""

from __future__ import annotations

import errno
import time

import pytest
from prefect import flow, task
from prefect.cache_policies import NO_CACHE
from prefect.client.orchestration import get_client
from prefect.utilities.math import lower_clamp_multiple

from dvtrain.errors import (
    PERMANENT,
    TRANSIENT,
    UNKNOWN,
    InputError,
    ShapeMismatchError,
    classify_error,
    is_permanent,
    is_transient,
)
from tasks import stages
from tasks.stages import BACKOFF_SECONDS, RETRIES, RETRY_JITTER, STAGE_OPTIONS, retry_options


# ------------------------------------------------------------------ classification
def _http_response(status: int):
    import requests

    r = requests.Response()
    r.status_code = status
    return r


def _botocore_client_error(code: str, status: int):
    from botocore.exceptions import ClientError

    return ClientError({"Error": {"Code": code, "Message": "m"}, "ResponseMetadata": {"HTTPStatusCode": status}}, "PutObject")


def _chained(outer: type[BaseException], inner: BaseException) -> BaseException:
    try:
        try:
            raise inner
        except BaseException as e:
            raise outer("wrapped") from e
    except BaseException as e:
        return e


def transient_errors():
    import botocore.exceptions as boto
    import docker.errors
    import google.api_core.exceptions as gapi
    import requests

    return {
        "ConnectionResetError": ConnectionResetError(errno.ECONNRESET, "reset by peer"),
        "TimeoutError": TimeoutError("read timed out"),
        "OSError ETIMEDOUT": OSError(errno.ETIMEDOUT, "timed out"),
        "OSError ESTALE (NFS)": OSError(errno.ESTALE, "stale file handle"),
        "OSError EIO": OSError(errno.EIO, "input/output error"),
        "botocore EndpointConnectionError": boto.EndpointConnectionError(endpoint_url="https://s3.example"),
        "botocore ConnectionClosedError": boto.ConnectionClosedError(endpoint_url="https://s3.example"),
        "botocore ReadTimeoutError": boto.ReadTimeoutError(endpoint_url="https://s3.example"),
        "S3 SlowDown": _botocore_client_error("SlowDown", 503),
        "S3 RequestTimeout": _botocore_client_error("RequestTimeout", 400),
        "S3 500": _botocore_client_error("InternalError", 500),
        "S3 throttling": _botocore_client_error("ThrottlingException", 400),
        "GCS ServiceUnavailable": gapi.ServiceUnavailable("backend error"),
        "GCS TooManyRequests": gapi.TooManyRequests("rate limit"),
        "GCS InternalServerError": gapi.InternalServerError("oops"),
        "GCS DeadlineExceeded": gapi.DeadlineExceeded("deadline"),
        "docker pull 500": docker.errors.APIError("pull failed", response=_http_response(500)),
        "docker pull TLS timeout": docker.errors.APIError(
            "Get https://registry-1.docker.io/v2/: net/http: TLS handshake timeout"),
        "docker 429": docker.errors.APIError("toomanyrequests", response=_http_response(429)),
        "requests ConnectionError": requests.exceptions.ConnectionError("connection aborted"),
        "requests 503": requests.exceptions.HTTPError("503", response=_http_response(503)),
        "RuntimeError from ConnectionResetError": _chained(RuntimeError, ConnectionResetError()),
    }


def permanent_errors():
    import botocore.exceptions as boto
    import docker.errors
    import google.api_core.exceptions as gapi

    return {
        "InputError": InputError("x.bam", "does not exist"),
        "ShapeMismatchError": ShapeMismatchError("x.tfrecord.gz", "image shape [100, 221, 6] does not fit"),
        "ValueError": ValueError("bad value"),
        "TypeError": TypeError("bad type"),
        "KeyError": KeyError("label"),
        "FileNotFoundError": FileNotFoundError(errno.ENOENT, "No such file", "in.bam"),
        "PermissionError": PermissionError(errno.EACCES, "denied", "in.bam"),
        "OSError ENOSPC": OSError(errno.ENOSPC, "no space left on device"),
        "S3 NoSuchKey": _botocore_client_error("NoSuchKey", 404),
        "S3 AccessDenied": _botocore_client_error("AccessDenied", 403),
        "botocore NoCredentialsError": boto.NoCredentialsError(),
        "GCS NotFound": gapi.NotFound("no such object"),
        "GCS Forbidden": gapi.Forbidden("denied"),
        "docker ImageNotFound": docker.errors.ImageNotFound("manifest unknown", response=_http_response(404)),
        "KeyboardInterrupt": KeyboardInterrupt(),
        # the top-level error decides: a ValueError raised while handling a timeout is a bug
        "ValueError during TimeoutError": _chained(ValueError, TimeoutError()),
    }


@pytest.mark.parametrize("name", list(transient_errors()))
def test_transient_errors_are_retried(name):
    exc = transient_errors()[name]
    assert classify_error(exc) == TRANSIENT and is_transient(exc) and not is_permanent(exc)


@pytest.mark.parametrize("name", list(permanent_errors()))
def test_errors_that_cannot_go_away_are_not_retried(name):
    exc = permanent_errors()[name]
    assert classify_error(exc) == PERMANENT and is_permanent(exc) and not is_transient(exc)


def test_unplaceable_errors_are_unknown_and_retried():
    for exc in (RuntimeError("something"), OSError("NFS hiccup"), MemoryError()):
        assert classify_error(exc) == UNKNOWN and not is_permanent(exc)


def test_classification_imports_no_cloud_sdk():
    """The classifier works by class module and name: it must not pull in boto/google/docker."""
    import subprocess
    import sys

    code = ("import sys, dvtrain.errors as e; e.classify_error(OSError(104, 'x')); "
            "print(sorted(m for m in ('botocore', 'google.api_core', 'docker', 'prefect') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


# ------------------------------------------------------------------ retry settings of the stage tasks
def test_stage_tasks_back_off_exponentially_with_jitter():
    nominal = [BACKOFF_SECONDS * 2**i for i in range(RETRIES)]
    assert RETRIES >= 3 and nominal == [4.0, 8.0, 16.0] and 0 < RETRY_JITTER <= 1
    for name in ("coverage_task", "make_examples_task", "shuffle_task", "train_task", "call_task",
                 "evaluate_task", "report_task"):
        t = getattr(stages, name)
        assert (t.retries, t.retry_delay_seconds, t.retry_jitter_factor) == (RETRIES, nominal, RETRY_JITTER), name
        assert t.retry_condition_fn is stages.worth_retrying, name
    assert STAGE_OPTIONS["persist_result"] is True


# ------------------------------------------------------------------ real task runs
ATTEMPTS: list[float] = []
FACTOR = 0.4  # seconds: delays 0.4, 0.8, 1.6 (before jitter)


def _fail_with(kind: str) -> BaseException:
    return {
        "transient": ConnectionResetError(errno.ECONNRESET, "connection reset by peer"),
        "input": InputError("x.bam", "does not exist"),
        "shape": ShapeMismatchError("x.tfrecord.gz", "image shape [100, 221, 6] differs from [100, 221, 7]"),
        "value": ValueError("programming error"),
        "missing": FileNotFoundError(errno.ENOENT, "No such file or directory", "in.bam"),
    }[kind]


@task(cache_policy=NO_CACHE, **retry_options(retries=3, backoff_seconds=FACTOR))
def flaky(kind: str, failures: int) -> int:
    ATTEMPTS.append(time.monotonic())
    if len(ATTEMPTS) <= failures:
        raise _fail_with(kind)
    return len(ATTEMPTS)


@flow
def run_flaky(kind: str, failures: int):
    return flaky(kind, failures, return_state=True)


def _retry_delays(task_run_id) -> list[float]:
    """The delays Prefect scheduled: AwaitingRetry's scheduled time minus its timestamp."""
    with get_client(sync_client=True) as client:
        states = client.read_task_run_states(task_run_id)
    waits = [s for s in sorted(states, key=lambda s: s.timestamp) if s.name == "AwaitingRetry"]
    return [(s.state_details.scheduled_time - s.timestamp).total_seconds() for s in waits]


def test_transient_failures_are_retried_with_exponential_jittered_backoff(prefect_server):
    ATTEMPTS.clear()
    state = run_flaky("transient", failures=3)
    assert state.is_completed() and state.result() == 4  # 3 failures + the success
    assert len(ATTEMPTS) == 4

    nominal = [FACTOR * 2**i for i in range(3)]
    low, high = lower_clamp_multiple(1 + RETRY_JITTER), 1 + RETRY_JITTER
    delays = _retry_delays(state.state_details.task_run_id)
    assert len(delays) == 3
    for d, n in zip(delays, nominal):
        assert n * low - 0.01 <= d <= n * high + 0.01, (delays, nominal)
    assert any(abs(d - n) > 1e-3 for d, n in zip(delays, nominal))  # jittered, not the bare schedule
    # the attempts really were that far apart, and the waits grow
    gaps = [b - a for a, b in zip(ATTEMPTS, ATTEMPTS[1:])]
    for g, d in zip(gaps, delays):
        assert g >= d - 0.05, (gaps, delays)
    assert gaps[0] < gaps[2], gaps


@pytest.mark.parametrize("kind", ["input", "shape", "value", "missing"])
def test_errors_that_cannot_go_away_run_exactly_once(prefect_server, kind):
    ATTEMPTS.clear()
    state = run_flaky(kind, failures=10, return_state=True)
    assert state.is_failed()
    assert len(ATTEMPTS) == 1
    with pytest.raises(type(_fail_with(kind))):
        state.result()
