"""The shared Prefect test server (fixture ``prefect_server`` in conftest.py)."""

from __future__ import annotations

def test_harness_isolates_prefect_home(prefect_server):
    from prefect.settings import get_current_settings

    s = get_current_settings()
    assert "prefect-home-" in str(s.home)
    assert str(s.results.local_storage_path).startswith(str(s.home))
    assert s.api.url and s.api.url.startswith("http://")


def test_importing_flows_gives_the_ephemeral_server_time_to_start():
    """Prefect waits 20 s for an ephemeral server by default, less than a cold machine's first
    SQLite migration; importing ``flows`` (dvtrain run, python -m flows, Python callers) first
    raises that to 240 s, and a value already in the environment is kept. Fresh interpreters:
    Prefect reads its settings when first imported."""
    import os
    import subprocess
    import sys

    probe = ("import flows\nfrom prefect.settings import get_current_settings\n"
             "print(get_current_settings().server.ephemeral.startup_timeout_seconds)")
    var = "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS"
    env = {k: v for k, v in os.environ.items() if k != var}
    for given, expected in ((None, "240"), ("99", "99")):
        run_env = env if given is None else {**env, var: given}
        out = subprocess.run([sys.executable, "-c", probe], env=run_env, capture_output=True, text=True, check=True)
        assert out.stdout.strip().splitlines()[-1] == expected
