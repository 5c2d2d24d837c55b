"""Extract the command-line flags of DeepVariant's binaries (and hap.py's) from their source,
without importing them, into ``tests/data/deepvariant_flags.json`` (facts only: names, types,
allowed values, bounds; no DeepVariant code is kept in this repository).

Sources (read from the public GitHub index and saved under a source root, by default
/tmp/dvsrc/<owner>/<repo>/<path>; see SOURCES below for each file's repository, path, commit).
The index could not name a single v1.6.1 commit for every file; each file's version is stated
in SOURCES (and so in the JSON's provenance), the nearest stored version that could be
identified. The files under the source root may be excerpts holding only the flag-defining
statements of those versions.

Regenerate:  python scripts/dv_flags.py [SOURCE_ROOT] [-o tests/data/deepvariant_flags.json]
"""

from __future__ import annotations

import argparse
import ast
import datetime
import json
import sys
from pathlib import Path

DV = "google/deepvariant"
HAPPY = "Illumina/hap.py"
HOW = "public GitHub index (read_file), transcribed to the source root as flag-definition excerpts"

# path -> (repository, commit or None, note)
SOURCES = {
    "make_examples_options": (DV, "deepvariant/make_examples_options.py", None,
                              "index file-version id 13962805169; commit not reported; post-1.6 (has channel_list, small-model flags)"),
    "make_examples": (DV, "deepvariant/make_examples.py", "00900dd704bb9c048feb5fd0864462cf8c9752d5",
                      "1.1.0-era version; only its single-sample flags (reads, sample_name, downsample_fraction, "
                      "pileup_image_height, proposed_variants) are taken"),
    "train": (DV, "deepvariant/train.py", "078e8d308e7350fbd37d103987412c62bc7f5664", "post-1.6 (1.8-era) version"),
    "dv_config": (DV, "deepvariant/dv_config.py", "078e8d308e7350fbd37d103987412c62bc7f5664",
                  "post-1.6 (1.8-era) version; fields of get_config() = the 'base' config"),
    "call_variants": (DV, "deepvariant/call_variants.py", "0094e6debd229643bbbb68a4b679e6d5a8446569",
                      "pre-1.0 (TF1) version; the only one the index returned"),
    "postprocess_variants": (DV, "deepvariant/postprocess_variants.py", "c71403c6f2cc91264e8667a9da06c49c1c90f6f6",
                             "commit where dv_vcf_constants.DEEP_VARIANT_VERSION == '1.6.1' (post-release main)"),
    "run_deepvariant": (DV, "scripts/run_deepvariant.py", "6b167016a0e6b92ca5b492e2dac9000d97c8d3ee", "tag v1.6.0"),
    "shuffle_tfrecords_beam": (DV, "tools/shuffle_tfrecords_beam.py", "305155dcc3fc472bddcc6385de0891f396334f90", ""),
    "hap.py": (HAPPY, "src/python/hap.py", "00158ea981a0a67ea20e5a8dd0fc93dc2e9c113c", "main()'s parser"),
    "hap.py:qfy": (HAPPY, "src/python/qfy.py", "00158ea981a0a67ea20e5a8dd0fc93dc2e9c113c", "qfy.updateArgs, called by hap.py"),
    "hap.py:pre": (HAPPY, "src/python/pre.py", "1cd25346247a5bacb0681e0e4af9ad9d75004761", "pre.updateArgs, called by hap.py"),
}

ABSL_TYPES = {"string": "string", "integer": "int", "float": "float", "bool": "bool", "boolean": "bool",
              "enum": "enum", "list": "list", "multi_string": "multi_string", "multi_integer": "multi_int",
              "multi_float": "multi_float", "enum_class": "enum", "multi_enum": "multi_enum",
              "spaceseplist": "list", "config_file": "config_file", "config_dict": "config_file"}


def _literal(node):
    try:
        return ast.literal_eval(node)
    except (ValueError, SyntaxError, TypeError):
        return None


def absl_flags(tree: ast.AST) -> dict:
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr.startswith("DEFINE_")):
            continue
        kind = ABSL_TYPES.get(node.func.attr[len("DEFINE_"):])
        if kind is None:
            continue
        kw = {k.arg: k.value for k in node.keywords}
        args = list(node.args)
        name = _literal(kw.get("name", args[0] if args else None))
        if not isinstance(name, str):
            continue
        spec = {"type": kind}
        default = kw.get("default", args[1] if len(args) > 1 else None)
        if default is not None:
            spec["default"] = _literal(default)
        if kind == "enum":
            ev = _literal(kw.get("enum_values", args[2] if len(args) > 2 else None))
            if ev is not None:
                spec["enum"] = list(ev)
        for bound in ("lower_bound", "upper_bound"):
            if bound in kw:
                spec[bound] = _literal(kw[bound])
        if "short_name" in kw:
            spec["short_name"] = _literal(kw["short_name"])
        out[name] = spec
    return out


