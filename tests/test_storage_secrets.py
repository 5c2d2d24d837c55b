"""Credentials live only in the storage blocks: a flow that stages through S3 and GCS,
publishes, and fails on purpose leaves no secret in logs, artifacts, parameters, results,
console output or exception messages."""

from __future__ import annotations

import logging
import os
from pathlib import Path

import pytest
from prefect import flow, get_run_logger, task

from dvtrain.config import EvaluateConfig


def _fake_evaluate(cfg: EvaluateConfig) -> list[dict]:
    """Reads the (staged) VCFs, writes PREFIX.summary.csv: what evaluate's I/O looks like."""
    n = len(Path(cfg.truth_vcf).read_bytes()) + len(Path(cfg.query_vcf).read_bytes())
    Path(f"{cfg.output_prefix}.summary.csv").write_text(f"Type,bytes\nSNP,{n}\n")
    return [{"Type": "SNP", "bytes": n}]


@task(persist_result=True)
def staged_eval(config: EvaluateConfig) -> list[dict]:
    from tasks.artifacts import publish_table
    from tasks.staging import staged

    rows = staged(_fake_evaluate, config, outputs=("output_prefix",))
    publish_table("secret-scan-eval", rows, f"{config.query_vcf} vs {config.truth_vcf}")
    get_run_logger().info("evaluated %s -> %s", config.query_vcf, config.output_prefix)
    return rows


@task
def failing_read(location: str) -> bytes:
    from blocks.storage import read_bytes

    return read_bytes(location)


@flow(name="dvtrain-secret-scan")
def secret_scan_flow(truth: str, query: str, out_prefix: str, publish_to: str, storage_blocks: dict[str, str]) -> dict:
    from blocks import use_storage_blocks
    from tasks import publish_task

    use_storage_blocks(storage_blocks)
    rows = staged_eval(EvaluateConfig(truth_vcf=truth, query_vcf=query, output_prefix=out_prefix))
    url = publish_task(publish_to, out_prefix.rsplit("/", 1)[0], "scan")
    errors = [str(failing_read(loc, return_state=True).result(raise_on_failure=False))
              for loc in (query + ".missing", "s3://bucket-without-block/x")]
    return {"rows": rows, "url": url, "errors": errors}


def test_credentials_never_leak(storage, tmp_path, capfd, caplog, monkeypatch):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import (ArtifactFilter, ArtifactFilterFlowRunId, FlowRunFilter, FlowRunFilterId,
                                                LogFilter, LogFilterFlowRunId, LogFilterTaskRunId)
    from prefect.logging.handlers import APILogWorker
    from prefect.settings import PREFECT_LOCAL_STORAGE_PATH
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_gcp import GcpCredentials, GcsBucket

    from blocks import DvtrainStorage, StorageError, resolve
    from blocks.storage import read_bytes

    caplog.set_level(logging.DEBUG)
    monkeypatch.setenv("DVTRAIN_SCRATCH", str(tmp_path / "scratch"))
    s3, _ = resolve(storage.s3())
    (tmp_path / "t.vcf").write_text("##fileformat=VCFv4.2\n")
    (tmp_path / "q.vcf").write_text("##fileformat=VCFv4.2\n#CHROM\n")
    s3.upload(tmp_path / "t.vcf", "scan/truth.vcf")
    s3.upload(tmp_path / "q.vcf", "scan/query.vcf")
    DvtrainStorage(basepath=storage.s3("published")).save("secret-scan-results", overwrite=True)

    state = secret_scan_flow(storage.s3("scan/truth.vcf"), storage.s3("scan/query.vcf"), storage.gs("scan/out/eval"),
                             "secret-scan-results", {storage.gs(): storage.gcs_block}, return_state=True)
    result = state.result()
    assert result["rows"][0]["bytes"] > 0 and result["url"] == storage.s3("published/scan")
    assert "does not exist" in result["errors"][0] and "no storage block" in result["errors"][1]
    assert read_bytes(storage.gs("scan/out/eval.summary.csv")).startswith(b"Type,bytes")

    # error paths raised directly: missing object, missing block, unreachable endpoint
    messages = [str(result["errors"])]
    for call in (lambda: read_bytes(storage.gs("scan/nope")), lambda: resolve("gs://bucket-without-block/x")):
        with pytest.raises(Exception) as err:
            call()
        messages.append(f"{err.value!s} {err.value!r} {err.value.__cause__!r} {err.value.__context__!r}")
    dead = AwsCredentials(aws_access_key_id="AKIADVTRAINTEST", aws_secret_access_key=storage.secrets["aws_secret_access_key"],
                          region_name="us-east-1", aws_client_parameters={"endpoint_url": "http://127.0.0.1:9"})
    with pytest.raises(Exception) as err:
        from blocks.storage import S3Store

        S3Store(S3Bucket(bucket_name="dead", credentials=dead)).stat("x")
    messages.append(f"{err.value!s} {err.value!r}")
    messages += [repr(S3Bucket.load(storage.s3_block)), str(GcsBucket.load(storage.gcs_block)),
                 repr(GcpCredentials.load("dvtrain-test-gcp")), str(dead)]
    with pytest.raises(StorageError):
        resolve("s3://bucket-without-block/k")

    # everything the Prefect API holds about the run: logs (flow + task runs), parameters,
    # task runs, artifacts; plus persisted results and the console
    APILogWorker.drain_all(timeout=10)
    flow_run_id = state.state_details.flow_run_id
    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(flow_run_id)
        task_runs = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[flow_run_id])))
        logs = client.read_logs(log_filter=LogFilter(flow_run_id=LogFilterFlowRunId(any_=[flow_run_id])))
        logs += client.read_logs(log_filter=LogFilter(task_run_id=LogFilterTaskRunId(any_=[t.id for t in task_runs])))
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(  # this run's (the server is shared)
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run_id])))
    assert len(task_runs) >= 4 and any("evaluated" in log.message for log in logs)
    assert any(a.key == "secret-scan-eval" for a in artifacts)
    haystacks = {
        "logs": "\n".join(f"{log.name} {log.message}" for log in logs),
        "flow run parameters": repr(flow_run.parameters) + repr(flow_run),
        "task runs": "\n".join(repr(t) for t in task_runs),
        "artifacts": "\n".join(f"{a.key} {a.description} {a.data}" for a in artifacts),
        "exceptions and block reprs": "\n".join(messages),
        "captured logging": caplog.text,
    }
    results = Path(PREFECT_LOCAL_STORAGE_PATH.value())
    if results.is_dir():
        haystacks["persisted results"] = "\n".join(p.read_bytes().decode("latin-1") for p in results.rglob("*") if p.is_file())
    out, err_text = capfd.readouterr()
    haystacks["stdout/stderr"] = out + err_text
    assert storage.secrets and all(len(s) >= 16 for s in storage.secrets.values())
    leaks = [(where, name) for where, text in haystacks.items() for name, secret in storage.secrets.items() if secret in text]
    assert not leaks, f"secrets found: {leaks}"
    assert os.environ.get("STORAGE_EMULATOR_HOST") and storage.token_requests() > 0  # emulator, authenticated
