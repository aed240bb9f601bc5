// NVRTC through koffi: CUDA C source to PTX at run time. The library is searched in this order:
// $NVRTC_LIBRARY, $CUDA_PATH and $CUDA_HOME, the toolkit folders (/usr/local/cuda*/targets/x86_64-linux/lib,
// /usr/local/cuda*/lib64), then the loader's names libnvrtc.so, .so.13, .so.12, .so.11.2. Compile logs are
// part of the error. PTX is cached in memory and on disk, keyed by sha256 of (source, architecture, options,
// NVRTC version), so a second process start compiles nothing.

import { koffi, nodeModule } from './ffi.ts';

type Fs = typeof import('node:fs');
type Path = typeof import('node:path');

export class NvrtcError extends Error {}

interface NvrtcApi {
  path: string;
  version: [number, number];
  /** Virtual architectures this NVRTC can target (compute_XX numbers), ascending. */
  archs: number[];
  create(out: unknown[], src: string, name: string, n: number, headers: null, includes: null): number;
  compile(prog: unknown, n: number, opts: string[]): number;
  logSize(prog: unknown, out: number[]): number;
  log(prog: unknown, out: Uint8Array): number;
  ptxSize(prog: unknown, out: number[]): number;
  ptx(prog: unknown, out: Uint8Array): number;
  destroy(prog: unknown[]): number;
  errorString(code: number): string;
}

const LOADER_NAMES = ['libnvrtc.so', 'libnvrtc.so.13', 'libnvrtc.so.12', 'libnvrtc.so.11.2'];

/** Candidate library paths, in search order (files that exist, then bare loader names). */
export function nvrtcCandidates(env: Record<string, string | undefined> = process.env): string[] {
  const fs = nodeModule<Fs>('node:fs');
  const path = nodeModule<Path>('node:path');
  const out: string[] = [];
  if (env.NVRTC_LIBRARY) out.push(env.NVRTC_LIBRARY);
  // libnvrtc.so, else the highest versioned libnvrtc.so.X in a folder (never libnvrtc-builtins, never stubs)
  const inFolder = (dir: string) => {
    let names: string[];
    try {
      names = fs.readdirSync(dir);
    } catch {
      return;
    }
    const libs = names.filter((n) => /^libnvrtc\.so(\.\d+)*$/.test(n));
    if (!libs.length) return;
    const ver = (n: string) => n.slice('libnvrtc.so'.length).split('.').filter(Boolean).map(Number);
    libs.sort((a, b) => {
      const [x, y] = [ver(a), ver(b)];
      for (let i = 0; i < Math.max(x.length, y.length); i++) if ((x[i] ?? -1) !== (y[i] ?? -1)) return (y[i] ?? -1) - (x[i] ?? -1);
      return 0;
    });
    out.push(path.join(dir, libs.includes('libnvrtc.so') ? 'libnvrtc.so' : libs[0]!));
  };
  for (const root of [env.CUDA_PATH, env.CUDA_HOME]) {
    if (root) for (const sub of ['targets/x86_64-linux/lib', 'lib64', 'lib']) inFolder(path.join(root, sub));
  }
  let toolkits: string[] = [];
  try {
    toolkits = fs.readdirSync('/usr/local').filter((n) => /^cuda(-[\d.]+)?$/.test(n)).sort().reverse().map((n) => `/usr/local/${n}`);
  } catch {
    // no /usr/local
  }
  for (const sub of ['targets/x86_64-linux/lib', 'lib64']) for (const t of toolkits) inFolder(path.join(t, sub));
  out.push(...LOADER_NAMES);
  return [...new Set(out)];
}

let api: NvrtcApi | undefined;
let loadError: Error | undefined;

/** Loads NVRTC once; throws (the same error each time) when no candidate loads. */
export function nvrtc(): NvrtcApi {
  if (api) return api;
  if (loadError) throw loadError;
  const k = koffi();
  const tried: string[] = [];
  for (const p of nvrtcCandidates()) {
    let lib;
    try {
      lib = k.load(p);
    } catch (e) {
      tried.push(`${p} (${(e as Error).message.split('\n')[0]})`);
      continue;
    }
    k.pointer('twNvrtcProgram', k.opaque()); // a named type, used in the signatures below
    const version = lib.func('int nvrtcVersion(_Out_ int *major, _Out_ int *minor)');
    const maj = [0], min = [0];
    version(maj, min);
    let archs: number[] = [];
    try {
      const num = lib.func('int nvrtcGetNumSupportedArchs(_Out_ int *n)');
      const get = lib.func('int nvrtcGetSupportedArchs(_Out_ int *archs)');
      const n = [0];
      if (num(n) === 0) {
        const a = new Int32Array(n[0]!);
        if (get(a) === 0) archs = [...a].sort((x, y) => x - y);
      }
    } catch {
      // NVRTC before 11.2 cannot list its architectures
    }
    api = {
      path: p,
      version: [maj[0]!, min[0]!],
      archs,
      create: lib.func('int nvrtcCreateProgram(_Out_ twNvrtcProgram *prog, const char *src, const char *name, int numHeaders, const char **headers, const char **includeNames)'),
      compile: lib.func('int nvrtcCompileProgram(twNvrtcProgram prog, int numOptions, const char **options)'),
      logSize: lib.func('int nvrtcGetProgramLogSize(twNvrtcProgram prog, _Out_ size_t *size)'),
      log: lib.func('int nvrtcGetProgramLog(twNvrtcProgram prog, _Out_ uint8_t *log)'),
      ptxSize: lib.func('int nvrtcGetPTXSize(twNvrtcProgram prog, _Out_ size_t *size)'),
      ptx: lib.func('int nvrtcGetPTX(twNvrtcProgram prog, _Out_ uint8_t *ptx)'),
      destroy: lib.func('int nvrtcDestroyProgram(_Inout_ twNvrtcProgram *prog)'),
      errorString: lib.func('const char *nvrtcGetErrorString(int result)'),
    };
    return api;
  }
  loadError = new NvrtcError(`NVRTC (libnvrtc) not found; tried ${tried.join(', ')}. Set NVRTC_LIBRARY to its path, or install it (Debian: libnvrtc11.2 from non-free; see scripts/setup-system.sh)`);
  throw loadError;
}

