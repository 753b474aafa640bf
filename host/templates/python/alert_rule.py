"""A metaclaude alert-rule plugin in Python (componentize-py).

componentize-py makes a new WitWorld for every call, so state lives in the module.
"""
import json

import wit_world
from wit_world.imports import types
from componentize_py_types import Err

# threshold_seconds, and the scripts whose alert is firing (script id -> since when).
STATE = {"threshold_seconds": 10.0, "firing": {}}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        t = json.loads(config).get("threshold_seconds", 10.0)
        if not isinstance(t, (int, float)) or t < 0:
            raise Err("config.threshold_seconds: expected a number of seconds, 0 or more")
        STATE["threshold_seconds"] = float(t)

    def handle_batch(self, events):
        threshold, firing, alerts = STATE["threshold_seconds"], STATE["firing"], []
        for e in events:
            r = e.result
            if r is None:
                continue
            took = r.resource_usage.wall_time_seconds
            if took > threshold:
                status, starts_at, ends_at = types.AlertStatus.FIRING, firing.setdefault(r.script_id, e.timestamp), None
            elif r.script_id in firing:
                status, starts_at, ends_at = types.AlertStatus.RESOLVED, firing.pop(r.script_id), e.timestamp
            else:
                continue
            message = f"{r.script_id} took {took:.1f}s (threshold: {threshold:.1f}s)"
            alerts.append(types.Alert(
                timestamp=e.timestamp, type="slow_execution", severity=types.Severity.WARNING,
                message=message, value=took, threshold=threshold, specialist=r.specialist,
                labels=[("script_id", r.script_id)] + ([("specialist", r.specialist)] if r.specialist else []),
                status=status,
                fingerprint="",  # the host fills it in
                starts_at=starts_at, ends_at=ends_at, annotations=[("summary", message)]))
        return alerts

    def tick(self, now):
        return []

    def set_threshold(self, name: str, value: float) -> str:
        if name != "threshold_seconds":
            raise Err(f"unknown threshold `{name}` (known: threshold_seconds)")
        if not 0 <= value < float("inf"):
            raise Err(f"threshold_seconds: {value} is out of range (0 or more seconds)")
        old, STATE["threshold_seconds"] = STATE["threshold_seconds"], value
        return f"threshold_seconds: {old} -> {value}"

    def thresholds(self):
        return [types.Threshold(name="threshold_seconds", value=STATE["threshold_seconds"],
                                description="an execution's wall time above which it is slow, in seconds")]
