"""A metaclaude sink plugin in Python (componentize-py).

componentize-py makes a new WitWorld for every call, so state lives in the module.
"""
import json

import wit_world
from wit_world.imports import host, types

STATE = {"finished": 0}


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        json.loads(config)

    def handle_batch(self, events) -> None:
        for e in events:
            if e.kind == types.LifecycleKind.FINISHED and e.result is not None:
                STATE["finished"] += 1
                if host.log_enabled(host.Level.INFO):
                    how = "succeeded" if e.result.success else "failed"
                    took = e.result.resource_usage.wall_time_seconds
                    host.log(host.Level.INFO, f"{e.execution_id} {e.script_id} {how} in {took:.2f}s")

    def flush(self) -> None:
        pass
