// The bookkeeping of the GPU machine's check scripts (bench/device-cuda.ts, bench/device-webgpu.ts), which run
// without vitest: their --only and --out options, a report echoed to stdout and saved under --out, and checks that
// each print ok or FAIL with their differences, then a summary.

import fs from 'node:fs';
import path from 'node:path';
import v8 from 'node:v8';
import vm from 'node:vm';
import { opt } from './options.ts';

v8.setFlagsFromString('--expose-gc');
/** A full collection: the backends' buffers return to their pools when their tensors are collected. */
export const gc = vm.runInNewContext('gc') as () => void;

export const only = opt('only')?.split(',');
const outDir = opt('out');

const t0 = performance.now();
export const elapsed = () => (performance.now() - t0) / 1e3;

const lines: string[] = [];
export function say(s: string): void {
  console.log(s);
  lines.push(s);
}

let passed = 0, skipped = 0;
const failures: string[] = [];
/** Counts a failure that is not a check of its own (a benchmark that threw). */
export function fail(label: string, why: string): void {
  failures.push(label);
  say(`FAIL ${label}: ${why}`);
}

/**
 * Runs one check unless `skip` says so: `body` returns the differences found (none: ok). A throw is a failure
 * whose message `onThrow` also sees (a sticky device error stops the later checks that way).
 */
export async function check(label: string, body: () => Promise<string[]>, opts: { skip?: boolean; onThrow?: (msg: string) => void } = {}): Promise<void> {
  if (opts.skip) {
    skipped++;
    return;
  }
  const t = performance.now();
  let f: string[];
  try {
    f = await body();
  } catch (e) {
    const msg = (e as Error).message;
    f = [`threw: ${msg.split('\n').slice(0, 12).join('\n    ')}`];
    opts.onThrow?.(msg);
  }
  const ms = (performance.now() - t).toFixed(0);
  if (f.length) {
    failures.push(label);
    say(`FAIL ${label} (${ms} ms)\n    ${f.join('\n    ')}`);
  } else {
    passed++;
    say(`ok   ${label} (${ms} ms)`);
  }
}

/** Writes a file under --out, if given. */
export function save(name: string, text: string): void {
  if (!outDir) return;
  fs.mkdirSync(outDir, { recursive: true });
  fs.writeFileSync(path.join(outDir, name), text);
}

/** Prints the summary, saves the report as `name` and exits: `code` if set, else 1 when anything failed. */
export function finish(name: string, code: number, note = ''): never {
  say(`\n${passed} passed, ${failures.length} failed${skipped ? `, ${skipped} not run (over the time budget)` : ''} in ${elapsed().toFixed(0)} s${failures.length ? `\nfailed: ${failures.join('; ')}` : ''}${note}`);
  save(name, lines.join('\n') + '\n');
  // Dawn's Node bindings keep the process alive while devices exist
  process.exit(code || (failures.length ? 1 : 0));
}
