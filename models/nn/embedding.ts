// Embedding table: integer ids -> rows of a learned [count, dim] table.

import * as tw from '../../core.ts';
import type { SpecTree } from './params.ts';

export interface EmbeddingParams<D extends tw.FloatDType = 'f32'> { table: tw.Tensor<D> }

export function embeddingSpec(count: number, dim: number): SpecTree {
  return { table: { shape: [count, dim], init: 'normal', scale: 0.02 } };
}

/** ids [...] -> [..., dim]. */
export function embedding<D extends tw.FloatDType>(p: EmbeddingParams<D>, ids: tw.Tensor<'i32'>): tw.Tensor<D> {
  return tw.take(p.table, ids, 0);
}
