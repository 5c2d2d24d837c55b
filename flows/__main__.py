"""``python -m flows CONFIG.yaml [--set key=value ...] [--publish-to BLOCK]``: run the case study.

Works without a Prefect server (ephemeral mode); set PREFECT_API_URL to report to one.
"""

from __future__ import annotations

import argparse
import json

import yaml

from dvtrain.config import load_case_study

from .case_study import run_case_study


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(prog="python -m flows", description=__doc__.splitlines()[0])
    ap.add_argument("config", help="case-study YAML")
    ap.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                    help="override a config value (dotted keys, YAML values), e.g. --set custom_epochs=2")
    ap.add_argument("--publish-to", default=None, help="name of a dvtrain-storage block")
    args = ap.parse_args(argv)
    overrides = {}
    for item in args.set:
        key, sep, value = item.partition("=")
        if not sep:
            ap.error(f"--set expects KEY=VALUE, got {item!r}")
        overrides[key] = yaml.safe_load(value)
    report = run_case_study(load_case_study(args.config, overrides), publish_to=args.publish_to)
    print(json.dumps(report, indent=2, default=str))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
