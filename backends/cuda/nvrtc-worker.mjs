// A worker thread of compileAllToPtx (nvrtc.ts): loads tsx's hooks (the library is TypeScript), then compiles
// the sources it takes by the shared counter and posts each PTX, or the error, with its index.
import { workerData } from 'node:worker_threads';
import { register } from 'tsx/esm/api';

register();
const { items, opts, counters, port } = workerData;
let compile;
try {
  ({ compileUncached: compile } = await import('./nvrtc.ts'));
} catch (e) {
  compile = () => {
    throw e;
  };
}
for (let i = Atomics.add(counters, 0, 1); i < items.length; i = Atomics.add(counters, 0, 1)) {
  let msg;
  try {
    msg = { i, ptx: compile(items[i].source, opts, items[i].name) };
  } catch (e) {
    msg = { i, error: e instanceof Error ? e.message : String(e) };
  }
  port.postMessage(msg);
  Atomics.add(counters, 1, 1);
  Atomics.notify(counters, 1);
}
port.close();
