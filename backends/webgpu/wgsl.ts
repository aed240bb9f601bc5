// The WGSL renderer: kernel IR in, one compute shader out. Expressions are rendered by the C-like core with
// WGSL's dialect (wgsl-dialect.ts), as `let` bindings in the scope where their variables live; the three kernel
// skeletons (map, reduce, matmul, and horizontal: several maps in one dispatch) are written out here, attention's
// spelled in wgsl-attention.ts.

import type { Expr, ScalarType } from '../../compiler/kernel-ir/expr.ts';
import { type HorizontalKernel, horizontalSize, type Kernel, kernelExprs } from '../../compiler/kernel-ir/kernel.ts';
import { beats, Emitter, reduceCombine, reduceInit, Scope, segmentLines } from '../render/c-like.ts';
import { attentionGrid } from '../render/attention.ts';
import { renderAttentionWgsl } from './wgsl-attention.ts';
import { helpersCalled, literal, SPECIALS, wgslDialect } from './wgsl-dialect.ts';

export interface WgslCaps {
  /** The device has `shader-f16`. */
  f16: boolean;
  /**
   * A CPU-backed adapter (lavapipe, SwiftShader): workgroup memory and barriers cost more than they save
   * there, so matmuls read operands directly and reductions give each row to one thread.
   */
  software: boolean;
  /** The device has `subgroups`: per-row reductions combine lanes by shuffles instead of a workgroup-memory tree. */
  subgroups: boolean;
  /** Forces the GPU matmul tile (benchmarks compare tiles with it); else chosen by matmulTile. */
  matmulTile?: MatmulTile;
  /** The device's maxComputeWorkgroupStorageSize in bytes (WebGPU guarantees 16384, the default). */
  workgroupStorage?: number;
}

export interface RenderedKernel {
  code: string;
  /**
   * Map kernels read their element count from a uniform at this binding (after the storage buffers), so one
   * pipeline serves every size (see kernelKey's `sizes: false`).
   */
  sizeBinding?: number;
}

const MAX_GROUPS = 65535;
const MAP_WG = 256;
const REDUCE_WG = 128;
/** Matmul threads per workgroup side (16×16); outputs per thread (rows × columns) of the CPU-adapter variant. */
const TW = 16;
const CPU_REG: [number, number] = [16, 8];

/** How an argument of this type is stored (WGSL has no bool storage). */
const storageType = (t: ScalarType) => (t === 'bool' ? 'u32' : t);

class Renderer extends Emitter {
  readonly helpers = new Map<string, string>();
  /** Set while rendering: the shader calls subgroup builtins. */
  usesSubgroups = false;
  constructor(kernel: Kernel, readonly caps: WgslCaps) {
    super(kernel, wgslDialect);
  }

  protected override noted(text: string): void {
    this.need(text);
  }

  /** Includes the helper functions that `text` calls. */
  need(text: string): void {
    for (const [key, source] of helpersCalled(text)) if (!this.helpers.has(key)) this.helpers.set(key, source);
  }

  header(): string[] {
    const k = this.kernel;
    const uses16 = k.args.some((a) => a.type === 'f16');
    if (uses16 && !this.caps.f16) throw new Error('f16 needs the shader-f16 feature, which this device lacks');
    return [
      ...(uses16 ? ['enable f16;'] : []),
      ...(this.usesSubgroups ? ['enable subgroups;'] : []),
      ...k.args.map((a, i) => `@group(0) @binding(${i}) var<storage, ${a.access === 'write' ? 'read_write' : 'read'}> a${i}: array<${storageType(a.type)}>;`),
    ];
  }
}

function dispatch1d(groups: number): [number, number, number] {
  const n = Math.max(1, groups);
  return n <= MAX_GROUPS ? [n, 1, 1] : [MAX_GROUPS, Math.ceil(n / MAX_GROUPS), 1];
}

