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

/** Compiles CUDA C to PTX for compute capability `arch` (e.g. 90), through the caches. */
export function compileToPtx(source: string, arch: number, name = 'twinflow.cu'): PtxResult {
  const nv = nvrtc();
  const target = targetArch(arch);
  const opts = [`--gpu-architecture=compute_${target}`, ...OPTIONS];
  const crypto = nodeModule<typeof import('node:crypto')>('node:crypto');
  const key = crypto.createHash('sha256').update(`${source}\0${opts.join(' ')}\0nvrtc ${nv.version.join('.')}`).digest('hex');
  const have = memory.get(key);
  if (have !== undefined) {
    nvrtcStats.memory++;
    return { ptx: have, source: 'memory', arch: target };
  }
  const fs = nodeModule<Fs>('node:fs');
  const path = nodeModule<Path>('node:path');
  const dir = ptxCacheDir();
  const file = dir ? path.join(dir, `${key}.ptx`) : undefined;
  if (file) {
    try {
      const ptx = fs.readFileSync(file, 'utf8');
      memory.set(key, ptx);
      nvrtcStats.disk++;
      return { ptx, source: 'disk', arch: target };
    } catch {
      // not cached yet
    }
  }
  const ptx = compileNow(nv, source, opts, name);
  nvrtcStats.compiled++;
  memory.set(key, ptx);
  if (file && dir) {
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
  return { ptx, source: 'compiled', arch: target };
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
