// A metaclaude exporter in JavaScript (componentize-js): finished executions by outcome.
const counts = { success: 0, failure: 0 };

export function init(config) { JSON.parse(config); }

export function handleBatch(events) {
  for (const e of events) {
    if (e.kind === 'finished' && e.result) counts[e.result.success ? 'success' : 'failure'] += 1;
  }
}

export function flush() {}

export function render() {
  const lines = Object.entries(counts).map(([k, v]) => `executions_finished_total{outcome="${k}"} ${v}`);
  return ['# TYPE executions_finished_total counter', ...lines].join('\n') + '\n';
}
