// Builds test/support/fake-libcuda.c (a stand-in libcuda.so.1 that runs no kernels and records launches) with
// the system C compiler, once per source text, and binds the functions it adds for reading back what happened.
// backends/cuda/driver.ts loads it when TWINFLOW_LIBCUDA names the file.

import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import koffi from 'koffi';
import { nvrtc } from '../../backends/cuda/nvrtc.ts';

const SOURCE = path.join(path.dirname(fileURLToPath(import.meta.url)), 'fake-libcuda.c');

/** The built library's path, or why it could not be built (no C compiler). */
export function buildFakeLibcuda(): { path: string } | { reason: string } {
  const src = fs.readFileSync(SOURCE);
  const dir = path.join(os.tmpdir(), 'twinflow-fakecuda', createHash('sha256').update(src).digest('hex').slice(0, 16));
  const so = path.join(dir, 'libcuda.so.1');
  if (fs.existsSync(so)) return { path: so };
  fs.mkdirSync(dir, { recursive: true });
  const tmp = `${so}.${process.pid}.tmp`;
  const errors: string[] = [];
  for (const cc of [process.env.CC, 'cc', 'gcc'].filter((c): c is string => !!c)) {
    try {
      execFileSync(cc, ['-shared', '-fPIC', '-O2', '-o', tmp, SOURCE], { stdio: ['ignore', 'ignore', 'pipe'] });
      fs.renameSync(tmp, so);
      return { path: so };
    } catch (e) {
      const err = e as { code?: string; stderr?: Buffer; message: string };
      errors.push(`${cc}: ${err.code === 'ENOENT' ? 'not found' : (err.stderr?.toString().trim() || err.message).split('\n')[0]}`);
    }
  }
  return { reason: `cannot build the fake libcuda (${errors.join('; ')})` };
}

/**
 * For a test file that drives the cuda backend through the fake driver: the library's path, or why the file
 * skips (no C compiler, or no NVRTC to turn the generated kernels into the PTX the driver loads).
 */
export function fakeDriverOrSkip(): { lib: string; reason?: undefined } | { lib?: undefined; reason: string } {
  try {
    nvrtc();
  } catch (e) {
    return { reason: (e as Error).message.split('\n')[0]! };
  }
  const built = buildFakeLibcuda();
  return 'reason' in built ? built : { lib: built.path };
}

export interface FakeLaunch {
  name: string;
  grid: number[];
  block: number[];
  shared: number;
  /** The u64 behind each kernelParams pointer. */
  params: bigint[];
}

/** The stub's own functions (same library handle as the driver's: dlopen shares one copy per path). */
export function fakeCuda(libPath: string) {
  const lib = koffi.load(libPath);
  const launches = lib.func('int fakeLaunches()');
  const one = lib.func('int fakeLaunch(int i, _Out_ uint64_t *out, int cap)');
  const name = lib.func('const char *fakeLaunchName(int i)');
  const buf = new BigUint64Array(8 + 1024);
  return {
    launches: launches as () => number,
    allocs: lib.func('int fakeAllocs()') as () => number,
    live: lib.func('int fakeLive()') as () => number,
    /** Launches from index `from` (0-based over the process) on; they must still be in the stub's log. */
    log(from: number): FakeLaunch[] {
      const out: FakeLaunch[] = [];
      for (let i = from, n = launches(); i < n; i++) {
        const w = one(i, buf, buf.length) as number;
        if (w < 0) throw new Error(`fake libcuda: launch ${i} is no longer in the log`);
        const v = Array.from(buf.subarray(0, w));
        out.push({ name: name(i) as string, grid: v.slice(0, 3).map(Number), block: v.slice(3, 6).map(Number), shared: Number(v[6]), params: v.slice(8) });
      }
      return out;
    },
    /** The next `count` calls of `call` after `skip` successful ones return `code` (count -1: every one). */
    fail: lib.func('void fakeFail(const char *call, int code, int skip, int count)') as (call: string, code: number, skip: number, count: number) => void,
  };
}
