"""Issue 26: an unexpected error (a bug, not bad input) prints one line naming the stage and
a log file; the full traceback is in that file, never twice on the terminal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

# a stage that fails the way a bug does: ZeroDivisionError deep inside dvtrain.coverage
BUGGY = ("import sys, dvtrain.coverage as m\n"
         "def coverage_bed(*a, **k):\n    return 1 / 0\n"
         "m.coverage_bed = coverage_bed\n"
         "from dvtrain.cli import main\nsys.exit(main(sys.argv[1:]))\n")


def buggy_dvtrain(tmp_path: Path, *args) -> subprocess.CompletedProcess:
    env = dict(os.environ, PREFECT_HOME=str(tmp_path / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false")
    env.pop("PREFECT_API_URL", None)  # dvtrain run starts its own ephemeral server
    script = tmp_path / "buggy_dvtrain.py"
    script.write_text(BUGGY)
    return subprocess.run([sys.executable, str(script), *map(str, args)], capture_output=True, text=True,
                          cwd=REPO, env=env, timeout=600)


def _the_error_line(proc: subprocess.CompletedProcess, stage: str) -> Path:
    assert proc.returncode == 1, proc.stderr
    assert "Traceback" not in proc.stderr and "File \"" not in proc.stderr, proc.stderr
    errors = [line for line in proc.stderr.splitlines() if line.startswith("dvtrain: error:")]
    assert len(errors) == 1, proc.stderr
    m = re.fullmatch(rf"dvtrain: error: stage {stage} failed unexpectedly: ZeroDivisionError: division by zero "
                     r"\(full log: (.+)\)", errors[0])
    assert m, errors[0]
    log = Path(m.group(1))
    text = log.read_text()
    assert "Traceback (most recent call last)" in text and "return 1 / 0" in text
    return log


def test_a_bug_in_a_stage_command_is_one_line_and_a_log_beside_its_output(tiny, tmp_path):
    out = tmp_path / "out" / "coverage.bed"
    proc = buggy_dvtrain(tmp_path, "coverage", "--reads", tiny / "NA12878.chr22.tiny.bam",
                         "--truth_bed", tiny / "q.regions", "--output_bed", out)
    log = _the_error_line(proc, "coverage")
    assert log.parent == out.parent / "logs"
    assert not out.exists()


def test_a_bug_inside_the_flow_is_one_line_and_the_runs_log_in_the_workdir(sim_dataset, tmp_path):
    data = Path(sim_dataset["ref"]).parent
    cfg = {"reference": str(data / "ref.fa"), "truth_vcf": str(data / "truth.vcf.gz"),
           "truth_bed": str(data / "truth.bed"), "reads": [str(data / "lowcov.bam")], "peers": [],
           "baseline": {"reads": [str(data / "generic.bam")]}, "workdir": str(tmp_path / "wd")}
    yaml_path = tmp_path / "cs.yaml"
    yaml_path.write_text(json.dumps(cfg))
    proc = buggy_dvtrain(tmp_path, "run", "--config", yaml_path)
    log = _the_error_line(proc, "coverage")
    assert log.parent == tmp_path / "wd" / "logs"
    assert "Task run" in proc.stderr  # Prefect's progress lines still reach the terminal ...
    text = log.read_text()
    assert "provenance -> " in text  # ... and the run's log records are in the file with the traceback
    assert not (tmp_path / "wd" / "coverage" / "confident.bed").exists()


def test_bad_input_keeps_its_one_line_message_and_writes_no_log(tiny, tmp_path):
    proc = subprocess.run([sys.executable, "-m", "dvtrain.cli", "coverage", "--reads", str(tmp_path / "missing.bam"),
                           "--truth_bed", str(tiny / "q.regions"), "--output_bed", str(tmp_path / "o" / "c.bed")],
                          capture_output=True, text=True, cwd=REPO, timeout=300)
    assert proc.returncode == 2 and proc.stderr.startswith("dvtrain: error: ") and "missing.bam" in proc.stderr
    assert "full log" not in proc.stderr and not (tmp_path / "o" / "logs").exists()
