// The safetensors format (readable by PyTorch users): an 8-byte little-endian header length, a JSON header
// {name: {dtype, shape, data_offsets}, __metadata__?: {string: string}}, then the raw little-endian data,
// indexed entirely and without holes. Encoding also stores the data's SHA-256 in the metadata, so decoding
// tells a corrupt file from a good one instead of returning garbage weights.

import * as tw from '../../core.ts';
import { bf16Bits, bf16FromBits, f16Bits, f16FromBits } from '../../dsl/float-formats.ts';
import { sha256 } from './sha256.ts';

/** A tensor's values on the host (f16/bf16 widened to Float32Array, bool as 0/1 bytes, as `Tensor.data()` gives them). */
export interface HostTensor {
  dtype: tw.DType;
  shape: readonly number[];
  data: Float64Array | Float32Array | Int32Array | Uint32Array | Uint8Array;
}

/**
 * Unreadable or inconsistent checkpoint data; the message names the file and what is wrong. A plain Error:
 * the problem is in a file, not at a line of the caller's code (which TwinflowError would append).
 */
export class CheckpointError extends Error {
  override name = 'CheckpointError';
}

const CODES: Record<tw.DType, string> = { f64: 'F64', f32: 'F32', f16: 'F16', bf16: 'BF16', i32: 'I32', u32: 'U32', bool: 'BOOL' };
const DTYPES = new Map(Object.entries(CODES).map(([d, c]) => [c, d as tw.DType]));
const BYTES: Record<tw.DType, number> = { f64: 8, f32: 4, f16: 2, bf16: 2, i32: 4, u32: 4, bool: 1 };
const MAX_HEADER = 100_000_000; // the format's own limit
const CHECKSUM = 'sha256';

// Typed-array views below are in host byte order; the format is little-endian.
if (new Uint8Array(Uint16Array.of(1).buffer)[0] !== 1) throw new Error('safetensors: big-endian hosts are not supported');

function toBytes(t: HostTensor): Uint8Array {
  const { data } = t;
  if (t.dtype === 'f16' || t.dtype === 'bf16') {
    const bits = t.dtype === 'f16' ? f16Bits : bf16Bits;
    return new Uint8Array(Uint16Array.from(data, (v) => bits(v)).buffer);
  }
  return new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
}

function fromBytes(dtype: tw.DType, bytes: Uint8Array): HostTensor['data'] {
  const own = bytes.slice().buffer; // a copy: aligned, and detached from the file buffer
  switch (dtype) {
    case 'f64':
      return new Float64Array(own);
    case 'f32':
      return new Float32Array(own);
    case 'f16':
      return Float32Array.from(new Uint16Array(own), f16FromBits);
    case 'bf16':
      return Float32Array.from(new Uint16Array(own), bf16FromBits);
    case 'i32':
      return new Int32Array(own);
    case 'u32':
      return new Uint32Array(own);
    case 'bool':
      return new Uint8Array(own);
  }
}

/** The file bytes for named tensors (in the given order) and string metadata. */
export function encodeSafetensors(tensors: ReadonlyMap<string, HostTensor>, metadata: Record<string, string> = {}): Uint8Array {
  const header: Record<string, unknown> = {};
  const chunks: Uint8Array[] = [];
  let offset = 0;
  for (const [name, t] of tensors) {
    const bytes = toBytes(t);
    if (bytes.length !== t.shape.reduce((a, b) => a * b, 1) * BYTES[t.dtype]) {
      throw new CheckpointError(`safetensors: tensor ${name} has ${t.data.length} values for shape [${t.shape}]`);
    }
    header[name] = { dtype: CODES[t.dtype], shape: t.shape, data_offsets: [offset, offset + bytes.length] };
    chunks.push(bytes);
    offset += bytes.length;
  }
  const data = new Uint8Array(offset);
  chunks.reduce((at, c) => (data.set(c, at), at + c.length), 0);
  header.__metadata__ = { ...metadata, [CHECKSUM]: sha256(data) };
  // Pad the header with spaces to a multiple of 8 bytes, so that the data starts aligned.
  const text = JSON.stringify(header); // ASCII unless names are not: pad the encoded length
  const unpadded = new TextEncoder().encode(text).length;
  const json = new TextEncoder().encode(text + ' '.repeat((8 - (unpadded % 8)) % 8));
  const out = new Uint8Array(8 + json.length + data.length);
  new DataView(out.buffer).setBigUint64(0, BigInt(json.length), true);
  out.set(json, 8);
  out.set(data, 8 + json.length);
  return out;
}