/** Bytes of the `var<workgroup>` arrays among these declarations. */
function workgroupBytes(decls: string[]): number {
  let total = 0;
  for (const d of decls) {
    const m = /^var<workgroup> \w+: array<(vec4<)?(\w+)>?, (\d+)>;$/.exec(d);
    if (m) total += Number(m[3]) * (m[1] ? 4 : 1) * (m[2] === 'f16' ? 2 : 4);
  }
  return total;
}

type Matmul = Extract<Kernel, { kind: 'matmul' }>;

/** An operand as a function of its indices (`load_a(batch, i, k)`, `load_b(batch, k, j)`). */
function operandLoader(r: Renderer, name: string, e: Expr, params: string, t: ScalarType): string[] {
  const sc = new Scope(r, undefined, '  ');
  const v = sc.ref(e);
  return [`fn ${name}(${params}) -> ${t} {`, ...sc.lines, `  return ${v};`, '}'];
}

/** The epilogue as a function of one output element: `store_c(batch, i, j, dot)` stores it if (i, j) is inside. */
function outputStorer(r: Renderer, k: Matmul): string[] {
  const sc = new Scope(r, undefined, '    ');
  k.stores.forEach((st) => sc.store(st));
  return [`fn store_c(batch: i32, i: i32, j: i32, s0: ${k.accType}) {`, `  if (i < ${k.m} && j < ${k.n}) {`, ...sc.lines, '  }', '}'];
}

/**
 * The workgroup tile of a GPU matmul: BM×BN outputs, K in steps of BK. 64×128×8 was the best or within 2% of
 * it at every size of bench/webgpu.ts --tiles on an H200 (1024³ to 4096³: 20, 27 and 27 TFLOP/s), where
 * 128×128 starves 1024³ of workgroups and 16-deep slices cost occupancy.
 */
export interface MatmulTile {
  bm: 64 | 128;
  bn: 64 | 128;
  bk: 8 | 16;
}
/** Every tile the renderer supports (benchmarks and tests go through them all). */
export const MATMUL_TILES: readonly MatmulTile[] = [64, 128].flatMap((bm) => [64, 128].flatMap((bn) => [8, 16].map((bk) => ({ bm, bn, bk }) as MatmulTile)));
export const tileName = (t: MatmulTile) => `${t.bm}×${t.bn}×${t.bk}`;
const DEFAULT_TILE: MatmulTile = { bm: 64, bn: 128, bk: 8 };
const tileBytes = (t: MatmulTile) => (t.bk * (t.bm + t.bn)) * 4;
const workgroupLimit = (caps: WgslCaps) => caps.workgroupStorage ?? 16384;
/** The forced tile, else the default, else (on a device with less workgroup memory) the largest that fits. */
export function matmulTile(caps: WgslCaps): MatmulTile {
  const limit = workgroupLimit(caps);
  if (caps.matmulTile) {
    if (tileBytes(caps.matmulTile) > limit) throw new Error(`matmul tile ${tileName(caps.matmulTile)} needs ${tileBytes(caps.matmulTile)} bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of ${limit}`);
    return caps.matmulTile;
  }
  if (tileBytes(DEFAULT_TILE) <= limit) return DEFAULT_TILE;
  const fits = MATMUL_TILES.filter((t) => tileBytes(t) <= limit).sort((a, b) => b.bm * b.bn - a.bm * a.bn || a.bk - b.bk);
  if (!fits.length) throw new Error(`no matmul tile fits this device's maxComputeWorkgroupStorageSize of ${limit} bytes (the smallest needs ${tileBytes(MATMUL_TILES[0]!)})`);
  return fits[0]!;
}

/**
 * The GPU matmul: 16×16 threads share BK-deep slices of A and B in workgroup memory, stored k-major as vec4s so
 * each thread reads its 4-wide row and column groups with vector loads; each thread holds (BM/16)×(BN/16)
 * accumulators as vec4 registers, written out as straight-line code so none of them spills to an array. Its
 * rows are ly*4 + {0..3} + 64g (columns likewise with lx), so a warp's vector reads hit distinct banks. The next
 * slice is loaded into registers while the current one is multiplied. Returns the workgroup declarations.
 */
