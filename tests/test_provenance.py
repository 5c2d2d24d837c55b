"""provenance.json (issue 9) and the no-shell rule (issue 9, security)."""

from __future__ import annotations

import ast
import json
import subprocess
from pathlib import Path

from dvtrain.config import BaselineConfig, CaseStudyConfig
from dvtrain.provenance import provenance, write_provenance

REPO = Path(__file__).resolve().parents[1]


def _config(tmp_path: Path) -> CaseStudyConfig:
    for name, text in (("ref.fa", ">c\nACGT\n"), ("ref.fa.fai", "c\t4\t3\t4\t5\n"), ("t.vcf.gz", "v"),
                       ("t.vcf.gz.tbi", "i"), ("t.bed", "c\t0\t4\n"), ("a.bam", "b"), ("a.bam.bai", "x"),
                       ("m.keras", "k")):
        (tmp_path / name).write_text(text)
    return CaseStudyConfig(reference=tmp_path / "ref.fa", truth_vcf=tmp_path / "t.vcf.gz", truth_bed=tmp_path / "t.bed",
                           reads=[tmp_path / "a.bam"], baseline=BaselineConfig(model=tmp_path / "m.keras"),
                           workdir=tmp_path / "wd", seed=11)


def test_provenance_records_config_seed_inputs_tools_and_packages(tmp_path):
    cfg = _config(tmp_path)
    data = provenance(cfg)
    assert data["seed"] == 11 and data["config"]["seed"] == 11
    bam = data["inputs"][str(tmp_path / "a.bam")]
    assert bam["size"] == 1 and ".bai" in bam and len(bam["blake2b"]) == 32
    assert ".tbi" in data["inputs"][str(tmp_path / "t.vcf.gz")] and ".fai" in data["inputs"][str(tmp_path / "ref.fa")]
    assert {"bcftools", "freebayes", "bedtools", "docker", "apptainer"} <= set(data["tools"])
    assert {"numpy", "prefect", "pysam", "apache-beam", "keras"} <= set(data["packages"])
    assert data["dvtrain"]["version"]
    # an input's content, not its name or time, changes its digest
    (tmp_path / "a.bam").write_text("c")
    assert provenance(cfg)["inputs"][str(tmp_path / "a.bam")]["blake2b"] != bam["blake2b"]


def test_the_same_run_writes_the_same_file_and_leaves_it_alone(tmp_path):
    cfg = _config(tmp_path)
    out = tmp_path / "wd" / "provenance.json"
    write_provenance(cfg, out)
    first, stamp = out.read_bytes(), out.stat().st_mtime_ns
    write_provenance(cfg, out)
    assert out.read_bytes() == first and out.stat().st_mtime_ns == stamp
    assert json.loads(first)["config"]["workdir"] == str(tmp_path / "wd")
    assert not [p for p in out.parent.iterdir() if p.name != "provenance.json"]  # no temp file left


def test_no_python_file_starts_a_shell():
    """No subprocess call with shell=True, and no os.system / os.popen, in any tracked file."""
    files = subprocess.run(["git", "-C", str(REPO), "ls-files", "*.py"], capture_output=True, text=True,
                           check=True).stdout.split()
    assert len(files) > 50
    found = []
    for name in files:
        tree = ast.parse((REPO / name).read_text(), filename=name)
        for node in ast.walk(tree):
            if isinstance(node, ast.Call):
                if any(k.arg == "shell" and not (isinstance(k.value, ast.Constant) and k.value.value is False)
                       for k in node.keywords):
                    found.append(f"{name}:{node.lineno} shell=")
                f = node.func
                if isinstance(f, ast.Attribute) and isinstance(f.value, ast.Name) and f.value.id == "os" \
                        and f.attr in ("system", "popen"):
                    found.append(f"{name}:{node.lineno} os.{f.attr}")
    assert found == []


def _tool(folder: Path, name: str, script: bytes) -> None:
    path = folder / name
    path.write_bytes(script)
    path.chmod(0o755)


def test_tools_that_print_garbage_hang_crash_or_cannot_start_never_fail_the_provenance_step(
        tmp_path, monkeypatch, prefect_server):
    """Issue 26: Debian's samtools prints its build flags in Latin-1 (not UTF-8) and crashed
    `make demo`. Hostile stand-ins on PATH go through the flow's own provenance task; each is
    recorded as what it did, and the run goes on."""
    from prefect import flow

    import dvtrain.provenance as prov
    from tasks import provenance_task

    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # Debian 12's samtools 1.16.1 --version, build line with «BUILDPATH» in Latin-1 (0xab, 0xbb)
    _tool(bin_dir, "samtools", b"#!/bin/sh\nprintf 'samtools 1.16.1\\nUsing htslib 1.16\\n"
                               b"CFLAGS: -ffile-prefix-map=\\253BUILDPATH\\273=. -O2\\n'\n")
    _tool(bin_dir, "bcftools", b"#!/bin/sh\nexec sleep 30\n")  # hangs
    _tool(bin_dir, "bedtools", b"#!/bin/sh\nprintf '\\377\\376\\000\\001'; kill -SEGV $$\n")  # binary, then a crash
    _tool(bin_dir, "freebayes", b"#!/nonexistent/interpreter\n")  # cannot start
    monkeypatch.setenv("PATH", f"{bin_dir}:/usr/bin:/bin")
    monkeypatch.setattr(prov, "TOOL_TIMEOUT_S", 1.0)

    cfg = _config(tmp_path)
    out = tmp_path / "wd" / "provenance.json"

    @flow
    def just_provenance() -> str:
        return provenance_task(cfg, str(out))

    assert just_provenance() == str(out)
    tools = json.loads(out.read_text())["tools"]
    assert tools["samtools"] == "samtools 1.16.1"
    assert tools["bcftools"] == "unavailable (no answer within 1 s)"
    assert tools["bedtools"] is not None and "\ufffd" in tools["bedtools"]  # what it printed, bytes replaced
    assert tools["freebayes"].startswith("unavailable (cannot run")
    assert tools["apptainer"] is None  # not installed


def test_samtools_version_line_is_recorded_when_debian_samtools_is_installed(tmp_path):
    import shutil

    import pytest

    from dvtrain.provenance import tool_versions

    if shutil.which("samtools") is None:
        pytest.skip("samtools is not installed (make test installs Debian's)")
    assert tool_versions()["samtools"].startswith("samtools 1.")
