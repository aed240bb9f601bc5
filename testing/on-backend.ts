// Runs a check on a chosen backend and puts the caller's backend back afterwards.

import * as tw from '../index.ts';

export async function onBackend<R>(name: tw.BackendName, run: () => Promise<R>): Promise<R> {
  const before = tw.backendChoice().name;
  if (before !== name) await tw.setBackend(name);
  try {
    return await run();
  } finally {
    if (tw.backendChoice().name !== before) await tw.setBackend(before);
  }
}
