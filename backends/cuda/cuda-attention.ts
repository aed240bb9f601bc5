// The CUDA C spelling of the attention skeleton (backends/render/attention.ts): offsets are 64-bit (long
// long), so q, k, v and their gradients may hold more than 2^31 elements; values are f32 in registers and
// shared memory, f16/bf16 converted on load and rounded on store.

import type { AttentionKernel } from '../../compiler/kernel-ir/kernel.ts';
import { ATTENTION_ROWS } from '../../compiler/kernel-ir/attention.ts';
import { attentionBody, attentionGrid, type AttentionSyntax } from '../render/attention.ts';
import type { Renderer } from './cuda-c.ts';
import { cudaDialect, literal } from './cuda-dialect.ts';

/** Static shared memory a block's tiles may take (of the 48 KiB every sm_70+ device gives without opting in). */
const SHARED_BYTES = 32768;
const TYPES = { int: 'int', wide: 'long long', f32: 'float', bool: 'bool' } as const;

export function renderAttention(r: Renderer, k: AttentionKernel, entry: string) {
  const x: AttentionSyntax = {
    int: (n) => `${n}`,
    f32: (v) => literal(v, 'f32'),
    wide: (e) => `(long long)(${e})`,
    declare: (name, type, value, mutable) => `${mutable ? '' : 'const '}${TYPES[type]} ${name} = ${value};`,
    array: (name, n) => `float ${name}[${Math.max(1, n)}];`,
    shared: (name, n) => `__shared__ float ${name}[${Math.max(1, n)}];`,
    loop: (v, from, to, step = '1') => `for (int ${v} = ${from}; ${v} < ${to}; ${v} += ${step}) {`,
    unroll: '#pragma unroll',
    barrier: '__syncthreads();',
    exp: (a) => `expf(${a})`,
    log: (a) => `logf(${a})`,
    max: (a, b) => `fmaxf(${a}, ${b})`,
    load: (arg, offset) => r.loadText(arg, `a${arg}[${offset}]`),
    store: (arg, offset, v) => `a${arg}[${offset}] = ${cudaDialect.store(v, k.args[arg]!.type)};`,
    thread: '(int)threadIdx.x',
    blockX: '(int)blockIdx.x',
    batch: '(long long)blockIdx.z * 65535 + blockIdx.y',
  };
  const { shared, body } = attentionBody(k, x, SHARED_BYTES);
  const text = [`extern "C" __global__ void __launch_bounds__(${ATTENTION_ROWS}) ${entry}(${r.params()}) {`, ...shared.map((s) => `  ${s}`), ...body, '}'];
  return { body: text, grid: attentionGrid(k), block: [ATTENTION_ROWS, 1, 1] as [number, number, number] };
}
