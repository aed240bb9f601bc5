// What the compiler needs to know of a kernel backend's storage, and the conversions between host arrays and
// that storage: f32/i32/u32 as themselves, f16/bf16 as their 16-bit patterns, bool as one byte or as a u32
// (targets without byte storage). A backend describes itself with a Target; the pipeline (pipeline.ts) plans
// for it, and its runtime moves bytes with toStorage/fromStorage.

import type { DType, HostArray } from '../dsl/dtype.ts';
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits } from '../dsl/float-formats.ts';
import type { ScalarType } from './kernel-ir/expr.ts';

export interface Target {
  /** The backend's name, which starts its error messages. */
  name: string;
  /** Bytes a stored bool takes. */
  boolBytes: 1 | 4;
  /** Most buffers one kernel may bind (WebGPU: maxStorageBuffersPerShaderStage; CUDA: its parameter space). */
  maxArgs?: number;
  /** The dtypes it cannot store, each with the reason and what to do instead. */
  unsupported: Partial<Record<DType, string>>;
  /** The backend's error for a message (so callers can tell which backend refused). */
  error(message: string): Error;
}

/** Bytes a target stores per element of a type. */
export const storageBytes = (target: Pick<Target, 'boolBytes'>, t: ScalarType | DType): number =>
  t === 'bool' ? target.boolBytes : t === 'f16' || t === 'bf16' ? 2 : 4;

/** Refuses a dtype the target cannot store, with its reason. */
export function checkDType(target: Target, d: DType): void {
  const why = target.unsupported[d];
  if (why) throw target.error(`${target.name}: ${why}`);
}

/** The stored bytes of host data of a dtype. */
export function toStorage(target: Pick<Target, 'boolBytes'>, data: HostArray, dtype: DType): Uint8Array {
  const bytes = (a: ArrayBufferView) => new Uint8Array(a.buffer, a.byteOffset, a.byteLength);
  switch (dtype) {
    case 'bool': return target.boolBytes === 1 ? Uint8Array.from(data, (v) => (v ? 1 : 0)) : bytes(Uint32Array.from(data, (v) => (v ? 1 : 0)));
    case 'f16': return bytes(Uint16Array.from(data, (v) => f16Bits(v)));
    case 'bf16': return bytes(Uint16Array.from(data, (v) => bf16Bits(v)));
    case 'i32': return bytes(data instanceof Int32Array ? data : Int32Array.from(data));
    case 'u32': return bytes(data instanceof Uint32Array ? data : Uint32Array.from(data));
    default: return bytes(data instanceof Float32Array ? data : Float32Array.from(data));
  }
}

/** Host data of `n` stored elements of a dtype. */
export function fromStorage(target: Pick<Target, 'boolBytes'>, raw: ArrayBuffer, n: number, dtype: DType): HostArray {
  switch (dtype) {
    case 'bool': return target.boolBytes === 1 ? new Uint8Array(raw, 0, n) : Uint8Array.from(new Uint32Array(raw, 0, n));
    case 'f16': return Float32Array.from(new Uint16Array(raw, 0, n), f16FromBits);
    case 'bf16': return Float32Array.from(new Uint16Array(raw, 0, n), bf16FromBits);
    case 'i32': return new Int32Array(raw, 0, n);
    case 'u32': return new Uint32Array(raw, 0, n);
    default: return new Float32Array(raw, 0, n);
  }
}
