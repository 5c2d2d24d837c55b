"""SIGKILL the real case-study flow (a subprocess) and re-run it (issue 9). The CI subset:
a kill in training (the re-run resumes from the saved state), one while the shuffle
spills its buckets, one in the middle of a make_examples shard being written; plus two clean
runs whose outputs must be identical. The 20-kill version is benchmarks/robustness.py.

Each re-run must exit 0, reproduce every output of the clean run byte for byte (harness.digests),
leave no temporary file, and not run again any task that had completed before the kill.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).parent))
import harness  # noqa: E402

KILLS = [
    ("path", "baseline/train/train_state.npz"),  # training, after its first saved state
    ("path", "custom/shuffled/.train.spill.*.part"),  # the shuffle, its buckets half spilled (lives ~1 s)
    ("path", "baseline/examples/.train.tfrecord-0000?-of-00002.gz.*.part*"),  # a make_examples shard half written
]


@pytest.fixture(scope="module")
def clean(prefect_server, tmp_path_factory):
    root = tmp_path_factory.mktemp("faults")
    data = harness.make_dataset(root)
    config = harness.write_config(root, data)
    runs = {}
    for name in ("clean-a", "clean-b"):
        env = harness.subprocess_env(root / f"home-{name}")
        run = harness.run_flow(config, root / name, env, log_path=root / f"{name}.log")
        assert run.rc == 0, run.log[-3000:]
        runs[name] = harness.digests(root / name)
    return {"root": root, "config": config, "digests": runs["clean-a"], "other": runs["clean-b"]}


def test_two_clean_runs_give_identical_outputs(clean):
    a, b = clean["digests"], clean["other"]
    # what the issue names: examples, shuffled records + pbtxt, model weights, VCFs (minus the date)
    for pattern in ("examples/train.tfrecord-", "shuffled/train-", "shuffled/train.dataset_config.pbtxt",
                    "train/best_model.keras", "custom/calls.vcf.gz", "custom/eval.summary.csv", "report.md"):
        assert any(pattern in k for k in a), pattern
    assert a == b, sorted(k for k in set(a) | set(b) if a.get(k) != b.get(k))
    assert harness.temp_files(clean["root"] / "clean-a") == []


@pytest.mark.parametrize("index,kill", list(enumerate(KILLS)), ids=["training", "shuffle-spill", "make-examples-write"])
def test_killed_run_is_repaired_by_a_rerun(clean, index, kill):
    mode, value = kill
    env = harness.subprocess_env(clean["root"] / f"home-trial-{index}")
    t = harness.trial(index, mode, value, value, clean["config"], clean["root"], env, clean["digests"])
    assert t.killed, f"the run finished before {value} appeared"
    assert t.rerun_rc == 0, (clean["root"] / f"trial-{index:02d}.rerun.log").read_text()[-3000:]
    assert t.differing == [], t.differing
    assert t.temp_left == [], t.temp_left
    assert t.completed_before_kill > 0 and t.recomputed == [], t.recomputed
