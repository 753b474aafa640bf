// A metaclaude alert rule in JavaScript (componentize-js): `slow_execution` fires for a
// script whose execution took longer than threshold_seconds, and resolves at its next
// execution within it.
let threshold = 10;
const firing = new Map(); // script id -> since when

export function init(config) {
  const t = JSON.parse(config).threshold_seconds ?? 10;
  if (typeof t !== 'number' || t < 0) throw 'config.threshold_seconds: expected a number of seconds, 0 or more';
  threshold = t;
}

export function handleBatch(events) {
  const alerts = [];
  for (const e of events) {
    const r = e.result;
    if (!r) continue;
    const took = r.resourceUsage.wallTimeSeconds;
    let status, startsAt, endsAt;
    if (took > threshold) {
      if (!firing.has(r.scriptId)) firing.set(r.scriptId, e.timestamp);
      [status, startsAt] = ['firing', firing.get(r.scriptId)];
    } else if (firing.has(r.scriptId)) {
      [status, startsAt, endsAt] = ['resolved', firing.get(r.scriptId), e.timestamp];
      firing.delete(r.scriptId);
    } else continue;
    const message = `${r.scriptId} took ${took.toFixed(1)}s (threshold: ${threshold.toFixed(1)}s)`;
    alerts.push({
      timestamp: e.timestamp, type: 'slow_execution', severity: 'warning', message,
      value: took, threshold, specialist: r.specialist,
      labels: [['script_id', r.scriptId], ...(r.specialist ? [['specialist', r.specialist]] : [])],
      status, fingerprint: '' /* the host fills it in */, startsAt, endsAt,
      annotations: [['summary', message]],
    });
  }
  return alerts;
}

export function tick(now) { return []; }

export function setThreshold(name, value) {
  if (name !== 'threshold_seconds') throw `unknown threshold \`${name}\` (known: threshold_seconds)`;
  if (!(value >= 0 && Number.isFinite(value))) throw `threshold_seconds: ${value} is out of range (0 or more seconds)`;
  const old = threshold;
  threshold = value;
  return `threshold_seconds: ${old} -> ${value}`;
}

export function thresholds() {
  return [{ name: 'threshold_seconds', value: threshold, description: "an execution's wall time above which it is slow, in seconds" }];
}