function tiledMatmul(s: Scope, k: Matmul, tile: MatmulTile): string[] {
  const { bm, bn, bk } = tile;
  const t = k.accType;
  const threads = TW * TW;
  const la = (bm * bk) / threads, lb = (bk * bn) / threads; // operand elements each thread loads per slice
  const gm = bm / 64, gn = bn / 64; // vec4 groups per thread along rows and columns
  const zero = literal(0, t);
  // rows past the edge are clamped (never stored); k past the end reads zero in both operands, so the product is 0
  const clampI = (e: string) => (k.m % bm ? `min(${e}, ${k.m - 1})` : e);
  const clampJ = (e: string) => (k.n % bn ? `min(${e}, ${k.n - 1})` : e);
  const guardK = (kk: string, v: string) => (k.k % bk ? `select(${zero}, ${v}, ${kk} < ${k.k})` : v);
  s.line(`let batch = i32(w.z);`);
  s.line(`let i0 = i32(w.y) * ${bm};`);
  s.line(`let j0 = i32(w.x) * ${bn};`);
  s.line(`let lx = i32(lid.x); let ly = i32(lid.y);`);
  s.line(`var pa: array<${t}, ${la}>; var pb: array<${t}, ${lb}>;`);
  const fetch = (k0: string) => {
    for (let q = 0; q < la; q++) {
      const e = `(i32(l) + ${q * threads})`;
      s.line(`  pa[${q}] = ${guardK(`${k0} + ${e} % ${bk}`, `load_a(batch, ${clampI(`i0 + ${e} / ${bk}`)}, min(${k0} + ${e} % ${bk}, ${Math.max(k.k - 1, 0)}))`)};`);
    }
    for (let q = 0; q < lb; q++) {
      const e = `(i32(l) + ${q * threads})`;
      s.line(`  pb[${q}] = ${guardK(`${k0} + ${e} / ${bn}`, `load_b(batch, min(${k0} + ${e} / ${bn}, ${Math.max(k.k - 1, 0)}), ${clampJ(`j0 + ${e} % ${bn}`)})`)};`);
    }
  };
  for (let r = 0; r < 4 * gm; r++) for (let c = 0; c < gn; c++) s.line(`var c${r}_${c}: vec4<${t}>;`);
  if (k.k > 0) fetch('0');
  s.line(`for (var k0 = 0; k0 < ${k.k}; k0 += ${bk}) {`);
  s.line(`  workgroupBarrier();`);
  for (let q = 0; q < la; q++) {
    const e = `(i32(l) + ${q * threads})`;
    s.line(`  As[(${e} % ${bk}) * ${bm / 4} + ${e} / ${bk} / 4][${e} / ${bk} % 4] = pa[${q}];`);
  }
  for (let q = 0; q < lb; q++) {
    const e = `(i32(l) + ${q * threads})`;
    s.line(`  Bs[(${e} / ${bn}) * ${bn / 4} + ${e} % ${bn} / 4][${e} % 4] = pb[${q}];`);
  }
  s.line(`  workgroupBarrier();`);
  s.line(`  if (k0 + ${bk} < ${k.k}) {`);
  fetch(`(k0 + ${bk})`);
  s.line(`  }`);
  s.line(`  for (var kk = 0; kk < ${bk}; kk++) {`);
  for (let g = 0; g < gm; g++) s.line(`    let a${g} = As[kk * ${bm / 4} + ${g * 16} + ly];`);
  for (let g = 0; g < gn; g++) s.line(`    let b${g} = Bs[kk * ${bn / 4} + ${g * 16} + lx];`);
  for (let r = 0; r < 4 * gm; r++) {
    for (let c = 0; c < gn; c++) s.line(`    c${r}_${c} += a${r >> 2}[${r & 3}] * b${c};`);
  }
  s.line(`  }`);
  s.line(`}`);
  for (let r = 0; r < 4 * gm; r++) {
    for (let c = 0; c < gn; c++) {
      for (let v = 0; v < 4; v++) s.line(`store_c(batch, i0 + ${(r >> 2) * 64} + ly * 4 + ${r & 3}, j0 + ${c * 64} + lx * 4 + ${v}, c${r}_${c}[${v}]);`);
    }
  }
  return [`var<workgroup> As: array<vec4<${t}>, ${(bk * bm) / 4}>;`, `var<workgroup> Bs: array<vec4<${t}>, ${(bk * bn) / 4}>;`];
}

