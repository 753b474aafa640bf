"""Checks that an API schema file is well-formed JSON and declares at least one path."""
import argparse
import json
import sys

parser = argparse.ArgumentParser()
parser.add_argument("--schema_file", required=True)
parser.add_argument("--strict", action="store_true")
args = parser.parse_args()

with open(args.schema_file, encoding="utf-8") as f:
    schema = json.load(f)

paths = schema.get("paths", {})
if not paths:
    print(f"{args.schema_file}: no paths declared", file=sys.stderr)
    sys.exit(1)
missing = [p for p, ops in paths.items() if args.strict and not any("summary" in op for op in ops.values())]
if missing:
    print(f"{args.schema_file}: operations without a summary: {', '.join(missing)}", file=sys.stderr)
    sys.exit(1)
print(json.dumps({"valid": True, "paths": len(paths), "title": schema.get("info", {}).get("title")}))
