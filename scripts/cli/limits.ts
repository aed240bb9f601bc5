// Sizes that drive memory and cannot be streamed, checked before anything is allocated, so that a too-large
// --hidden or --batch is one line naming the flag instead of "Invalid typed array length" or an out-of-memory
// death: each tensor must fit a host array (every backend reads values back through one), and the model
// with its EMA, Adam moments and gradients must fit in half the machine's memory.

import { constants } from 'node:buffer';
import { totalmem } from 'node:os';
import { isParamSpec, type SpecTree } from '../../models/nn/params.ts';
import type { Problem } from './problem.ts';
import { type RunConfig, UsageError } from './runs.ts';

const F32 = 4;
/** Copies of the parameters training holds: params, EMA, two Adam moments, gradients. */
const STATE_COPIES = 5;

const gb = (bytes: number) => `${(bytes / 2 ** 30).toFixed(1)} GiB`;

function shapes(spec: SpecTree, out: number[][] = []): number[][] {
  if (isParamSpec(spec)) out.push(spec.shape);
  else for (const c of Array.isArray(spec) ? spec : Object.values(spec)) shapes(c as SpecTree, out);
  return out;
}

/** Throws a UsageError when the run's model or batch cannot be allocated here. */
export function checkMemory(run: RunConfig, prob: Pick<Problem, 'spec'>, hostBytes = totalmem(), maxArray = constants.MAX_LENGTH): void {
  const all = shapes(prob.spec);
  const sizes = all.map((s) => s.reduce((a, b) => a * b, 1));
  const flag = run.hidden !== undefined ? `--hidden ${run.hidden}` : `--model ${run.model}`;
  const largest = Math.max(...sizes) * F32;
  if (largest > maxArray) throw new UsageError(`${flag}: one weight would take ${gb(largest)}, over the ${gb(maxArray)} a tensor can hold; choose a smaller --hidden`);
  const state = sizes.reduce((a, b) => a + b, 0) * F32 * STATE_COPIES;
  if (state > hostBytes / 2) throw new UsageError(`${flag}: training holds ${gb(state)} (weights, EMA, optimizer state, gradients), over half of this machine's ${gb(hostBytes)}; choose a smaller --hidden`);
  const width = Math.max(...all.map((s) => s[s.length - 1] ?? 1));
  const activation = run.batch * width * F32;
  if (activation > maxArray) throw new UsageError(`--batch ${run.batch}: one activation of ${run.batch} rows × ${width} would take ${gb(activation)}, over the ${gb(maxArray)} a tensor can hold; choose a smaller --batch`);
}
