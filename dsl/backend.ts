// Backends register themselves here; the DSL talks to them only through this interface, so nothing in
// dsl/ or compiler/ imports a backend. `auto` tries cuda, then webgpu, then cpu and remembers why.

import type { Target } from '../compiler/target.ts';
import type { HostArray } from './dtype.ts';
import { TwinflowError } from './errors.ts';
import type { Graph } from './graph.ts';
import type { AVal } from './shape.ts';

export type BackendName = 'cpu' | 'webgpu' | 'cuda';
/** A backend-owned device buffer (a typed array on cpu, a GPUBuffer on webgpu, a device pointer on cuda). */
export type DeviceBuffer = unknown;

export interface Executable {
  /** Runs the compiled graph: one buffer per graph input, one per graph output. */
  run(inputs: DeviceBuffer[]): DeviceBuffer[];
}

export interface Backend {
  readonly name: BackendName;
  /** Human-readable device description, e.g. "cpu (JavaScript, float64 oracle)". */
  readonly device: string;
  /** What its plans are made for (storage, buffer limit): explain plans with it. Absent on cpu, which runs graphs directly. */
  readonly target?: Target;
  upload(data: HostArray, aval: AVal): DeviceBuffer;
  read(buffer: DeviceBuffer, aval: AVal): Promise<HostArray>;
  /** Synchronous read where the backend can (cpu); undefined elsewhere. */
  readSync?(buffer: DeviceBuffer, aval: AVal): HostArray;
  /**
   * `donated`: graph inputs whose buffers the executable may reuse (their tensors are invalidated);
   * `replacedBy`: donated input → the graph output that the caller passes back in its place next time.
   */
  compile(graph: Graph, opts?: { donated?: ReadonlySet<number>; replacedBy?: ReadonlyMap<number, number> }): Executable;
  /** Called for every concrete tensor made from one of this backend's buffers (to free it when collected). */
  adopt?(owner: object, buffer: DeviceBuffer): void;
  /** A tensor gave its buffer away (donation): forget the adopt() registration. */
  disown?(owner: object): void;
}

export interface BackendFactory {
  name: BackendName;
  /** Resolves to a ready backend, or rejects with the reason it cannot run on this machine (as BackendUnavailableError). */
  create(): Promise<Backend>;
}

export class BackendUnavailableError extends TwinflowError {}

const factories = new Map<BackendName, BackendFactory>();
const ready = new Map<BackendName, Backend>();
let current: Backend | undefined;
let choice = { name: 'cpu' as BackendName, reason: 'default (setBackend was not called)' };

export function registerBackend(factory: BackendFactory): void {
  factories.set(factory.name, factory);
}

async function instantiate(name: BackendName): Promise<Backend> {
  const have = ready.get(name);
  if (have) return have;
  const factory = factories.get(name);
  if (!factory) throw new BackendUnavailableError(`backend '${name}' is not part of this build`);
  let b: Backend;
  try {
    b = await factory.create();
  } catch (e) {
    // whatever stops a backend from starting (no driver, no adapter, no library) makes it unavailable
    throw e instanceof BackendUnavailableError ? e : new BackendUnavailableError(e instanceof Error ? e.message : String(e));
  }
  ready.set(name, b);
  return b;
}

export type BackendRequest = BackendName | 'auto';
const AUTO_ORDER: BackendName[] = ['cuda', 'webgpu', 'cpu'];

/**
 * Selects the backend for new tensors and compiled functions. `auto` tries cuda, webgpu, cpu in that
 * order; the result says which was chosen and why the others were skipped.
 */
export async function setBackend(request: BackendRequest = 'auto'): Promise<{ name: BackendName; reason: string }> {
  if (request !== 'auto') {
    if (!AUTO_ORDER.includes(request)) {
      throw new BackendUnavailableError(`unknown backend '${String(request)}'; expected cpu, webgpu, cuda or auto`);
    }
    current = await instantiate(request);
    choice = { name: request, reason: 'requested' };
    return choice;
  }
  const skipped: string[] = [];
  for (const name of AUTO_ORDER) {
    try {
      current = await instantiate(name);
      choice = { name, reason: skipped.length ? `auto: ${skipped.join('; ')}` : 'auto: first choice' };
      return choice;
    } catch (e) {
      // The detail, not the message: each skipped backend's "(at file:line)" would only repeat the caller's line.
      skipped.push(`${name} unavailable (${e instanceof TwinflowError ? e.detail : e instanceof Error ? e.message : String(e)})`);
    }
  }
  throw new BackendUnavailableError(`no backend available: ${skipped.join('; ')}`);
}

/** The active backend (cpu until setBackend chooses another). */
export function backend(): Backend {
  if (!current) {
    const cpu = ready.get('cpu');
    if (!cpu) throw new BackendUnavailableError('the cpu backend is not registered; import twinflow through its index');
    current = cpu;
  }
  return current;
}

/** Which backend is active and why it was chosen. */
export function backendChoice(): { name: BackendName; reason: string; device: string } {
  return { ...choice, device: backend().device };
}

/** Lets a synchronous backend (cpu) become available without an await at import time. */
export function registerReadyBackend(b: Backend): void {
  ready.set(b.name, b);
  factories.set(b.name, { name: b.name, create: async () => b });
}
