"""Shared fixtures. Real data lives in ../shared/data beside the checkout (CI has it)."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
SHARED = REPO.parent / "shared" / "data"
TINY = SHARED / "na12878-chr22-tiny"
PLATINUM = SHARED / "platinum-na12878-chr21"

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["conftest_storage"]  # real S3 (moto) and GCS (emulator) servers on loopback


@pytest.fixture(scope="session")
def tiny() -> Path:
    """Real NA12878 HiSeqX reads over a 12.4 kb slice of chr22 (contig `q`)."""
    if not (TINY / "NA12878.chr22.tiny.bam").exists():
        pytest.skip(f"shared test data not found at {TINY} (it sits beside the checkout in CI)")
    return TINY


@pytest.fixture(scope="session")
def tiny_stage(tiny, tmp_path_factory):
    """make_examples keyword sets for the real reads: ``tiny_stage["training"]`` (all of
    contig q confident, GIAB truth) and ``tiny_stage["calling"]``."""
    bed = tmp_path_factory.mktemp("tiny-bed") / "all.bed"
    bed.write_text("q\t0\t12356\n")
    calling = dict(mode="calling", ref=tiny / "q.fa", reads=[tiny / "NA12878.chr22.tiny.bam"])
    training = dict(calling, mode="training", truth_variants=tiny / "NA12878.chr22.tiny.giab.vcf", confident_regions=bed)
    return {"training": training, "calling": calling}


@pytest.fixture(scope="session")
def sim_dataset(tmp_path_factory) -> dict:
    """A small simulated genome (chr1 40 kb train, chr21 20 kb tune, chr20 30 kb test) with
    truth and generic/lowcov BAMs, simulated once per session for the flow tests. Read-only:
    a test that needs a changed input writes a copy."""
    from dvtrain.config import SimulateConfig
    from dvtrain.simulate import simulate

    return simulate(SimulateConfig(outdir=tmp_path_factory.mktemp("sim-data"), seed=7,
                                   contigs={"chr1": 40_000, "chr21": 20_000, "chr20": 30_000}))


@pytest.fixture(scope="session")
def platinum() -> Path:
    if not (PLATINUM / "PG_NA12878_chr21.vcf.gz").exists():
        pytest.skip(f"shared test data not found at {PLATINUM} (it sits beside the checkout in CI)")
    return PLATINUM


# One temporary Prefect server (SQLite in a temp dir) and one temporary PREFECT_HOME (so
# result/cache records don't leak into ~/.prefect) for the whole pytest session.
@pytest.fixture(scope="session")
def prefect_server():
    from prefect.settings import temporary_settings
    from prefect.testing.utilities import prefect_test_harness

    with contextlib.ExitStack() as stack:
        home = stack.enter_context(tempfile.TemporaryDirectory(prefix="prefect-home-"))
        # no telemetry from the test server (no network; its writes race the migration)
        stack.enter_context(temporary_settings(updates={"home": home, "server.analytics_enabled": False}))
        # a cold SQLite migration can take longer than the default 30 s
        stack.enter_context(prefect_test_harness(server_startup_timeout=180))
        yield
