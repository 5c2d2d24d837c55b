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
