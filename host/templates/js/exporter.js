// A metaclaude exporter in JavaScript (componentize-js): finished executions by outcome.
const counts = { success: 0, failure: 0 };

export function init(config) { JSON.parse(config); }

export function handleBatch(events) {
  for (const e of events) {
    if (e.kind === 'finished' && e.result) counts[e.result.success ? 'success' : 'failure'] += 1;
  }
}

export function flush() {}

// `format` is the exposition format the scrape negotiated: 'openmetrics' names a counter
// family without `_total` and ends with `# EOF`; 'prometheus-text' is the format 0.0.4.
export function render(format) {
  const openmetrics = format === 'openmetrics';
  const lines = Object.entries(counts).map(([k, v]) => `executions_finished_total{outcome="${k}"} ${v}`);
  const family = openmetrics ? 'executions_finished' : 'executions_finished_total';
  const text = [`# TYPE ${family} counter`, ...lines].join('\n') + '\n';
  return openmetrics ? text + '# EOF\n' : text;
}
