// Builds {{crate_name}}.wasm from plugin.js with componentize-js (`npm install` first).
import { componentize } from '@bytecodealliance/componentize-js';
import { writeFile } from 'node:fs/promises';

const { component } = await componentize({
  sourcePath: 'plugin.js',
  witPath: 'wit',
  worldName: 'metaclaude:monitor/{{world}}@{{version}}',
  // A pure component: no WASI clocks, random, stdio or fetch (the host grants none of them).
  disableFeatures: ['http', 'fetch-event', 'random', 'clocks', 'stdio'],
});
await writeFile('{{crate_name}}.wasm', component);
console.log('wrote {{crate_name}}.wasm');
