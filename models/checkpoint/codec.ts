// Checkpoints as bytes, with no file system: what the Node file layer (checkpoint.ts) and a page (fetch.ts)
// share. A part (params, ema or optState) is one safetensors blob whose tensor names are dotted pytree paths
// ("layers.0.w") and whose metadata records the step; a whole checkpoint in one blob (checkpointToBytes)
// prefixes each name with its part ("ema.layers.0.w") and records the format, step and config. Decoding
// rebuilds the pytrees of a template (e.g. freshly initialised params) and reports every name, shape and
// dtype that differs, in the same words wherever the bytes came from.

import * as tw from '../../core.ts';
import { CheckpointError, decodeSafetensors, encodeSafetensors, type HostTensor } from './safetensors.ts';

export { CheckpointError } from './safetensors.ts';

export interface TrainState<P = unknown, S = unknown> {
  params: P;
  ema: P;
  optState: S;
  step: number;
}

export const PARTS = ['params', 'ema', 'optState'] as const;
export type Part = (typeof PARTS)[number];
/** Some parts of a training state: what a checkpoint holds, or the template to load into. */
export type StateParts<P = unknown, S = unknown> = Partial<Omit<TrainState<P, S>, 'step'>>;

export const FORMAT = 'twinflow-checkpoint';
/** A checkpoint directory's files: one per part, and the manifest written last. */
export const PART_FILES = { params: 'params.safetensors', ema: 'ema.safetensors', optState: 'optimizer.safetensors' } as const satisfies Record<Part, string>;
export const MANIFEST_FILE = 'checkpoint.json';

/** Tensor leaves by dotted path; null/undefined leaves hold nothing. Other statics cannot be stored. */
export function namedLeaves(tree: unknown, what: string): Map<string, tw.Tensor> {
  const out = new Map<string, tw.Tensor>();
  const walk = (x: unknown, name: string) => {
    if (x instanceof tw.Tensor) {
      if (out.has(name)) throw new CheckpointError(`${what}: two leaves are named ${name}; keys must not contain '.'`);
      out.set(name, x);
    } else if (Array.isArray(x)) x.forEach((c, i) => walk(c, name ? `${name}.${i}` : String(i)));
    else if (typeof x === 'object' && x !== null) for (const [k, c] of Object.entries(x)) walk(c, name ? `${name}.${k}` : k);
    else if (x !== null && x !== undefined) throw new CheckpointError(`${what}: leaf ${name || '(root)'} is ${typeof x} ${JSON.stringify(x)}, not a tensor; keep counters in tensors`);
  };
  walk(tree, '');
  return out;
}

/** The template's structure with each tensor leaf replaced by `leaf(name)`. */
function rebuild(tree: unknown, leaf: (name: string) => tw.Tensor, name = ''): unknown {
  const at = (k: string | number) => (name ? `${name}.${k}` : String(k));
  if (tree instanceof tw.Tensor) return leaf(name);
  if (Array.isArray(tree)) return tree.map((c, i) => rebuild(c, leaf, at(i)));
  if (typeof tree === 'object' && tree !== null) return Object.fromEntries(Object.entries(tree).map(([k, c]) => [k, rebuild(c, leaf, at(k))]));
  return tree;
}

const fmt = (t: { dtype: string; shape: readonly number[] }) => `${t.dtype}[${t.shape.join(',')}]`;

/** What differs between stored tensors and the template's leaves, one line each (empty when they match). */
function differences(file: Map<string, HostTensor>, model: Map<string, tw.Tensor>): string[] {
  const lines: string[] = [];
  for (const [name, t] of model) {
    const f = file.get(name);
    if (!f) lines.push(`missing from the file: ${name} (${fmt(t)})`);
    else {
      if (f.shape.join(',') !== t.shape.join(',')) lines.push(`shape of ${name}: [${f.shape.join(',')}] in the file, [${t.shape.join(',')}] in the model`);
      if (f.dtype !== t.dtype) lines.push(`dtype of ${name}: ${f.dtype} in the file, ${t.dtype} in the model`);
    }
  }
  for (const [name, f] of file) if (!model.has(name)) lines.push(`not in the model: ${name} (${fmt(f)})`);
  return lines;
}

/** Stored tensors into the template's structure; `source` names the bytes (a file or URL) in the error. */
function intoTemplate(stored: Map<string, HostTensor>, like: unknown, part: Part, source: string): unknown {
  const diff = differences(stored, namedLeaves(like, part));
  if (diff.length) throw new CheckpointError(`${source} does not match the model:\n  ${diff.join('\n  ')}`);
  return rebuild(like, (name) => {
    const t = stored.get(name)!;
    return tw.tensor(t.data, t.dtype, t.shape);
  });
}

async function hostTensors(tree: unknown, part: string, prefix = ''): Promise<Map<string, HostTensor>> {
  const host = new Map<string, HostTensor>();
  for (const [name, t] of namedLeaves(tree, part)) host.set(prefix + name, { dtype: t.dtype, shape: t.shape, data: await t.data() });
  return host;
}

