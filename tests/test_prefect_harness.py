"""Shared Prefect test server for the tests/test_prefect_*.py modules.

One temporary Prefect server (SQLite in a temp dir) and one temporary PREFECT_HOME (so
result/cache records don't leak into ~/.prefect) for the whole pytest session, however
many modules ask for it: other modules import ``prefect_server`` from here.
"""

from __future__ import annotations

import contextlib
import tempfile

import pytest

_STACK: contextlib.ExitStack | None = None


@pytest.fixture(scope="session")
def prefect_server(request):
    """Start (once) a Prefect test harness; torn down when the pytest session ends."""
    global _STACK
    if _STACK is None:
        from prefect.settings import temporary_settings
        from prefect.testing.utilities import prefect_test_harness

        stack = contextlib.ExitStack()
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-home-"))
        # no telemetry from the test server (no network; its writes race the migration)
        stack.enter_context(temporary_settings(updates={"home": home, "server.analytics_enabled": False}))
        # a cold SQLite migration can take longer than the default 30 s
        stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        request.config.add_cleanup(stack.close)
        _STACK = stack
    yield


def test_harness_isolates_prefect_home(prefect_server):
    from prefect.settings import get_current_settings

    s = get_current_settings()
    assert "prefect-home-" in str(s.home)
    assert str(s.results.local_storage_path).startswith(str(s.home))
    assert s.api.url and s.api.url.startswith("http://")
