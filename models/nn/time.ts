// Time conditioning: sinusoidal features of 1000·t (cos half first, frequencies exp(-ln(10000)·i/half)),
// an embedder Linear -> SiLU -> Linear, and TwinFlow's pair emb(t) + emb₂(r)·(t − r), which reduces to
// emb(t) at r = t so that a plain flow model is the special case r = t.

import * as tw from '../../core.ts';
import { type LinearParams, linear, linearSpec } from './linear.ts';
import type { SpecTree } from './params.ts';

/**
 * t [B] (signed; negative marks the fake trajectory) -> [B, channels]. A 16-bit t is expanded in f32 and the
 * features cast back: 1000·t in bf16 would be off by up to 2, a large error in the fast frequencies' phase.
 */
export function timestepFeatures<D extends tw.FloatDType>(t: tw.Tensor<D>, channels = 256, scale = 1000): tw.Tensor<D> {
  const half = channels / 2;
  const freqs = Float64Array.from({ length: half }, (_, i) => Math.exp((-Math.log(10000) * i) / half));
  const wide: tw.Tensor<tw.FloatDType> = t.dtype === 'f16' || t.dtype === 'bf16' ? t.cast('f32') : t;
  const args = wide.mul(scale).reshape([-1, 1]).mul(tw.tensor(freqs, wide.dtype, [1, half]));
  return tw.concat([tw.cos(args), tw.sin(args)], -1).cast(t.dtype);
}

export interface TimeEmbeddingConfig { channels: number; dim: number }
export interface TimeEmbedderParams<D extends tw.FloatDType = 'f32'> { l1: LinearParams<D>; l2: LinearParams<D> }
export interface TwinTimeParams<D extends tw.FloatDType = 'f32'> { t: TimeEmbedderParams<D>; r: TimeEmbedderParams<D> }

export function timeEmbedderSpec(cfg: TimeEmbeddingConfig): SpecTree {
  return { l1: linearSpec({ inDim: cfg.channels, outDim: cfg.dim }), l2: linearSpec({ inDim: cfg.dim, outDim: cfg.dim }) };
}

/**
 * t [B] -> [B, dim] in the weights' dtype. t may be wider than the weights (f32 times with bf16 weights under
 * mixed precision): the features are computed in t's precision and cast at the first matmul.
 */
export function timeEmbedder<D extends tw.FloatDType>(p: TimeEmbedderParams<D>, t: tw.Tensor<tw.FloatDType>, cfg: TimeEmbeddingConfig): tw.Tensor<D> {
  return linear(p.l2, tw.silu(linear(p.l1, timestepFeatures(t, cfg.channels).cast(p.l1.w.dtype))));
}

export function twinTimeSpec(cfg: TimeEmbeddingConfig): SpecTree {
  return { t: timeEmbedderSpec(cfg), r: timeEmbedderSpec(cfg) };
}

/** emb(t) + emb₂(r)·(t − r): [B, dim] in the weights' dtype (t − r is taken in the times' precision). */
export function twinTime<D extends tw.FloatDType>(p: TwinTimeParams<D>, t: tw.Tensor<tw.FloatDType>, r: tw.Tensor<tw.FloatDType>, cfg: TimeEmbeddingConfig): tw.Tensor<D> {
  const gap = t.sub(r).reshape([-1, 1]).cast(p.t.l1.w.dtype) as tw.Tensor<D>;
  return timeEmbedder(p.t, t, cfg).add(timeEmbedder<D>(p.r, r, cfg).mul(gap));
}
