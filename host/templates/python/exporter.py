"""A metaclaude exporter plugin in Python (componentize-py).

componentize-py makes a new WitWorld for every call, so state lives in the module.
"""
import json

import wit_world
from wit_world.imports import types

STATE = {"success": 0, "failure": 0}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        json.loads(config)

    def handle_batch(self, events) -> None:
        for e in events:
            if e.kind == types.LifecycleKind.FINISHED and e.result is not None:
                STATE["success" if e.result.success else "failure"] += 1

    def flush(self) -> None:
        pass

    def render(self, format: types.ExpositionFormat) -> str:
        # OpenMetrics names a counter family without `_total` and ends with `# EOF`.
        openmetrics = format == types.ExpositionFormat.OPENMETRICS
        family = "executions_finished" if openmetrics else "executions_finished_total"
        lines = [f"# TYPE {family} counter"]
        lines += [f'executions_finished_total{{outcome="{k}"}} {v}' for k, v in STATE.items()]
        return "\n".join(lines) + "\n" + ("# EOF\n" if openmetrics else "")
