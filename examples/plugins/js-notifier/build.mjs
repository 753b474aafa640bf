// Builds js_notifier.wasm from notifier.js with componentize-js (`npm install` first).
// WIT names the folder holding the WIT package (default: ./wit).
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const { component } = await componentize({
  sourcePath: 'notifier.js',
  witPath: process.env.WIT ?? 'wit',
  worldName: 'metaclaude:monitor/notifier@0.3.0',
  // A pure component: no WASI clocks, random, stdio or fetch (the host grants none of them).
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks', 'stdio'],
});
await writeFile('js_notifier.wasm', component);
console.log('wrote js_notifier.wasm');
