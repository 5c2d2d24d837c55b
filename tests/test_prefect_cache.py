"""The content-keyed cache policy (keys; real cached task runs) and the stage tasks' retry rule."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest
from prefect import flow, task

from prefect.cache_policies import NO_CACHE

from dvtrain.config import EvaluateConfig, ShuffleConfig
from dvtrain.errors import InputError
from tasks.cache import FileContentInputs, dvtrain_modules, fingerprint, missing_paths
from tasks.artifacts import artifact_key
from tasks.stages import STAGE_OPTIONS


POLICY = FileContentInputs(outputs=("output_prefix", "output_pattern_prefix", "out"))


def key(*inputs, **named) -> str:
    """The policy's key without a task context (no TASK_SOURCE part, no record probing)."""
    return POLICY.base_key(None, dict(enumerate(inputs), **named) if inputs else named, {})


def write(path: Path, text: str, mtime_ns: int | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    if mtime_ns is not None:  # make an in-place edit visible even on coarse-mtime file systems
        os.utime(path, ns=(mtime_ns, mtime_ns))
    return path


def evaluate_config(tmp: Path, truth: Path, prefix: str = "eval") -> EvaluateConfig:
    return EvaluateConfig(truth_vcf=truth, query_vcf=tmp / "query.vcf", output_prefix=tmp / prefix)


# ------------------------------------------------------------------ keys
def test_content_change_at_same_path_changes_key(tmp_path):
    truth = write(tmp_path / "truth.vcf", "AAAA", mtime_ns=1_000_000_000)
    write(tmp_path / "query.vcf", "q")
    before = key(config=evaluate_config(tmp_path, truth))
    write(truth, "AAAB", mtime_ns=2_000_000_000)  # same size, same path, new content
    assert key(config=evaluate_config(tmp_path, truth)) != before


def test_identical_copy_elsewhere_shares_key_only_with_same_outputs(tmp_path):
    a = write(tmp_path / "a" / "truth.vcf", "same bytes")
    b = tmp_path / "b" / "renamed.vcf"
    b.parent.mkdir()
    shutil.copy(a, b)
    write(tmp_path / "query.vcf", "q")
    # inputs are keyed by content, not by path ...
    assert key(config=evaluate_config(tmp_path, a)) == key(config=evaluate_config(tmp_path, b))
    # ... but a different output location is a different result
    assert key(config=evaluate_config(tmp_path, a)) != key(config=evaluate_config(tmp_path, a, prefix="other"))


def test_outputs_are_keyed_by_path_not_content(tmp_path):
    truth = write(tmp_path / "truth.vcf", "t")
    write(tmp_path / "query.vcf", "q")
    cfg = evaluate_config(tmp_path, truth)
    before = key(config=cfg)
    write(Path(str(cfg.output_prefix)), "now the output exists")  # as after a first run
    assert key(config=cfg) == before
    assert fingerprint(cfg, frozenset({"output_prefix"}))["output_prefix"] == {"output": str(cfg.output_prefix)}


def test_companion_index_is_part_of_the_key(tmp_path):
    truth = write(tmp_path / "truth.vcf.gz", "vcf")
    write(tmp_path / "query.vcf", "q")
    no_index = key(config=evaluate_config(tmp_path, truth))
    write(tmp_path / "truth.vcf.gz.tbi", "index 1", mtime_ns=1_000_000_000)
    with_index = key(config=evaluate_config(tmp_path, truth))
    write(tmp_path / "truth.vcf.gz.tbi", "index 2", mtime_ns=2_000_000_000)
    assert len({no_index, with_index, key(config=evaluate_config(tmp_path, truth))}) == 3


def test_shard_specs_and_dataset_pbtxt_are_keyed_by_shard_content(tmp_path):
    shards = [write(tmp_path / f"x.tfrecord-{i:05d}-of-00002.gz", f"shard {i}", mtime_ns=10**9) for i in range(2)]
    pbtxt = write(tmp_path / "train.pbtxt", f'name: "train"\ntfrecord_path: "{tmp_path}/x.tfrecord-?????-of-00002.gz"\nnum_examples: 2\n')

    def shuffle_key():
        return key(config=ShuffleConfig(input_pattern_list=[str(tmp_path / "x.tfrecord@2.gz")],
                                        output_pattern_prefix=str(tmp_path / "out"), output_dataset_name="train"))

    spec_before, pbtxt_before = shuffle_key(), key(pbtxt)
    assert fingerprint(str(tmp_path / "x.tfrecord@2.gz"))["files"][1]["content"]  # both shards resolved
    write(shards[1], "shard X", mtime_ns=2 * 10**9)  # same size, new content, pbtxt untouched
    assert shuffle_key() != spec_before
    assert key(pbtxt) != pbtxt_before


def test_non_file_strings_are_kept_verbatim(tmp_path):
    assert fingerprint({"regions": ["chr20", "chr1:1-100"], "missing": tmp_path / "nope"}) == {
        "regions": ["chr20", "chr1:1-100"], "missing": str(tmp_path / "nope")}


def test_stage_source_covers_dvtrain_modules_imported_anywhere():
    assert set(dvtrain_modules("dvtrain.config")) == {"dvtrain.config", "dvtrain.errors", "dvtrain.uri"}
    # train() imports .model inside the function: a model change must invalidate training
    assert {"dvtrain.train", "dvtrain.model", "dvtrain.shuffle", "dvtrain.fileio"} <= set(dvtrain_modules("dvtrain.train"))


def test_missing_paths_sees_deleted_outputs_and_shards(tmp_path):
    f = write(tmp_path / "a.txt", "a")
    for i in range(2):
        write(tmp_path / f"e.tfrecord-{i:05d}-of-00002.gz", "e")
    result = {"path": f, "spec": str(tmp_path / "e.tfrecord@2.gz"), "name": "chr1", "n": 3, "rows": [{"Type": "SNP/INDEL"}]}
    assert missing_paths(result) == []
    (tmp_path / "e.tfrecord-00001-of-00002.gz").unlink()
    f.unlink()
    assert missing_paths(result) == [str(f), str(tmp_path / "e.tfrecord@2.gz")]


# ------------------------------------------------------------------ real cached task runs
COUNTER: list[Path] = []


@task(cache_policy=FileContentInputs(outputs=("out",)), persist_result=True)
def upper_copy(src: Path, out: Path) -> dict:
    """Writes an output file; every real execution appends a line to the counter file."""
    with open(COUNTER[0], "a") as fh:
        fh.write(f"{src} -> {out}\n")
    out.write_text(src.read_text().upper())
    return {"out": out, "chars": len(src.read_text())}


def executions() -> int:
    return len(COUNTER[0].read_text().splitlines()) if COUNTER[0].exists() else 0


@flow
def run_once(src: Path, out: Path) -> tuple[str, dict]:
    state = upper_copy(src, out, return_state=True)
    return state.name, state.result()


def run(src: Path, out: Path) -> tuple[str, dict]:
    return run_once(src, out)


def test_task_is_served_from_cache_and_rerun_when_needed(prefect_server, tmp_path):
    COUNTER[:] = [tmp_path / "executions.log"]
    src = write(tmp_path / "in" / "reads.txt", "acgt", mtime_ns=10**9)
    (tmp_path / "out").mkdir()
    out = tmp_path / "out" / "result.txt"

    state, result = run(src, out)
    assert (state, executions(), out.read_text()) == ("Completed", 1, "ACGT")

    state, cached = run(src, out)  # same content, same output: cache hit
    assert (state, executions(), cached) == ("Cached", 1, result)

    copy = tmp_path / "elsewhere" / "copy.txt"
    copy.parent.mkdir()
    shutil.copy(src, copy)
    assert run(copy, out)[0] == "Cached"  # identical content at another path: still a hit
    assert executions() == 1

    write(src, "tttt", mtime_ns=2 * 10**9)  # edited in place
    state, result = run(src, out)
    assert (state, executions(), out.read_text()) == ("Completed", 2, "TTTT")

    out.unlink()  # the output the cached result points at is gone: must recompute
    state, _ = run(src, out)
    assert (state, executions(), out.read_text()) == ("Completed", 3, "TTTT")
    assert run(src, out)[0] == "Cached"  # and is cached again afterwards
    assert executions() == 3

    other = tmp_path / "out" / "other.txt"  # same inputs, other output location: runs
    assert run(src, other)[0] == "Completed" and other.read_text() == "TTTT"
    assert executions() == 4


# ------------------------------------------------------------------ retries and artifact keys
ATTEMPTS: list[str] = []


@task(**{**STAGE_OPTIONS, "retry_delay_seconds": 0, "cache_policy": NO_CACHE})
def flaky(kind: str) -> str:
    ATTEMPTS.append(kind)
    raise InputError("x.bam", "does not exist") if kind == "input" else OSError("NFS hiccup")


@pytest.mark.parametrize("kind, attempts", [("input", 1), ("transient", 1 + STAGE_OPTIONS["retries"])])
def test_stage_tasks_retry_transient_errors_only(prefect_server, kind, attempts):
    @flow
    def once():
        return flaky(kind)

    ATTEMPTS.clear()
    assert once(return_state=True).is_failed()
    assert len(ATTEMPTS) == attempts


def test_artifact_keys_are_valid():
    assert artifact_key("evaluation-Custom_Model v2") == "evaluation-custom-model-v2"


def test_training_markdown_says_when_the_warm_start_model_is_kept():
    from tasks.artifacts import training_markdown

    row = {"epoch": 0, "train/loss": 0.5, "train/categorical_accuracy": 0.8, "tune/accuracy": 0.7,
           "tune/f1_weighted": 0.7}
    base = {"train_examples": 10, "tune_examples": 4, "history": [row], "best_model": "m.keras",
            "best_metrics": dict(row)}
    assert "Best epoch 1: tune/f1_weighted 0.7000" in training_markdown(base, "exp")
    kept = dict(base, best_is_init_checkpoint=True, message="no evaluation beat the warm-start model; it is exported")
    md = training_markdown(kept, "exp")
    assert "**no evaluation beat the warm-start model; it is exported**" in md and "Best epoch" not in md