/**
 * Elements per map-kernel thread, 256 apart: GPUs want the parallelism, CPU adapters pay per workgroup (on
 * lavapipe the elementwise bench row ran 1.7× faster at 64 than at 1; 32 to 256 were within 10%).
 */
const mapPerThread = (caps: WgslCaps) => (caps.software ? 64 : 1);

/** A reduction gives each row a workgroup (else a thread; CPU adapters prefer that once there are rows enough). */
const perRowOf = (k: Extract<Kernel, { kind: 'reduce' }>, caps: WgslCaps) => k.strategy === 'workgroup' && !(caps.software && k.rows >= 16);

/** Workgroup counts for dispatchWorkgroups: per launch, since one map pipeline serves every size. */
export function dispatchWgsl(k: Kernel, caps: WgslCaps): [number, number, number] {
  if (k.kind === 'map') return dispatch1d(Math.ceil(k.size / (MAP_WG * mapPerThread(caps))));
  if (k.kind === 'horizontal') return dispatch1d(Math.ceil(horizontalSize(k) / (MAP_WG * mapPerThread(caps))));
  if (k.kind === 'reduce') return dispatch1d(perRowOf(k, caps) ? k.rows : Math.ceil(k.rows / MAP_WG));
  if (k.kind === 'attention') return attentionGrid(k);
  if (caps.software) return [Math.ceil(k.n / (TW * CPU_REG[1])), Math.ceil(k.m / (TW * CPU_REG[0])), k.batch];
  const { bm, bn } = matmulTile(caps);
  return [Math.ceil(k.n / bn), Math.ceil(k.m / bm), k.batch];
}

export function renderWgsl(kernel: Kernel, caps: WgslCaps): RenderedKernel {
  // WGSL has no bfloat16 type (the webgpu backend refuses bf16 tensors before planning; this guards direct use)
  if (kernel.args.some((a) => a.type === 'bf16') || kernelExprs(kernel).some((e) => e.type === 'bf16')) {
    throw new Error(`kernel ${kernel.name}: bf16 is not supported by WGSL (use the cuda backend, or cast to f32 or f16)`);
  }
  const r = new Renderer(kernel, caps);
  const { body, extra, sizeBinding }: Skeleton = kernel.kind === 'map' ? renderMap(r, kernel) : kernel.kind === 'reduce' ? renderReduce(r, kernel)
    : kernel.kind === 'attention' ? renderAttentionWgsl(r, kernel, workgroupLimit(caps)) : kernel.kind === 'horizontal' ? renderHorizontal(r, kernel) : renderMatmul(r, kernel);
  const shared = workgroupBytes(extra);
  const limit = workgroupLimit(caps);
  if (shared > limit) throw new Error(`kernel ${kernel.name}: needs ${shared} bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of ${limit}`);
  const code = [...r.header(), ...SPECIALS, ...extra, ...r.helpers.values(), ...body].join('\n');
  return { code, ...(sizeBinding !== undefined ? { sizeBinding } : {}) };
}

/** A skeleton's entry point, its module-scope declarations (workgroup memory, functions) and its size uniform. */
interface Skeleton {
  body: string[];
  extra: string[];
  sizeBinding?: number;
}

// ---------------------------------------------------------------------------------------------------- map