const isDims = (s: unknown): s is number[] => Array.isArray(s) && s.every((d) => Number.isSafeInteger(d) && d >= 0);

/** Named tensors and metadata from file bytes; `file` names the source in error messages. */
export function decodeSafetensors(bytes: Uint8Array, file = 'safetensors data'): { tensors: Map<string, HostTensor>; metadata: Record<string, string> } {
  const fail: (what: string) => never = (what) => {
    throw new CheckpointError(`${file}: ${what}`);
  };
  if (bytes.length < 8) fail(`${bytes.length} bytes, shorter than the 8-byte header length: the file is truncated`);
  const n = Number(new DataView(bytes.buffer, bytes.byteOffset, 8).getBigUint64(0, true));
  if (n > MAX_HEADER) fail(`header length ${n} exceeds the format's ${MAX_HEADER}: not a safetensors file, or corrupt`);
  if (8 + n > bytes.length) fail(`header length ${n} runs past the end of the ${bytes.length}-byte file: the file is truncated`);
  let header: unknown;
  try {
    header = JSON.parse(new TextDecoder('utf-8', { fatal: true }).decode(bytes.subarray(8, 8 + n)));
  } catch (e) {
    fail(`the header is not valid JSON (${(e as Error).message}): the file is corrupt`);
  }
  if (typeof header !== 'object' || header === null || Array.isArray(header)) fail('the header is not a JSON object: the file is corrupt');
  const data = bytes.subarray(8 + n);
  const { __metadata__: metadata = {}, ...entries } = header as Record<string, unknown>;
  if (typeof metadata !== 'object' || metadata === null || Object.values(metadata).some((v) => typeof v !== 'string')) {
    fail('__metadata__ is not a map of strings: the file is corrupt');
  }
  const spans: [number, number, string][] = [];
  const infos: [string, tw.DType, number[], number, number][] = [];
  for (const [name, e] of Object.entries(entries)) {
    const { dtype: code, shape, data_offsets: off } = (e ?? {}) as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    const dtype = DTYPES.get(String(code));
    if (!dtype) fail(`tensor ${name} has dtype ${JSON.stringify(code)}; supported: ${[...DTYPES.keys()].join(', ')}`);
    if (!isDims(shape)) fail(`tensor ${name} has shape ${JSON.stringify(shape)}, not a list of sizes: the file is corrupt`);
    if (!isDims(off) || off.length !== 2 || off[0]! > off[1]!) fail(`tensor ${name} has data_offsets ${JSON.stringify(off)}: the file is corrupt`);
    const [begin, end] = off as [number, number];
    const want = (shape as number[]).reduce((a, b) => a * b, 1) * BYTES[dtype];
    if (end - begin !== want) fail(`tensor ${name} (${dtype}[${shape}]) needs ${want} bytes but its data_offsets span ${end - begin}: the file is corrupt`);
    spans.push([begin, end, name]);
    infos.push([name, dtype, shape as number[], begin, end]);
  }
  const needed = Math.max(0, ...spans.map(([, end]) => end));
  if (needed > data.length) fail(`the tensors need ${needed} bytes of data but the file holds ${data.length}: the file is truncated`);
  spans.sort((a, b) => a[0] - b[0]);
  let at = 0;
  for (const [begin, end, name] of spans) {
    if (begin !== at) fail(`tensor ${name} starts at byte ${begin}, expected ${at} (${begin < at ? 'overlap' : 'hole'}): the file is corrupt`);
    at = end;
  }
  if (at !== data.length) fail(`${data.length - at} bytes after the last tensor: the file is corrupt`);
  const sum = (metadata as Record<string, string>)[CHECKSUM];
  if (sum !== undefined && sum !== sha256(data)) fail('the data does not match its SHA-256 checksum: the file is corrupt');
  const tensors = new Map<string, HostTensor>();
  for (const [name, dtype, shape, begin, end] of infos) {
    const values = fromBytes(dtype, data.subarray(begin, end));
    if (dtype === 'bool' && values.some((v) => v > 1)) fail(`BOOL tensor ${name} holds bytes other than 0 and 1: the file is corrupt`);
    tensors.set(name, { dtype, shape, data: values });
  }
  return { tensors, metadata: metadata as Record<string, string> };
}
