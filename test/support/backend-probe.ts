// Whether this machine can run a backend: tests skip what it cannot, printing the reason.

import * as tw from 'twinflow';

/** Why `name` cannot run here (printed as "`what`: skipping … : reason"), or undefined; leaves cpu selected. */
export async function unavailable(name: tw.BackendName, what: string): Promise<string | undefined> {
  let reason: string | undefined;
  try {
    await tw.setBackend(name);
  } catch (e) {
    reason = (e as Error).message;
    console.warn(`${what}: ${reason}`);
  }
  await tw.setBackend('cpu');
  return reason;
}