function renderMap(r: Renderer, kernel: Extract<Kernel, { kind: 'map' }>): Skeleton {
  const caps = r.caps;
  const body: string[] = [], extra: string[] = [];
  const sizeBinding = kernel.args.length;
  extra.push(`@group(0) @binding(${sizeBinding}) var<uniform> tw_size: vec4<i32>;`);
  const s = new Scope(r);
  const per = mapPerThread(caps);
  s.line(`let base = i32((w.x + w.y * n.x) * ${MAP_WG * per}u + l);`);
  s.line(`for (var e = 0; e < ${per}; e++) {`);
  s.line(`  let gid = base + e * ${MAP_WG};`);
  s.line(`  if (gid >= tw_size.x) { return; }`);
  const inner = new Scope(r, s, '    ');
  kernel.stores.forEach((st) => inner.store(st));
  s.lines.push(...inner.lines, '  }');
  body.push(`@compute @workgroup_size(${MAP_WG})`, `fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) l: u32, @builtin(num_workgroups) n: vec3<u32>) {`, ...s.lines, '}');
  return { body, extra, sizeBinding };
}

/** The map skeleton over all segments' elements together (their total is in the code: each plan has its own). */
function renderHorizontal(r: Renderer, kernel: HorizontalKernel): Skeleton {
  const per = mapPerThread(r.caps);
  const body = [
    `@compute @workgroup_size(${MAP_WG})`,
    `fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) l: u32, @builtin(num_workgroups) n: vec3<u32>) {`,
    `  let base = i32((w.x + w.y * n.x) * ${MAP_WG * per}u + l);`,
    `  for (var e = 0; e < ${per}; e++) {`,
    `    let hid = base + e * ${MAP_WG};`,
    `    if (hid >= ${horizontalSize(kernel)}) { return; }`,
    ...segmentLines(r, kernel, 'hid', '    '),
    '  }',
    '}',
  ];
  return { body, extra: [] };
}

// ---------------------------------------------------------------------------------------------------- reduce

