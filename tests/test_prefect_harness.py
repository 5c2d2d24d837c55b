"""The shared Prefect test server (fixture ``prefect_server`` in conftest.py)."""

from __future__ import annotations

def test_harness_isolates_prefect_home(prefect_server):
    from prefect.settings import get_current_settings

    s = get_current_settings()
    assert "prefect-home-" in str(s.home)
    assert str(s.results.local_storage_path).startswith(str(s.home))
    assert s.api.url and s.api.url.startswith("http://")
