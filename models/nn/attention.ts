// Multi-head attention over [B, S, H, Dh] queries, keys and values with a per-key padding mask.

import * as tw from '../../core.ts';

/**
 * q, k, v: [B, S, H, Dh] -> [B, S, H, Dh]; keyMask [B, S] (true = attend) hides padded keys from every query.
 * Scale 1/sqrt(Dh), not causal.
 */
export function multiHeadAttention<D extends tw.FloatDType>(q: tw.Tensor<D>, k: tw.Tensor<D>, v: tw.Tensor<D>, keyMask?: tw.Tensor<'bool'>): tw.Tensor<D> {
  const heads = (x: tw.Tensor<D>) => x.transpose([0, 2, 1, 3]); // [B, H, S, Dh]
  const mask = keyMask?.reshape([keyMask.shape[0]!, 1, 1, keyMask.shape[1]!]);
  return tw.attention(heads(q), heads(k), heads(v), { mask }).transpose([0, 2, 1, 3]);
}