function renderReduce(r: Renderer, kernel: Extract<Kernel, { kind: 'reduce' }>): Skeleton {
  const caps = r.caps;
  const body: string[] = [], extra: string[] = [];
  const perRow = perRowOf(kernel, caps);
  // WGSL shuffles take 32-bit scalars (f16 would need subgroups with f16 on top)
  const shuffles = (t: ScalarType) => caps.subgroups && (t === 'f32' || t === 'i32' || t === 'u32');
  const WG = perRow ? REDUCE_WG : MAP_WG;
    const s = new Scope(r);
  s.line(perRow ? `let row = i32(w.x + w.y * n.x);` : `let row = i32(g.x + g.y * n.x * ${WG}u);`);
  s.line(`if (row >= ${kernel.rows}) { return; }`);
  const colStart = perRow ? 'i32(l)' : '0';
  const colStep = perRow ? `${WG}` : '1';
  kernel.stages.forEach((st, k) => {
    const t = st.fn === 'argmax' || st.fn === 'argmin' ? st.body.type : st.type;
    const pair = st.fn === 'argmax' || st.fn === 'argmin';
    s.line(`var acc${k}: ${t} = ${reduceInit(wgslDialect, st.fn, t)};`);
    if (pair) s.line(`var idx${k}: i32 = ${kernel.cols};`);
    s.line(`for (var col = ${colStart}; col < ${kernel.cols}; col += ${colStep}) {`);
    const inner = new Scope(r, s, '    ');
    const v = inner.ref(st.body);
    if (pair) inner.line(`if (${beats(st.fn as 'argmax', v, 'col', `acc${k}`, `idx${k}`)}) { acc${k} = ${v}; idx${k} = col; }`);
    else inner.line(`acc${k} = ${reduceCombine(wgslDialect, st.fn, `acc${k}`, v, t)};`);
    s.lines.push(...inner.lines, '  }');
    if (!pair) r.need(reduceCombine(wgslDialect, st.fn, 'a', 'b', t));
    if (perRow && shuffles(t)) {
      // lanes combine by xor shuffles; each subgroup's lane 0 posts its result, every subgroup then combines
      // the posted results the same way, so all threads end with the row's value (no broadcast needed)
      r.usesSubgroups = true;
      extra.push(`var<workgroup> red${k}: array<${t}, ${WG}>;`);
      if (pair) extra.push(`var<workgroup> ridx${k}: array<i32, ${WG}>;`);
      const lanes = () => {
        s.line('for (var o = sgs / 2u; o > 0u; o >>= 1u) {');
        if (pair) {
          s.line(`  let ov = subgroupShuffleXor(acc${k}, o); let oi = subgroupShuffleXor(idx${k}, o);`);
          s.line(`  let win = ${beats(st.fn as 'argmax', 'ov', 'oi', `acc${k}`, `idx${k}`)};`);
          s.line(`  acc${k} = select(acc${k}, ov, win); idx${k} = select(idx${k}, oi, win);`);
        } else s.line(`  acc${k} = ${reduceCombine(wgslDialect, st.fn, `acc${k}`, `subgroupShuffleXor(acc${k}, o)`, t)};`);
        s.line('}');
      };
      lanes();
      s.line(`if (sl == 0u) { red${k}[l / sgs] = acc${k};${pair ? ` ridx${k}[l / sgs] = idx${k};` : ''} }`);
      s.line('workgroupBarrier();');
      s.line(`acc${k} = ${reduceInit(wgslDialect, st.fn, t)};`);
      if (pair) s.line(`idx${k} = ${kernel.cols};`);
      s.line(`for (var q = 0u; q < ${WG}u / sgs; q += sgs) {`);
      s.line(`  if (q + sl < ${WG}u / sgs) {`);
      if (pair) {
        s.line(`    let ov = red${k}[q + sl]; let oi = ridx${k}[q + sl];`);
        s.line(`    if (${beats(st.fn as 'argmax', 'ov', 'oi', `acc${k}`, `idx${k}`)}) { acc${k} = ov; idx${k} = oi; }`);
      } else s.line(`    acc${k} = ${reduceCombine(wgslDialect, st.fn, `acc${k}`, `red${k}[q + sl]`, t)};`);
      s.line('  }');
      s.line('}');
      lanes();
      s.line(`let s${k} = ${pair ? `idx${k}` : `acc${k}`};`);
    } else if (perRow) {
      extra.push(`var<workgroup> red${k}: array<${t}, ${WG}>;`);
      if (pair) extra.push(`var<workgroup> ridx${k}: array<i32, ${WG}>;`);
      s.line(`red${k}[l] = acc${k};`);
      if (pair) s.line(`ridx${k}[l] = idx${k};`);
      s.line('workgroupBarrier();');
      s.line(`for (var h = ${WG / 2}u; h > 0u; h >>= 1u) {`);
      if (pair) {
        s.line(`  if (l < h && (${beats(st.fn as 'argmax', `red${k}[l + h]`, `ridx${k}[l + h]`, `red${k}[l]`, `ridx${k}[l]`)})) { red${k}[l] = red${k}[l + h]; ridx${k}[l] = ridx${k}[l + h]; }`);
      } else s.line(`  if (l < h) { red${k}[l] = ${reduceCombine(wgslDialect, st.fn, `red${k}[l]`, `red${k}[l + h]`, t)}; }`);
      s.line('  workgroupBarrier();');
      s.line('}');
      s.line(`let s${k} = ${pair ? `ridx${k}[0]` : `red${k}[0]`};`);
      s.line('workgroupBarrier();');
    } else s.line(`let s${k} = ${pair ? `idx${k}` : `acc${k}`};`);
  });
  if (kernel.rowStores.length) {
    const rs = new Scope(r, s, '    ');
    kernel.rowStores.forEach((st) => rs.store(st));
    s.lines.push(perRow ? '  if (l == 0u) {' : '  {', ...rs.lines, '  }');
  }
  if (kernel.colStores.length) {
    const cs = new Scope(r, s, '    ');
    kernel.colStores.forEach((st) => cs.store(st));
    s.lines.push(`  for (var col = ${colStart}; col < ${kernel.cols}; col += ${colStep}) {`, ...cs.lines, '  }');
  }
  body.push(
    `@compute @workgroup_size(${WG})`,
    `fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(global_invocation_id) g: vec3<u32>, @builtin(num_workgroups) n: vec3<u32>, @builtin(local_invocation_index) l: u32${r.usesSubgroups ? ', @builtin(subgroup_invocation_id) sl: u32, @builtin(subgroup_size) sgs: u32' : ''}) {`,
    ...s.lines,
    '}',
  );
  return { body, extra };
}

