// MSRoPE (Qwen-Image's multimodal scalable rotary embedding). The head dimension is split over three axes
// (frame, row, column); each axis of size d rotates d/2 adjacent pairs by position·theta^(-2j/d). Image
// rows and columns are centred on 0, and text token k sits on the diagonal after the image at
// max(H//2, W//2) + k on all three axes, so text and image positions never collide.

import * as tw from '../../index.ts';

export type RopeAxes = readonly [frame: number, row: number, col: number];
export type Position = [frame: number, row: number, col: number];

/** Row-major positions of an h×w token grid (frame 0); rows run over [-(h - h//2), h//2 - 1], columns likewise. */
export function imagePositions(h: number, w: number): Position[] {
  const r0 = -(h - Math.floor(h / 2)), c0 = -(w - Math.floor(w / 2));
  return Array.from({ length: h * w }, (_, i): Position => [0, r0 + Math.floor(i / w), c0 + (i % w)]);
}

/** Positions of `len` text tokens next to an h×w image grid. */
export function textPositions(h: number, w: number, len: number): Position[] {
  const start = Math.max(Math.floor(h / 2), Math.floor(w / 2));
  return Array.from({ length: len }, (_, k): Position => [start + k, start + k, start + k]);
}

/** Rotation angles [S, Dh/2] for the positions: the first axes[0]/2 pairs by frame, then row, then column. */
export function ropeAngles<D extends tw.FloatDType = 'f32'>(positions: readonly Position[], axes: RopeAxes, theta = 10000, dtype: D = 'f32' as D): tw.Tensor<D> {
  if (axes.some((d) => d % 2 !== 0)) throw new tw.ShapeError(`msrope: axis sizes (${axes}) must be even`);
  const freqs = axes.flatMap((d, a) => Array.from({ length: d / 2 }, (_, j) => ({ a, f: theta ** ((-2 * j) / d) })));
  const angles = Float64Array.from(positions.flatMap((pos) => freqs.map(({ a, f }) => pos[a]! * f)));
  return tw.tensor(angles, dtype, [positions.length, freqs.length]);
}

/**
 * Rotates q or k [B, S, H, Dh] by angles [S, Dh/2] (the same rotation for every head). Angles stay f32 and a
 * 16-bit x is rotated in f32 and cast back: positions times frequencies reach the hundreds of radians, where
 * bf16 would round an angle by more than a quarter turn.
 */
export function applyRope<D extends tw.FloatDType>(x: tw.Tensor<D>, angles: tw.Tensor<'f32' | 'f64'>): tw.Tensor<D> {
  const a = angles.reshape([angles.shape[0]!, 1, angles.shape[1]!]);
  if (x.dtype === angles.dtype) return tw.rope(x, a as tw.Tensor<D>);
  return tw.rope(x.cast(angles.dtype), a).cast(x.dtype);
}
