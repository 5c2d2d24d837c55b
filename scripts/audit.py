"""Audit the locked dependencies for known vulnerabilities (issue 9): ``make audit``.

Runs pip-audit (from its own virtualenv, so its dependencies never touch the locked set)
over ``requirements.lock`` without installing anything, then:

* exit 1 when any locked package has a known vulnerability that a newer release fixes,
  listing package, version, advisory id and the fixed versions;
* exit 0 with "audit: N packages, no fixable known vulnerability" otherwise;
* when the vulnerability service cannot be reached (every package comes back "not
  audited"), say so in one line and exit 0, or 1 under ``DVTRAIN_AUDIT_REQUIRED=1``: an
  audit that could not run is reported as such, never as a pass.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def main() -> int:
    pip_audit = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / ".venv-audit" / "bin" / "pip-audit"
    lock = ROOT / "requirements.lock"
    proc = subprocess.run([str(pip_audit), "-r", str(lock), "--no-deps", "--disable-pip", "--format", "json",
                           "--progress-spinner", "off", "--vulnerability-service", os.environ.get("DVTRAIN_AUDIT_SERVICE", "pypi")],
                          capture_output=True, text=True, timeout=1800)
    try:
        report = json.loads(proc.stdout)
    except json.JSONDecodeError:
        print(f"audit: pip-audit gave no report (exit {proc.returncode}): {proc.stderr.strip()[-300:]}", file=sys.stderr)
        return 1
    deps = report.get("dependencies", [])
    skipped = [d for d in deps if d.get("skip_reason")]
    fixable = [(d["name"], d["version"], v["id"], v.get("fix_versions") or [])
               for d in deps for v in d.get("vulns", []) if v.get("fix_versions")]
    for name, version, vid, fixes in fixable:
        print(f"audit: {name} {version}: {vid}, fixed in {', '.join(fixes)}")
    if fixable:
        print(f"audit: {len(fixable)} fixable known vulnerabilities in {lock.name}: update the lock", file=sys.stderr)
        return 1
    if deps and len(skipped) == len(deps):
        print(f"audit: NOT PERFORMED: the vulnerability service could not be reached ({len(skipped)} of {len(deps)} "
              f"packages not audited: {skipped[0].get('skip_reason')})", file=sys.stderr)
        return 1 if os.environ.get("DVTRAIN_AUDIT_REQUIRED") == "1" else 0
    unfixed = sum(len(d.get("vulns", [])) for d in deps)
    print(f"audit: {len(deps) - len(skipped)} of {len(deps)} packages audited, no fixable known vulnerability"
          + (f" ({unfixed} without a fix yet)" if unfixed else "")
          + (f"; not audited: {', '.join(d['name'] for d in skipped)}" if skipped else ""))
    return 0


if __name__ == "__main__":
    sys.exit(main())