// ---------------------------------------------------------------------------------------------------- matmul

function renderMatmul(r: Renderer, kernel: Extract<Kernel, { kind: 'matmul' }>): Skeleton {
  const caps = r.caps;
  const body: string[] = [];
  const k = kernel;
  const t = k.accType;
  const extra = [
    ...operandLoader(r, 'load_a', k.a, 'batch: i32, i: i32, k: i32', t),
    ...operandLoader(r, 'load_b', k.b, 'batch: i32, k: i32, j: i32', t),
    ...outputStorer(r, k),
  ];
  const s = new Scope(r);
  if (caps.software) {
    // each thread accumulates RM×RN outputs straight from the operands (no workgroup memory, no barriers): its
    // rows are adjacent (neighbouring invocations share them: A's loads are uniform across SIMD lanes on a CPU)
    // and its columns TW apart (so lanes read B and write C at neighbouring addresses); 16×8 was the fastest of
    // 4×4 to 32×8 on lavapipe (bench:webgpu, 1024³: 9.8 GFLOP/s, from 4.9 at 4×4 adjacent)
    const [RM, RN] = CPU_REG;
    s.line(`let batch = i32(w.z);`);
    s.line(`let i0 = (i32(w.y) * ${TW} + i32(lid.y)) * ${RM};`);
    s.line(`let j0 = i32(w.x) * ${TW * RN} + i32(lid.x);`);
    s.line(`if (i0 >= ${k.m} || j0 >= ${k.n}) { return; }`);
    s.line(`var acc: array<array<${t}, ${RN}>, ${RM}>;`);
    // rows and columns past the edge are clamped to the last one (their results are not stored)
    s.line(`var ii: array<i32, ${RM}>; var jj: array<i32, ${RN}>;`);
    s.line(`for (var r = 0; r < ${RM}; r++) { ii[r] = min(i0 + r, ${k.m - 1}); }`);
    s.line(`for (var c = 0; c < ${RN}; c++) { jj[c] = min(j0 + c * ${TW}, ${k.n - 1}); }`);
    s.line(`for (var k = 0; k < ${k.k}; k++) {`);
    s.line(`  var ar: array<${t}, ${RM}>; var br: array<${t}, ${RN}>;`);
    s.line(`  for (var r = 0; r < ${RM}; r++) { ar[r] = load_a(batch, ii[r], k); }`);
    s.line(`  for (var c = 0; c < ${RN}; c++) { br[c] = load_b(batch, k, jj[c]); }`);
    s.line(`  for (var r = 0; r < ${RM}; r++) { for (var c = 0; c < ${RN}; c++) { acc[r][c] += ar[r] * br[c]; } }`);
    s.line(`}`);
    s.line(`for (var r = 0; r < ${RM}; r++) { for (var c = 0; c < ${RN}; c++) { store_c(batch, i0 + r, j0 + c * ${TW}, acc[r][c]); } }`);
  } else extra.push(...tiledMatmul(s, k, matmulTile(caps)));
  body.push(
    `@compute @workgroup_size(${TW}, ${TW})`,
    `fn main(@builtin(workgroup_id) w: vec3<u32>, @builtin(local_invocation_index) l: u32, @builtin(local_invocation_id) lid: vec3<u32>) {`,
    ...s.lines,
    '}',
  );
  return { body, extra };
}
