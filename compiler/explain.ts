// What a compiled program does: the kernels after fusion, what each reads and writes, bytes moved and
// flops, and the plan's peak memory. For a backend's Target (its storage and buffer limit), or by default neutral:
// 4-byte elements (2 for f16 and bf16) and at most 8 buffers per kernel, WebGPU's default limit.

import { attentionFlops } from './kernel-ir/attention.ts';
import { type ScalarType, topoOrder } from './kernel-ir/expr.ts';
import type { Kernel } from './kernel-ir/kernel.ts';
import type { Plan } from './plan.ts';
import { planFor } from './pipeline.ts';
import { storageBytes, type Target } from './target.ts';
import type { Graph } from '../dsl/graph.ts';
import { TwinflowError } from '../dsl/errors.ts';

export interface KernelReport {
  name: string;
  kind: Kernel['kind'];
  /** Element counts of the arguments read and written. */
  reads: number[];
  writes: number[];
  bytes: number;
  flops: number;
}

export interface Explanation {
  kernels: KernelReport[];
  peakBytes: number;
  text: string;
}

/** A neutral kernel target: what every kernel backend can do. */
const NEUTRAL: Target = { name: 'explain', boolBytes: 4, maxArgs: 8, unsupported: {}, error: (m) => new TwinflowError(m) };

/** Arithmetic operations per evaluation of a kernel's expressions (loads and index math excluded). */
function opsPerElement(roots: Parameters<typeof topoOrder>[0]): number {
  return topoOrder(roots).filter((e) => (e.op === 'unary' || e.op === 'binary' || e.op === 'select') && e.type !== 'i32').length;
}

/** One kernel's arguments, bytes moved (as `target` stores them) and flops. */
export function kernelReport(k: Kernel, target: Pick<Target, 'boolBytes'> = NEUTRAL): KernelReport {
  const bytesPer = (t: ScalarType) => storageBytes(target, t);
  const reads = k.args.filter((a) => a.access === 'read').map((a) => a.size);
  const writes = k.args.filter((a) => a.access === 'write').map((a) => a.size);
  const bytes = k.args.reduce((s, a) => s + a.size * bytesPer(a.type), 0);
  let flops: number;
  if (k.kind === 'map') flops = k.size * opsPerElement(k.stores.map((s) => s.value));
  else if (k.kind === 'reduce') flops = k.rows * k.cols * (k.stages.length + opsPerElement(k.stages.map((s) => s.body))) + k.rows * opsPerElement([...k.rowStores, ...k.colStores].map((s) => s.value));
  else if (k.kind === 'attention') flops = attentionFlops(k);
  else if (k.kind === 'horizontal') flops = k.segments.reduce((n, s) => n + s.size * opsPerElement(s.stores.map((st) => st.value)), 0);
  else flops = 2 * k.batch * k.m * k.n * k.k + k.batch * k.m * k.n * opsPerElement(k.stores.map((s) => s.value));
  return { name: k.name, kind: k.kind, reads, writes, bytes, flops };
}

export function explainGraph(g: Graph, target: Target = NEUTRAL): Explanation {
  return explainPlan(planFor(g, target), target);
}

export function explainPlan(plan: Plan, target: Pick<Target, 'boolBytes'> = NEUTRAL): Explanation {
  const kernels = plan.steps.map((s) => kernelReport(s.kernel, target));
  const fmt = (n: number) => (n >= 1e9 ? `${(n / 1e9).toFixed(2)}G` : n >= 1e6 ? `${(n / 1e6).toFixed(2)}M` : n >= 1e3 ? `${(n / 1e3).toFixed(1)}k` : `${n}`);
  const lines = kernels.map((k) => `${k.name.padEnd(16)} ${k.kind.padEnd(6)} reads [${k.reads.join(', ')}] writes [${k.writes.join(', ')}]  ${fmt(k.bytes)}B  ${fmt(k.flops)}flop`);
  lines.push(`${kernels.length} kernel(s), peak memory ${fmt(plan.peakBytes)}B`);
  return { kernels, peakBytes: plan.peakBytes, text: lines.join('\n') };
}
