"""A metaclaude notifier in Python: POSTs each alert, as the host's alert JSON, to config.url."""
import json
from datetime import datetime, timezone

import wit_world
from wit_world.imports import http
from componentize_py_types import Err

URL = []  # componentize-py makes a new WitWorld for every call: state lives in the module.


def rfc3339(t) -> str:
    at = datetime.fromtimestamp(t.seconds, timezone.utc)
    return f"{at:%Y-%m-%dT%H:%M:%S}.{t.nanoseconds // 1000:06d}Z"


def alert_json(a) -> bytes:
    doc = {"timestamp": rfc3339(a.timestamp), "type": a.type, "severity": a.severity.name.lower(),
           "message": a.message, "value": a.value, "threshold": a.threshold,
           "specialist": a.specialist, "labels": dict(a.labels), "status": a.status.name.lower(),
           "fingerprint": a.fingerprint, "starts_at": rfc3339(a.starts_at),
           "ends_at": a.ends_at and rfc3339(a.ends_at), "annotations": dict(a.annotations)}
    doc = {k: v for k, v in doc.items() if v not in (None, {})}  # absent fields left out
    return json.dumps(doc, separators=(",", ":"), ensure_ascii=False).encode()


class WitWorld(wit_world.WitWorld):
    def init(self, config: str) -> None:
        url = json.loads(config).get("url")
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise Err(f"config.url: expected the webhook's http(s):// URL, found {url!r}")
        URL[:] = [url]

    def notify(self, alerts) -> None:
        for a in alerts:
            try:
                reply = http.post(URL[0], [("content-type", "application/json")], alert_json(a))
            except Err as e:
                raise Err(f"cannot POST to {URL[0]}: {e.value}")
            if reply.status >= 300:
                text = bytes(reply.body[:200]).decode(errors="replace")
                raise Err(f"{URL[0]} answered {reply.status}: {text}")
