// MLP velocity network for low-dimensional data (2-D toys): every hidden layer is SiLU(Linear(h) + c), with
// c the time embedding emb(t) + emb₂(r)·(t − r) plus, for class-conditional data, a class embedding. The
// output layer starts at zero, so the initial velocity is 0 everywhere.

import * as tw from '../../core.ts';
import { embedding, embeddingSpec } from '../nn/embedding.ts';
import { linear, linearSpec } from '../nn/linear.ts';
import type { LoraConfig } from '../nn/lora.ts';
import { frozen, type SpecTree } from '../nn/params.ts';
import { twinTime, twinTimeSpec } from '../nn/time.ts';
import type { Network } from './types.ts';

export interface MlpConfig {
  dataDim: number;
  hidden: number;
  /** Number of hidden layers (>= 1). */
  depth: number;
  /** Sinusoidal time-feature channels. */
  timeDim: number;
  /** Class-conditional with labels 0..numClasses-1; label numClasses is the null class (CFG's ∅). */
  numClasses?: number;
  /** LoRA adapters on the hidden and output layers; everything else is frozen. */
  lora?: LoraConfig;
}

export function mlpSpec(cfg: MlpConfig): SpecTree {
  if (!(cfg.depth >= 1)) throw new tw.ShapeError(`mlp: depth must be >= 1, got ${cfg.depth}`);
  const fixed = (s: SpecTree): SpecTree => (cfg.lora ? frozen(s) : s); // under LoRA only the adapters train
  return {
    time: fixed(twinTimeSpec({ channels: cfg.timeDim, dim: cfg.hidden })),
    ...(cfg.numClasses === undefined ? {} : { classes: fixed(embeddingSpec(cfg.numClasses + 1, cfg.hidden)) }),
    layers: Array.from({ length: cfg.depth }, (_, i) => linearSpec({ inDim: i === 0 ? cfg.dataDim : cfg.hidden, outDim: cfg.hidden, lora: cfg.lora })),
    out: linearSpec({ inDim: cfg.hidden, outDim: cfg.dataDim, zeroInit: true, lora: cfg.lora }),
  };
}

/** cond: class labels [B] (numClasses = the null class), or null (unconditional; the null class if numClasses is set). */
// eslint-disable-next-line @typescript-eslint/no-explicit-any
export function mlp(cfg: MlpConfig): Network<any, tw.Tensor<'i32'> | null> {
  return (p, x, t, r, cond) => {
    let c = twinTime<'f32'>(p.time, t, r, { channels: cfg.timeDim, dim: cfg.hidden });
    if (cfg.numClasses !== undefined) c = c.add(embedding(p.classes, cond ?? tw.full([x.shape[0]!], cfg.numClasses, 'i32')));
    else if (cond !== null) throw new tw.ShapeError('mlp: got class labels but the config has no numClasses');
    let h = x;
    for (const layer of p.layers) h = tw.silu(linear(layer, h, cfg.lora).add(c));
    return linear(p.out, h, cfg.lora);
  };
}
