// checkBackends: a function run on every available backend in each float dtype, against the float64 cpu
// oracle evaluated on the same (rounded) inputs, with tolerances by dtype.

import * as tw from '../index.ts';
import { TwinflowError } from '../dsl/errors.ts';
import { type HostTensor, hostOf, pathsOf, splitArgs } from './leaves.ts';
import { maxAbs, unravel, worstMismatch } from './report.ts';
import { tolerances } from './tolerances.ts';
import { onBackend } from './on-backend.ts';

export interface CheckBackendsOptions {
  /** Default: cpu, webgpu and cuda. */
  backends?: readonly tw.BackendName[];
  /** The dtype the float arguments are given in (default f32). */
  dtypes?: readonly tw.FloatDType[];
  /** Override the per-dtype tolerances (tolerances[dtype]); atol is relative to each output's largest |value|. */
  rtol?: number;
  atol?: number;
}

export interface BackendResult {
  backend: tw.BackendName;
  dtype: tw.FloatDType;
  status: 'passed' | 'failed' | 'skipped';
  /** Why it was skipped, or what failed (output, worst element, expected and got). */
  reason?: string;
}

/** Thrown by checkBackends when a backend disagrees with the oracle; `results` has every backend's outcome. */
export class BackendCheckError extends Error {
  override name = 'BackendCheckError';
  constructor(readonly results: BackendResult[]) {
    super(`checkBackends failed:\n${results.map((r) => `  ${r.backend} ${r.dtype}: ${r.status}${r.reason ? ` (${r.reason})` : ''}`).join('\n')}`);
  }
}

const reasonOf = (e: unknown) => (e instanceof TwinflowError ? e.detail : e instanceof Error ? e.message : String(e));

async function outputs(f: (...a: unknown[]) => unknown, args: unknown[]): Promise<{ names: string[]; values: HostTensor[] }> {
  const out = f(...args);
  return { names: pathsOf(out, 'out'), values: await Promise.all(tw.treeFlatten(out)[0].map(hostOf)) };
}

/**
 * Runs `f` on each backend with its float arguments in each dtype and compares every output with `f` on the
 * cpu backend in f64 (given the same values, rounded to the dtype). Backends this machine cannot start, and
 * dtypes a backend cannot hold, are reported as skipped with the reason. Returns one result per backend and dtype; throws BackendCheckError
 * if any failed.
 */
export async function checkBackends<F extends (...args: never[]) => unknown>(f: F, args: Parameters<F>, opts: CheckBackendsOptions = {}): Promise<BackendResult[]> {
  const { backends = ['cpu', 'webgpu', 'cuda'], dtypes = ['f32'] } = opts;
  const fn = f as unknown as (...a: unknown[]) => unknown;
  const results: BackendResult[] = [];
  // The oracle per dtype, and the inputs rounded to that dtype, both computed on cpu.
  const oracle = await onBackend('cpu', async () => {
    const split = await splitArgs('checkBackends', args as readonly unknown[]);
    return Promise.all(dtypes.map(async (dtype) => {
      const rounded = await Promise.all(split.varied.map((h) => hostOf(tw.tensor(h.data, dtype, h.shape))));
      const want = await outputs(fn, split.rebuild(rounded.map((h) => tw.tensor(h.data, 'f64', h.shape))));
      return { dtype, rounded, want };
    }));
  });
  for (const name of backends) {
    let unavailable: string | undefined;
    try {
      await onBackend(name, async () => {});
    } catch (e) {
      unavailable = reasonOf(e);
    }
    for (const { dtype, rounded, want } of oracle) {
      if (unavailable !== undefined) {
        results.push({ backend: name, dtype, status: 'skipped', reason: unavailable });
        continue;
      }
      // A dtype the backend cannot hold (bf16 outside CUDA) is unavailable too: probed by making one tensor.
      let noDtype: string | undefined;
      await onBackend(name, async () => {
        try {
          await tw.tensor(new Float64Array(1), dtype, [1]).data();
        } catch (e) {
          noDtype = reasonOf(e);
        }
      });
      if (noDtype !== undefined) {
        results.push({ backend: name, dtype, status: 'skipped', reason: noDtype });
        continue;
      }
      const { rtol = tolerances[dtype].rtol, atol = tolerances[dtype].atol } = opts;
      try {
        const failure = await onBackend(name, async () => {
          const split = await splitArgs('checkBackends', args as readonly unknown[]);
          const got = await outputs(fn, split.rebuild(rounded.map((h) => tw.tensor(h.data, dtype, h.shape))));
          for (let k = 0; k < want.values.length; k++) {
            const w = want.values[k]!, scale = maxAbs(w.data);
            const worst = worstMismatch(got.values[k]!.data, w.data, rtol, atol + rtol * scale);
            if (worst) {
              return `${want.names[k]}[${unravel(worst.flat, w.shape).join(', ')}]: expected ${worst.want} (f64 oracle), got ${worst.got}; ` +
                `|diff| ${Math.abs(worst.got - worst.want).toExponential(2)} > ${worst.allowed.toExponential(2)}; ${worst.mismatches} of ${w.data.length} elements out of tolerance`;
            }
          }
          return undefined;
        });
        results.push(failure ? { backend: name, dtype, status: 'failed', reason: failure } : { backend: name, dtype, status: 'passed' });
      } catch (e) {
        results.push({ backend: name, dtype, status: 'failed', reason: `threw: ${reasonOf(e)}` });
      }
    }
  }
  if (results.some((r) => r.status === 'failed')) throw new BackendCheckError(results);
  return results;
}