def argparse_args(tree: ast.AST) -> dict:
    out = {}
    for node in ast.walk(tree):
        if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute)
                and node.func.attr == "add_argument"):
            continue
        names = [_literal(a) for a in node.args]
        names = [n for n in names if isinstance(n, str)]
        if not names:
            continue
        kw = {k.arg: k.value for k in node.keywords}
        action = _literal(kw["action"]) if "action" in kw else "store"
        typ = kw.get("type")
        typ = typ.id if isinstance(typ, ast.Name) else None
        spec = {"type": {"int": "int", "float": "float"}.get(typ, "string")}
        if action in ("store_true", "store_false"):
            spec["type"] = "bool"
            spec["action"] = action
        if "choices" in kw:
            spec["type"], spec["enum"] = "enum", list(_literal(kw["choices"]))
        if "nargs" in kw:
            spec["nargs"] = _literal(kw["nargs"])
        long = [n for n in names if n.startswith("--")]
        dest = _literal(kw["dest"]) if "dest" in kw else (long[0][2:].replace("-", "_") if long else names[0])
        spec["dest"] = dest
        if not names[0].startswith("-"):
            spec["positional"] = True
            out[names[0]] = spec
            continue
        spec["spellings"] = names
        for n in names:
            out[n] = spec
    return out


def config_fields(tree: ast.AST, function: str = "get_config") -> dict:
    out = {}
    for fn in ast.walk(tree):
        if not (isinstance(fn, ast.FunctionDef) and fn.name == function):
            continue
        for node in ast.walk(fn):
            if not isinstance(node, ast.Assign):
                continue
            for t in node.targets:
                if isinstance(t, ast.Attribute) and isinstance(t.value, ast.Name) and t.value.id == "config":
                    value = _literal(node.value)
                    if value is None and isinstance(node.value, ast.BinOp):
                        try:
                            value = eval(compile(ast.Expression(node.value), "<c>", "eval"), {})  # numbers only
                        except Exception:
                            value = None
                    kind = {bool: "bool", int: "int", float: "float", str: "string"}.get(type(value), "unknown")
                    out[t.attr] = {"type": kind, "default": value}
    return out


def parse(root: Path, key: str) -> ast.AST:
    repo, path, _, _ = SOURCES[key]
    return ast.parse((root / repo / path).read_text())


def build(root: Path) -> dict:
    me_single = {k: v for k, v in absl_flags(parse(root, "make_examples")).items()
                 if k in ("reads", "sample_name", "downsample_fraction", "pileup_image_height", "proposed_variants")}
    make_examples = {**absl_flags(parse(root, "make_examples_options")), **me_single}
    train = absl_flags(parse(root, "train"))
    happy = {**argparse_args(parse(root, "hap.py")), **argparse_args(parse(root, "hap.py:qfy")),
             **argparse_args(parse(root, "hap.py:pre"))}
    today = datetime.date.today().isoformat()
    return {
        "provenance": {key: {"repository": repo, "path": path, "commit": commit, "note": note,
                             "how_obtained": HOW, "date": today}
                       for key, (repo, path, commit, note) in SOURCES.items()},
        "binaries": {
            "make_examples": dict(sorted(make_examples.items())),
            "train": dict(sorted(train.items())),
            "train_config": dict(sorted(config_fields(parse(root, "dv_config")).items())),
            "call_variants": dict(sorted(absl_flags(parse(root, "call_variants")).items())),
            "postprocess_variants": dict(sorted(absl_flags(parse(root, "postprocess_variants")).items())),
            "run_deepvariant": dict(sorted(absl_flags(parse(root, "run_deepvariant")).items())),
            "shuffle_tfrecords_beam": dict(sorted(argparse_args(parse(root, "shuffle_tfrecords_beam")).items())),
            "hap.py": dict(sorted(happy.items())),
        },
    }


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("root", nargs="?", default="/tmp/dvsrc")
    p.add_argument("-o", "--out", default=str(Path(__file__).resolve().parents[1] / "tests/data/deepvariant_flags.json"))
    a = p.parse_args(argv)
    data = build(Path(a.root))
    Path(a.out).write_text(json.dumps(data, indent=1, sort_keys=False) + "\n")
    for b, f in data["binaries"].items():
        print(f"{b}: {len(f)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
