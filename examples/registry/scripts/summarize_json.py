"""Reads {"values": "1,2,3", "label": "..."} on stdin and prints a summary."""
import json
import sys

inputs = json.load(sys.stdin)
numbers = [float(v) for v in inputs["values"].split(",") if v.strip()]
print(json.dumps({"label": inputs["label"], "count": len(numbers), "sum": sum(numbers)}))