/** The NVRTC target for a device of compute capability `arch`: the highest virtual architecture NVRTC knows that does not exceed it. */
export function targetArch(arch: number): number {
  const { archs } = nvrtc();
  if (!archs.length) return arch;
  const ok = archs.filter((a) => a <= arch);
  if (!ok.length) throw new NvrtcError(`NVRTC ${nvrtc().version.join('.')} cannot target compute capability ${arch / 10} (it supports ${archs.map((a) => a / 10).join(', ')})`);
  return ok[ok.length - 1]!;
}

/** Where PTX is kept: $TWINFLOW_PTX_CACHE (or 'off'), else $XDG_CACHE_HOME/twinflow/ptx, else ~/.cache/twinflow/ptx. */
export function ptxCacheDir(): string | undefined {
  const env = process.env;
  if (env.TWINFLOW_PTX_CACHE) return env.TWINFLOW_PTX_CACHE === 'off' ? undefined : env.TWINFLOW_PTX_CACHE;
  const path = nodeModule<Path>('node:path');
  const os = nodeModule<typeof import('node:os')>('node:os');
  const base = env.XDG_CACHE_HOME || path.join(os.homedir(), '.cache');
  return path.join(base, 'twinflow', 'ptx');
}

export interface PtxResult {
  ptx: string;
  /** Where it came from: a fresh compile, the in-memory cache or the disk cache. */
  source: 'compiled' | 'memory' | 'disk';
  /** The compute_XX number compiled for. */
  arch: number;
}

const memory = new Map<string, string>();
/** Counts of compiles and cache hits (tests check that a second start compiles nothing). */
export const nvrtcStats = { compiled: 0, memory: 0, disk: 0 };

/** Forgets the in-memory cache (as a new process would). */
export function clearPtxMemoryCache(): void {
  memory.clear();
}

const OPTIONS = ['-std=c++17'];

/** NVRTC's options for compute capability `arch`, and the architecture they target. */
function optionsFor(arch: number): { opts: string[]; target: number } {
  const target = targetArch(arch);
  return { opts: [`--gpu-architecture=compute_${target}`, ...OPTIONS], target };
}

function cacheKey(nv: NvrtcApi, source: string, opts: string[]): string {
  const crypto = nodeModule<typeof import('node:crypto')>('node:crypto');
  return crypto.createHash('sha256').update(`${source}\0${opts.join(' ')}\0nvrtc ${nv.version.join('.')}`).digest('hex');
}

/** PTX cached in memory or on disk under `key`. */
function cached(key: string): { ptx: string; source: 'memory' | 'disk' } | undefined {
  const have = memory.get(key);
  if (have !== undefined) {
    nvrtcStats.memory++;
    return { ptx: have, source: 'memory' };
  }
  const dir = ptxCacheDir();
  if (!dir) return undefined;
  try {
    const ptx = nodeModule<Fs>('node:fs').readFileSync(nodeModule<Path>('node:path').join(dir, `${key}.ptx`), 'utf8');
    memory.set(key, ptx);
    nvrtcStats.disk++;
    return { ptx, source: 'disk' };
  } catch {
    return undefined; // not cached yet
  }
}

function store(key: string, ptx: string): void {
  nvrtcStats.compiled++;
  memory.set(key, ptx);
  const dir = ptxCacheDir();
  if (!dir) return;
  const fs = nodeModule<Fs>('node:fs');
  const file = nodeModule<Path>('node:path').join(dir, `${key}.ptx`);
  try {
    // write-then-rename: a concurrent reader sees the whole file or none
    fs.mkdirSync(dir, { recursive: true });
    const tmp = `${file}.${process.pid}.tmp`;
    fs.writeFileSync(tmp, ptx);
    fs.renameSync(tmp, file);
  } catch {
    // an unwritable cache only costs a recompile next time
  }
}

