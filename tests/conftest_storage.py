"""Real object-store servers on loopback for the storage tests (a pytest plugin: see conftest.py).

* S3: moto's standalone server (``moto_server``), reached by the real ``S3Bucket`` block
  through ``AwsCredentials(aws_client_parameters={"endpoint_url": ...})``.
* GCS: ``gcp-storage-emulator --in-memory``, reached by the real ``GcsBucket`` block;
  google-cloud-storage sends requests to ``STORAGE_EMULATOR_HOST``. The ``GcpCredentials``
  block holds a freshly generated service-account key whose ``token_uri`` is a tiny OAuth
  token endpoint started here, so the client authenticates exactly as against real GCS
  (signed JWT -> access token -> Bearer header), offline.

Every secret (AWS secret key, the private key, the access token) is a distinctive random
string, exposed as ``storage.secrets`` for the tests that scan logs for them.

Nothing starts unless a test asks for these fixtures.
"""

from __future__ import annotations

import json
import os
import secrets
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Optional

import pytest

BIN = Path(sys.executable).parent


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _wait_http(url: str, proc: subprocess.Popen, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{proc.args[0]} exited with {proc.returncode} before answering {url}")
        try:
            urllib.request.urlopen(url, timeout=2).close()
            return
        except urllib.error.HTTPError:  # answering is enough
            return
        except OSError:
            time.sleep(0.1)
    raise RuntimeError(f"{url} did not answer within {timeout:.0f} s")


def _server(args: list[str], url: str, env: Optional[dict] = None):
    proc = subprocess.Popen(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
                            env={**os.environ, **(env or {})})
    try:
        _wait_http(url, proc)
        yield url
    finally:
        proc.terminate()
        try:
            proc.wait(10)
        except subprocess.TimeoutExpired:
            proc.kill()


@pytest.fixture(scope="session")
def s3_endpoint():
    """URL of a moto S3 server on loopback."""
    port = _free_port()
    yield from _server([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}/")


@pytest.fixture(scope="session")
def s3_endpoint_with_auth():
    """A moto S3 server that checks credentials (every request signed by a known key), so
    wrong credentials get S3's real refusal (InvalidAccessKeyId, 403)."""
    port = _free_port()
    yield from _server([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], f"http://127.0.0.1:{port}/",
                       env={"INITIAL_NO_AUTH_ACTION_COUNT": "0"})


@pytest.fixture(scope="session")
def gcs_endpoint():
    """URL of an in-memory GCS emulator on loopback; STORAGE_EMULATOR_HOST points at it."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    old = os.environ.get("STORAGE_EMULATOR_HOST")
    gen = _server([str(BIN / "gcp-storage-emulator"), "start", "--host", "127.0.0.1", "--port", str(port),
                   "--in-memory", "--quiet"], url + "/")
    next(gen)
    os.environ["STORAGE_EMULATOR_HOST"] = url
    try:
        yield url
    finally:
        if old is None:
            os.environ.pop("STORAGE_EMULATOR_HOST", None)
        else:
            os.environ["STORAGE_EMULATOR_HOST"] = old
        gen.close()


class _TokenHandler(BaseHTTPRequestHandler):
    token = ""
    requests = 0

    def do_POST(self):  # noqa: N802 - OAuth2 token endpoint: JWT bearer grant -> access token
        self.rfile.read(int(self.headers.get("content-length") or 0))
        type(self).requests += 1
        body = json.dumps({"access_token": self.token, "expires_in": 3600, "token_type": "Bearer"}).encode()
        self.send_response(200)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@dataclass
class StorageFixture:
    """Saved blocks on the session's Prefect server, and the secrets they hold."""

    s3_bucket: str
    gcs_bucket: str
    s3_block: str
    gcs_block: str
    s3_endpoint: str
    gcs_endpoint: str
    secrets: dict[str, str] = field(default_factory=dict)
    token_handler: type = _TokenHandler

    def token_requests(self) -> int:
        """Access tokens handed out so far (the GCS client really authenticated)."""
        return self.token_handler.requests

    def s3(self, key: str = "") -> str:
        return f"s3://{self.s3_bucket}/{key}" if key else f"s3://{self.s3_bucket}"

    def gs(self, key: str = "") -> str:
        return f"gs://{self.gcs_bucket}/{key}" if key else f"gs://{self.gcs_bucket}"


def _service_account(token_uri: str) -> dict:
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import rsa

    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                            serialization.NoEncryption()).decode()
    return {
        "type": "service_account", "project_id": "dvtrain-test", "private_key_id": "PKID-" + secrets.token_hex(12),
        "private_key": pem, "client_email": "dvtrain-test@dvtrain-test.iam.gserviceaccount.com",
        "client_id": "1234567890", "token_uri": token_uri,
    }


@pytest.fixture(scope="session")
def storage(prefect_server, s3_endpoint, gcs_endpoint) -> StorageFixture:
    """An S3 bucket (moto) and a GCS bucket (emulator), each with saved credential + bucket
    blocks on the session's Prefect server; registered block types."""
    from prefect_aws import AwsCredentials, S3Bucket
    from prefect_gcp import GcpCredentials, GcsBucket

    from blocks import clear_cache, register

    register()
    handler = type("TokenHandler", (_TokenHandler,), {"token": "TOKEN-" + secrets.token_hex(16)})
    token_server = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=token_server.serve_forever, daemon=True).start()
    info = _service_account(f"http://127.0.0.1:{token_server.server_port}/token")

    fx = StorageFixture(
        s3_bucket="dvtrain-s3-" + secrets.token_hex(4), gcs_bucket="dvtrain-gcs-" + secrets.token_hex(4),
        s3_block="dvtrain-test-s3", gcs_block="dvtrain-test-gcs", s3_endpoint=s3_endpoint, gcs_endpoint=gcs_endpoint,
        token_handler=handler,
        secrets={
            "aws_secret_access_key": "SECRET-" + secrets.token_hex(20),
            "gcp_private_key_id": info["private_key_id"],
            # the base64 body of the PEM (its lines, so a reformatted key is still found)
            **{f"gcp_private_key_line{i}": line for i, line in enumerate(info["private_key"].splitlines()[1:-1][:3])},
            "gcp_access_token": handler.token,
        },
    )
    aws = AwsCredentials(aws_access_key_id="AKIADVTRAINTEST", aws_secret_access_key=fx.secrets["aws_secret_access_key"],
                         region_name="us-east-1", aws_client_parameters={"endpoint_url": s3_endpoint})
    aws.save("dvtrain-test-aws", overwrite=True)
    S3Bucket(bucket_name=fx.s3_bucket, credentials=AwsCredentials.load("dvtrain-test-aws")).save(fx.s3_block, overwrite=True)
    gcp = GcpCredentials(service_account_info=info, project="dvtrain-test")
    gcp.save("dvtrain-test-gcp", overwrite=True)
    GcsBucket(bucket=fx.gcs_bucket, gcp_credentials=GcpCredentials.load("dvtrain-test-gcp")).save(fx.gcs_block, overwrite=True)

    aws.get_s3_client().create_bucket(Bucket=fx.s3_bucket)
    gcp.get_cloud_storage_client().create_bucket(fx.gcs_bucket)
    clear_cache()
    try:
        yield fx
    finally:
        token_server.shutdown()
