// The WGSL spelling of the attention skeleton (backends/render/attention.ts): indices and offsets are u32,
// which reach every element of any buffer WebGPU can bind (the backend refuses bindings over the device's
// maxStorageBufferBindingSize); values are f32 in registers and workgroup memory, f16 converted on load and store.

import type { AttentionKernel } from '../../compiler/kernel-ir/kernel.ts';
import { attentionBody, type AttentionSyntax } from '../render/attention.ts';
import type { Emitter } from '../render/c-like.ts';
import { literal } from './wgsl-dialect.ts';

const TYPES = { int: 'u32', wide: 'u32', f32: 'f32', bool: 'bool' } as const;

/** The shader's workgroup declarations and entry point. */
export function renderAttentionWgsl(r: Emitter, k: AttentionKernel, sharedBytes: number): { body: string[]; extra: string[] } {
  for (const a of k.args) {
    if (a.size >= 2 ** 32) throw new Error(`kernel ${k.name}: an argument of ${a.size} elements is past what u32 indices reach (WebGPU buffers hold fewer)`);
  }
  const type = (arg: number) => k.args[arg]!.type;
  const x: AttentionSyntax = {
    int: (n) => `${n}u`,
    f32: (v) => literal(v, 'f32'),
    wide: (e) => e,
    declare: (name, t, value, mutable) => `${mutable ? 'var' : 'let'} ${name}: ${TYPES[t]} = ${value};`,
    array: (name, n) => `var ${name}: array<f32, ${Math.max(1, n)}>;`,
    shared: (name, n) => `var<workgroup> ${name}: array<f32, ${Math.max(1, n)}>;`,
    loop: (v, from, to, step = '1u') => `for (var ${v}: u32 = ${from}; ${v} < ${to}; ${v} += ${step}) {`,
    barrier: 'workgroupBarrier();',
    exp: (a) => `exp(${a})`,
    log: (a) => `log(${a})`,
    max: (a, b) => `max(${a}, ${b})`,
    load: (arg, offset) => (type(arg) === 'f16' ? `f32(a${arg}[${offset}])` : r.loadText(arg, `a${arg}[${offset}]`)),
    store: (arg, offset, v) => `a${arg}[${offset}] = ${type(arg) === 'f16' ? `f16(${v})` : v};`,
    thread: 'lid.x',
    blockX: 'wid.x',
    batch: '(wid.y + wid.z * 65535u)',
  };
  const { shared, body, threads } = attentionBody(k, x, sharedBytes);
  return {
    extra: shared,
    body: [`@compute @workgroup_size(${threads})`, 'fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>) {', ...body, '}'],
  };
}
