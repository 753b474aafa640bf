// A metaclaude sink in JavaScript (componentize-js): logs each finished execution.
import { log, logEnabled } from 'metaclaude:monitor/host@0.3.0';

export function init(config) { JSON.parse(config); }

export function handleBatch(events) {
  for (const e of events) {
    if (e.kind === 'finished' && e.result && logEnabled('info')) {
      const how = e.result.success ? 'succeeded' : 'failed';
      log('info', `${e.executionId} ${e.scriptId} ${how} in ${e.result.resourceUsage.wallTimeSeconds.toFixed(2)}s`);
    }
  }
}

export function flush() {}