function checkStep(step: number): void {
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`checkpoint: step must be a non-negative integer, got ${step}`);
}

/** One part of a checkpoint (its pytree at `step`) as safetensors bytes. */
export async function partToBytes(tree: unknown, part: Part, step: number): Promise<Uint8Array> {
  checkStep(step);
  return encodeSafetensors(await hostTensors(tree, part), { step: String(step) });
}

/** One part from its bytes into the structure of `like`, checking that it was written at `step`. */
export async function partFromBytes<T>(bytes: Uint8Array, like: T, part: Part, step: number, source: string, manifestName: string): Promise<T> {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  if (metadata.step !== String(step)) {
    throw new CheckpointError(`${source}: written at step ${metadata.step ?? '(none)'} but ${manifestName} says step ${step}: the checkpoint was not completely written`);
  }
  return intoTemplate(tensors, like, part, source) as T;
}

/** The step and config a manifest (checkpoint.json's parsed text) holds; `source` names it in the error. */
export function readManifest(manifest: unknown, source: string): { step: number; config: unknown } {
  const m = manifest as { format?: unknown; step?: unknown; config?: unknown } | null;
  if (m?.format !== FORMAT || !Number.isSafeInteger(m.step) || (m.step as number) < 0) throw new CheckpointError(`${source}: not a ${FORMAT} manifest with an integer step`);
  return { step: m.step as number, config: m.config };
}

/** The manifest text of checkpoint.json. */
export function manifestText(step: number, config: unknown): string {
  checkStep(step);
  return `${JSON.stringify({ format: FORMAT, step, config }, null, 2)}\n`;
}

/**
 * A whole checkpoint (the parts present in `state`, its step and any JSON `config`, e.g. the run's) as the
 * bytes of one safetensors file: what a page downloads and `twinflow sample --ckpt FILE.safetensors` reads.
 */
export async function checkpointToBytes(state: StateParts & { step: number }, config: unknown): Promise<Uint8Array> {
  checkStep(state.step);
  const host = new Map<string, HostTensor>();
  const parts = PARTS.filter((p) => state[p] !== undefined);
  if (!parts.length) throw new CheckpointError('checkpointToBytes: the state holds none of params, ema, optState');
  for (const part of parts) for (const [k, v] of await hostTensors(state[part], part, `${part}.`)) host.set(k, v);
  return encodeSafetensors(host, { format: FORMAT, step: String(state.step), parts: parts.join(','), config: JSON.stringify(config ?? null) });
}

/** What one-file checkpoint bytes hold, without a template: step, config and parts (to build the model first). */
export function checkpointInfo(bytes: Uint8Array, source: string): { step: number; config: unknown; parts: Part[]; tensors: Map<string, HostTensor> } {
  const { tensors, metadata } = decodeSafetensors(bytes, source);
  if (metadata.format !== FORMAT) throw new CheckpointError(`${source}: not a ${FORMAT} file (its metadata names format ${JSON.stringify(metadata.format ?? null)})`);
  const step = Number(metadata.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new CheckpointError(`${source}: the metadata's step ${JSON.stringify(metadata.step ?? null)} is not a non-negative integer: the file is corrupt`);
  let config: unknown;
  try {
    config = JSON.parse(metadata.config ?? 'null');
  } catch (e) {
    throw new CheckpointError(`${source}: the metadata's config is not valid JSON (${(e as Error).message}): the file is corrupt`);
  }
  const parts = (metadata.parts ?? '').split(',').filter(Boolean) as Part[];
  const unknown = parts.filter((p) => !PARTS.includes(p));
  if (unknown.length) throw new CheckpointError(`${source}: unknown parts ${unknown.join(', ')} (expected ${PARTS.join(', ')}): the file is corrupt`);
  return { step, config, parts, tensors };
}

/**
 * The parts of one-file checkpoint bytes that `like` asks for, in its structure, with the step and config.
 * Throws CheckpointError naming `source` and every difference, or the part the bytes do not hold.
 */
export async function checkpointFromBytes<L extends StateParts>(bytes: Uint8Array, like: L, source: string): Promise<L & { step: number; config: unknown }> {
  const { step, config, parts, tensors } = checkpointInfo(bytes, source);
  const out: Record<string, unknown> = { step, config };
  for (const part of PARTS) {
    if (like[part] === undefined) continue;
    if (!parts.includes(part)) throw new CheckpointError(`${source} holds no ${part} (it holds ${parts.join(', ')})`);
    const prefix = `${part}.`;
    const mine = new Map([...tensors].filter(([k]) => k.startsWith(prefix)).map(([k, v]) => [k.slice(prefix.length), v]));
    out[part] = intoTemplate(mine, like[part], part, `${source} (${part})`);
  }
  return out as L & { step: number; config: unknown };
}
