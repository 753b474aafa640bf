"""A metaclaude sink written in Python (built with componentize-py).

It appends one JSON line per event it receives to `/out/events.jsonl` (the directory its
manifest grants), and logs a summary through the host at each flush. Build it with
`cargo xtask build-plugins`, or by hand:

    componentize-py -d ../../../wit -w sink componentize app -o python_sink.wasm
"""
import json

import wit_world
from wit_world.imports import host, types
from componentize_py_types import Err

KINDS = {
    types.LifecycleKind.QUEUED: "queued",
    types.LifecycleKind.STARTED: "started",
    types.LifecycleKind.ATTEMPT_FAILED: "attempt_failed",
    types.LifecycleKind.RETRY_SCHEDULED: "retry_scheduled",
    types.LifecycleKind.FINISHED: "finished",
}


# componentize-py creates a new WitWorld for every call: state lives in the module.
STATE = {"out": "/out/events.jsonl", "count": 0}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        settings = json.loads(config)
        unknown = set(settings) - {"file"}
        if unknown:
            raise Err(f"config.{sorted(unknown)[0]}: unknown key (known: file)")
        STATE["out"] = settings.get("file", STATE["out"])

    def handle_batch(self, events) -> None:
        lines = []
        for event in events:
            record = {
                "execution_id": event.execution_id,
                "kind": KINDS[event.kind],
                "script_id": event.script_id,
                "attempt": event.attempt,
            }
            if event.result is not None:
                record["success"] = event.result.success
                record["wall_time_seconds"] = event.result.resource_usage.wall_time_seconds
            lines.append(json.dumps(record))
        out = STATE["out"]
        try:
            with open(out, "a", encoding="utf-8") as f:
                f.write("\n".join(lines) + "\n")
        except OSError as e:
            raise Err(f"cannot write {out}: {e}")
        STATE["count"] += len(events)

    def flush(self) -> None:
        if host.log_enabled(host.Level.INFO):
            host.log(host.Level.INFO, f"python-sink: {STATE['count']} events recorded")