/** Compiles CUDA C to PTX for compute capability `arch` (e.g. 90), through the caches. */
export function compileToPtx(source: string, arch: number, name = 'twinflow.cu'): PtxResult {
  return compileAllToPtx([{ source, name }], arch)[0]!;
}

/**
 * Compiles sources to PTX for compute capability `arch` through the caches; what is not cached is compiled in
 * parallel, by worker threads (one per available core) when there is more than one source to compile.
 */
export function compileAllToPtx(items: readonly { source: string; name: string }[], arch: number): PtxResult[] {
  const nv = nvrtc();
  const { opts, target } = optionsFor(arch);
  const keys = items.map((it) => cacheKey(nv, it.source, opts));
  const out: (PtxResult | undefined)[] = keys.map((k) => {
    const c = cached(k);
    return c && { ...c, arch: target };
  });
  const misses = out.flatMap((r, i) => (r ? [] : [i]));
  const threads = Math.min(misses.length, nodeModule<typeof import('node:os')>('node:os').availableParallelism());
  const fresh = threads > 1 ? compileInWorkers(misses.map((i) => items[i]!), opts, threads) : misses.map((i) => compileNow(nv, items[i]!.source, opts, items[i]!.name));
  misses.forEach((i, k) => {
    store(keys[i]!, fresh[k]!);
    out[i] = { ptx: fresh[k]!, source: 'compiled', arch: target };
  });
  return out as PtxResult[];
}

/** NVRTC without the caches, for the worker threads (nvrtc-worker.mjs). */
export function compileUncached(source: string, opts: string[], name: string): string {
  return compileNow(nvrtc(), source, opts, name);
}

/**
 * Compiles sources on `threads` worker threads, synchronously: each worker takes the next source by an atomic
 * counter (longest first, so that the long ones do not end up last on one thread) and posts its PTX (or error)
 * on its own port; this thread sleeps on a second counter (Atomics.wait) and reads the ports with
 * receiveMessageOnPort, so callers stay synchronous.
 */
function compileInWorkers(sources: { source: string; name: string }[], opts: string[], threads: number): string[] {
  const order = sources.map((_, i) => i).sort((a, b) => sources[b]!.source.length - sources[a]!.source.length);
  const items = order.map((i) => sources[i]!);
  const wt = nodeModule<typeof import('node:worker_threads')>('node:worker_threads');
  const counters = new Int32Array(new SharedArrayBuffer(8)); // [next source, sources done]
  const ports = Array.from({ length: threads }, () => {
    const { port1, port2 } = new wt.MessageChannel();
    const w = new wt.Worker(new URL('./nvrtc-worker.mjs', import.meta.url), { workerData: { items, opts, counters, port: port2 }, transferList: [port2] });
    w.unref();
    return port1;
  });
  const ptx: string[] = [];
  let got = 0;
  const errors: string[] = [];
  while (got < items.length) {
    const seen = Atomics.load(counters, 1);
    for (const port of ports) {
      for (let m = wt.receiveMessageOnPort(port); m; m = wt.receiveMessageOnPort(port)) {
        const r = m.message as { i: number; ptx?: string; error?: string };
        if (r.error !== undefined) errors.push(r.error);
        else ptx[order[r.i]!] = r.ptx!;
        got++;
      }
    }
    if (got < items.length && Atomics.wait(counters, 1, seen, 600_000) === 'timed-out') throw new NvrtcError('cuda: NVRTC worker threads made no progress in 10 minutes');
  }
  for (const port of ports) port.close();
  if (errors.length) throw new NvrtcError(errors[0]!);
  return ptx;
}

function compileNow(nv: NvrtcApi, source: string, opts: string[], name: string): string {
  const prog: unknown[] = [null];
  check(nv, nv.create(prog, source, name, 0, null, null), 'nvrtcCreateProgram');
  try {
    const rc = nv.compile(prog[0], opts.length, opts);
    if (rc !== 0) {
      const n = [0];
      nv.logSize(prog[0], n);
      const buf = new Uint8Array(Math.max(1, n[0]!));
      nv.log(prog[0], buf);
      const log = new TextDecoder().decode(buf).replace(/\0+$/, '').trim();
      const numbered = source.split('\n').map((l, i) => `${String(i + 1).padStart(4)}  ${l}`).join('\n');
      throw new NvrtcError(`cuda: NVRTC ${nv.version.join('.')} failed to compile ${name} (${nv.errorString(rc)}, options ${opts.join(' ')}):\n${log}\n--- source ---\n${numbered}`);
    }
    const n = [0];
    check(nv, nv.ptxSize(prog[0], n), 'nvrtcGetPTXSize');
    const buf = new Uint8Array(n[0]!);
    check(nv, nv.ptx(prog[0], buf), 'nvrtcGetPTX');
    return new TextDecoder().decode(buf).replace(/\0+$/, '');
  } finally {
    nv.destroy(prog);
  }
}

function check(nv: NvrtcApi, rc: number, what: string): void {
  if (rc !== 0) throw new NvrtcError(`cuda: ${what} failed: ${nv.errorString(rc)} (${rc})`);
}
