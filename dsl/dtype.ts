// Element types. The dtype is part of a tensor's TypeScript type, so `log` on an integer tensor is a type
// error where the dtype is known statically, and a clear runtime error where it is not.

export type FloatDType = 'f64' | 'f32' | 'f16' | 'bf16';
export type IntDType = 'i32' | 'u32';
export type DType = FloatDType | IntDType | 'bool';
/** Dtypes that support arithmetic (everything but bool). */
export type NumericDType = FloatDType | IntDType;

export const DTYPES: readonly DType[] = ['f64', 'f32', 'f16', 'bf16', 'i32', 'u32', 'bool'];

/** The typed array that holds a dtype's values on the host. f16 and bf16 are widened to Float32Array. */
export type ArrayFor<D extends DType> = D extends 'f64'
  ? Float64Array
  : D extends 'f32' | 'f16' | 'bf16'
    ? Float32Array
    : D extends 'i32'
      ? Int32Array
      : D extends 'u32'
        ? Uint32Array
        : Uint8Array;

export type HostArray = Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array;

export function isDType(x: unknown): x is DType {
  return typeof x === 'string' && (DTYPES as readonly string[]).includes(x);
}
export function isFloat(d: DType): d is FloatDType {
  return d === 'f64' || d === 'f32' || d === 'f16' || d === 'bf16';
}
export function isInt(d: DType): d is IntDType {
  return d === 'i32' || d === 'u32';
}

export function hostArray<D extends DType>(dtype: D, size: number): ArrayFor<D> {
  switch (dtype) {
    case 'f64':
      return new Float64Array(size) as ArrayFor<D>;
    case 'f32':
    case 'f16':
    case 'bf16':
      return new Float32Array(size) as ArrayFor<D>;
    case 'i32':
      return new Int32Array(size) as ArrayFor<D>;
    case 'u32':
      return new Uint32Array(size) as ArrayFor<D>;
    default:
      return new Uint8Array(size) as ArrayFor<D>;
  }
}

/** Bytes per element as stored on a device (bool as one byte on the host; backends may widen it). */
export function byteSize(d: DType): number {
  return d === 'f64' ? 8 : d === 'f16' || d === 'bf16' ? 2 : d === 'bool' ? 1 : 4;
}
