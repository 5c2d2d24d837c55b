"""Bad remote inputs through the real CLI (issue 9): ``dvtrain run`` with an S3 input that
is missing, in a bucket without a storage block, in a bucket that does not exist, or behind
credentials the store rejects. Each gets one line naming the URI and the problem, exit 2,
no traceback, no secret echoed, and no Prefect run started (the check runs before it).

The stores are real servers on loopback: moto (one of them checking signatures) behind the
saved S3Bucket/AwsCredentials blocks of the session's Prefect server."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def remote(storage, s3_endpoint, s3_endpoint_with_auth, sim_dataset) -> dict:
    from prefect_aws import AwsCredentials, S3Bucket

    missing_bucket = "dvtrain-no-such-bucket-" + secrets.token_hex(3)
    creds = AwsCredentials.load("dvtrain-test-aws")  # the session's moto credentials
    S3Bucket(bucket_name=missing_bucket, credentials=creds).save("dvtrain-test-missing-bucket", overwrite=True)
    secret = "SECRET-" + secrets.token_hex(20)
    bad = AwsCredentials(aws_access_key_id="AKIAWRONGKEY0000", aws_secret_access_key=secret, region_name="us-east-1",
                         aws_client_parameters={"endpoint_url": s3_endpoint_with_auth})
    bad.save("dvtrain-test-bad-aws", overwrite=True)
    S3Bucket(bucket_name="dvtrain-locked", credentials=AwsCredentials.load("dvtrain-test-bad-aws")).save(
        "dvtrain-test-locked", overwrite=True)
    return {"storage": storage, "sim": sim_dataset, "missing_bucket": missing_bucket, "secret": secret}


def _run(tmp_path: Path, sim: dict, reads: str, blocks: dict) -> subprocess.CompletedProcess:
    from prefect.settings import PREFECT_API_URL

    cfg = {"reference": str(sim["ref"]), "truth_vcf": str(sim["truth_vcf"]), "truth_bed": str(sim["truth_bed"]),
           "reads": [reads], "baseline": {"reads": [str(sim["bams"]["generic"])]}, "storage_blocks": blocks,
           "workdir": str(tmp_path / "wd"), "peers": []}
    path = tmp_path / "case-study.yaml"
    path.write_text(yaml.safe_dump(cfg))
    env = dict(os.environ, PREFECT_API_URL=str(PREFECT_API_URL.value()), PYTHONUNBUFFERED="1")
    return subprocess.run([sys.executable, "-m", "dvtrain.cli", "run", "--config", str(path)], cwd=REPO, env=env,
                          capture_output=True, text=True, timeout=300)


CASES = {
    "s3-key-missing": (lambda r: r["storage"].s3("inputs/missing.bam"), lambda r: {}, "does not exist"),
    "s3-bucket-without-block": (lambda r: "s3://dvtrain-bucket-without-block/x.bam", lambda r: {}, "no storage block"),
    "s3-bucket-missing": (lambda r: f"s3://{r['missing_bucket']}/lowcov.bam",
                          lambda r: {f"s3://{r['missing_bucket']}": "dvtrain-test-missing-bucket"},
                          "bucket does not exist"),
    "s3-bad-credentials": (lambda r: "s3://dvtrain-locked/lowcov.bam", lambda r: {"s3://dvtrain-locked": "dvtrain-test-locked"},
                           "credentials were rejected"),
}


@pytest.mark.parametrize("case", list(CASES))
def test_bad_remote_input(remote, tmp_path, case):
    location, blocks, problem = CASES[case]
    loc = location(remote)
    proc = _run(tmp_path, remote["sim"], loc, blocks(remote))
    both = proc.stdout + proc.stderr
    assert proc.returncode == 2, both[-3000:]
    assert "Traceback" not in both, both[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert lines[0].startswith("dvtrain: error: ") and loc.split("/")[2] in lines[0], lines[0]
    assert problem in lines[0], lines[0]
    assert remote["secret"] not in both and remote["storage"].secrets["aws_secret_access_key"] not in both
    assert not (tmp_path / "wd").exists()  # nothing started, nothing written
