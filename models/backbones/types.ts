// The contract every backbone meets: a velocity network F_θ(x_t, t, r | c) for TwinFlow (TWINFLOW.md).

import type * as tw from '../../core.ts';

/**
 * x: [B, ...features]; t and r: [B], signed (negative time marks the fake trajectory); cond: the condition
 * (C = null for unconditional networks). The result has x's shape: the average velocity from t to r.
 */
export type Network<P, C = null> = (params: P, x: tw.Tensor<'f32'>, t: tw.Tensor<'f32'>, r: tw.Tensor<'f32'>, cond: C) => tw.Tensor<'f32'>;
