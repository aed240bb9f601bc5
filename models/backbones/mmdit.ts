// The Qwen-Image-style dual-stream MMDiT of BACKBONE.md as a TwinFlow velocity network. Text and image
// tokens keep separate weights (modulation, projections, norms, MLPs) and meet in one joint attention over
// [text ; image]; only the image stream leaves the last block.

import * as tw from '../../core.ts';
import { multiHeadAttention } from '../nn/attention.ts';
import { type LinearParams, linear, linearSpec } from '../nn/linear.ts';
import type { LoraConfig } from '../nn/lora.ts';
import { type FeedForwardConfig, type FeedForwardParams, feedForward, feedForwardSpec } from '../nn/mlp.ts';
import { applyRope, imagePositions, ropeAngles, type RopeAxes, textPositions } from '../nn/msrope.ts';
import { layerNorm, rmsNorm, type RmsNormParams, rmsNormSpec } from '../nn/norm.ts';
import { frozen, type SpecTree } from '../nn/params.ts';
import { type TimeEmbeddingConfig, twinTime, type TwinTimeParams, twinTimeSpec } from '../nn/time.ts';
import type { Network } from './types.ts';

export interface MmditConfig {
  /** Model width D = heads·headDim. */
  dim: number;
  layers: number;
  heads: number;
  headDim: number;
  /** MSRoPE split of headDim over (frame, row, column); even sizes summing to headDim. */
  ropeAxes: RopeAxes;
  ropeTheta: number;
  /** Width of the text tokens (encoder states or prompt embeddings). */
  textDim: number;
  /** Latent images are [channels, size, size], packed into patch×patch tokens; output has the same shape. */
  channels: number;
  patch: number;
  size: number;
  /** Sinusoidal time-feature channels (256). */
  timeChannels: number;
  /** DiT-style zero init of the modulation and output projections: every block starts as the identity and the output at 0. */
  zeroInit: boolean;
  /** LoRA adapters on the attention projections and MLPs of both streams; everything else is frozen. */
  lora?: LoraConfig;
  /** Checkpoint each block (tw.checkpoint): under grad its internals are recomputed in the backward, so only block inputs stay alive. */
  remat?: boolean;
}

/** The text condition: tokens [B, L, textDim] with mask [B, L] (false = padding). The null condition ∅ is an all-false mask. */
export interface MmditCond { tokens: tw.Tensor<'f32'>; mask: tw.Tensor<'bool'> }

type F = tw.Tensor<'f32'>;
interface StreamParams {
  mod: LinearParams;
  q: LinearParams;
  k: LinearParams;
  v: LinearParams;
  normQ: RmsNormParams;
  normK: RmsNormParams;
  out: LinearParams;
  mlp: FeedForwardParams;
}
interface BlockParams { img: StreamParams; txt: StreamParams }
export interface MmditParams {
  imgIn: LinearParams;
  txtNorm: RmsNormParams;
  txtIn: LinearParams;
  time: TwinTimeParams;
  blocks: BlockParams[];
  normOut: { mod: LinearParams };
  projOut: LinearParams;
}

const ffConfig = (cfg: MmditConfig): FeedForwardConfig => ({ inDim: cfg.dim, hidden: 4 * cfg.dim, outDim: cfg.dim, act: 'gelu', lora: cfg.lora });
const timeConfig = (cfg: MmditConfig): TimeEmbeddingConfig => ({ channels: cfg.timeChannels, dim: cfg.dim });
const tokenDim = (cfg: MmditConfig): number => cfg.patch * cfg.patch * cfg.channels;

function checkConfig(cfg: MmditConfig): void {
  const axes = cfg.ropeAxes.reduce((a, b) => a + b, 0);
  if (cfg.heads * cfg.headDim !== cfg.dim || axes !== cfg.headDim) {
    throw new tw.ShapeError(`mmdit: need heads·headDim = dim and sum(ropeAxes) = headDim, got ${cfg.heads}·${cfg.headDim} vs ${cfg.dim}, (${cfg.ropeAxes}) vs ${cfg.headDim}`);
  }
}

export function mmditSpec(cfg: MmditConfig): SpecTree {
  checkConfig(cfg);
  const D = cfg.dim;
  const fixed = (s: SpecTree): SpecTree => (cfg.lora ? frozen(s) : s); // under LoRA only the adapters train
  const adapted = (inDim: number, outDim: number) => linearSpec({ inDim, outDim, lora: cfg.lora });
  const stream = (): SpecTree => ({
    mod: fixed(linearSpec({ inDim: D, outDim: 6 * D, zeroInit: cfg.zeroInit })),
    q: adapted(D, D),
    k: adapted(D, D),
    v: adapted(D, D),
    normQ: fixed(rmsNormSpec(cfg.headDim)),
    normK: fixed(rmsNormSpec(cfg.headDim)),
    out: adapted(D, D),
    mlp: feedForwardSpec(ffConfig(cfg)),
  });
  return {
    imgIn: fixed(linearSpec({ inDim: tokenDim(cfg), outDim: D })),
    txtNorm: fixed(rmsNormSpec(cfg.textDim)),
    txtIn: fixed(linearSpec({ inDim: cfg.textDim, outDim: D })),
    time: fixed(twinTimeSpec(timeConfig(cfg))),
    blocks: Array.from({ length: cfg.layers }, () => ({ img: stream(), txt: stream() })),
    normOut: fixed({ mod: linearSpec({ inDim: D, outDim: 2 * D, zeroInit: cfg.zeroInit }) }),
    projOut: fixed(linearSpec({ inDim: D, outDim: tokenDim(cfg), zeroInit: cfg.zeroInit })),
  };
}

/** [B, C, H, W] -> [B, (H/p)·(W/p), C·p·p]: row-major patches, features ordered (channel, patch-row, patch-col). */
export function patchify(x: F, p: number): F {
  const [B, C, H, W] = x.shape as [number, number, number, number];
  if (H % p !== 0 || W % p !== 0) throw new tw.ShapeError(`mmdit: image ${H}×${W} does not divide into ${p}×${p} patches`);
  return x.reshape([B, C, H / p, p, W / p, p]).transpose([0, 2, 4, 1, 3, 5]).reshape([B, (H / p) * (W / p), C * p * p]);
}

/** Inverse of patchify for an h×w token grid. */
export function unpatchify(tokens: F, h: number, w: number, p: number): F {
  const [B, , f] = tokens.shape as [number, number, number];
  const C = f / (p * p);
  return tokens.reshape([B, h, w, C, p, p]).transpose([0, 3, 1, 4, 2, 5]).reshape([B, C, h * p, w * p]);
}

/** x·(1 + scale) + shift with per-sample [B, D] modulation over the tokens of [B, S, D]. */
const modulate = (x: F, shift: F, scale: F): F => x.mul(scale.unsqueeze(1).add(1)).add(shift.unsqueeze(1));
const ln = (x: F): F => layerNorm({}, x, 1e-6);

interface Qkv { q: F; k: F; v: F }

/** Q, K, V of one stream: [B, S, H, Dh], with QK RMSNorm over Dh and then MSRoPE. */
function projectQkv(p: StreamParams, x: F, angles: F, cfg: MmditConfig): Qkv {
  const heads = (y: F) => y.reshape([y.shape[0]!, y.shape[1]!, cfg.heads, cfg.headDim]);
  const q = rmsNorm(p.normQ, heads(linear(p.q, x, cfg.lora)), 1e-6);
  const k = rmsNorm(p.normK, heads(linear(p.k, x, cfg.lora)), 1e-6);
  return { q: applyRope(q, angles), k: applyRope(k, angles), v: heads(linear(p.v, x, cfg.lora)) };
}

interface Shared { act: F; angles: { txt: F; img: F }; keyMask: tw.Tensor<'bool'> }

/** One dual-stream block: modulated joint attention, then a modulated MLP, each with a gated residual. */
function dualStreamBlock(p: BlockParams, txt: F, img: F, s: Shared, cfg: MmditConfig): [F, F] {
  // Modulation order [shift1, scale1, gate1, shift2, scale2, gate2].
  const modImg = tw.split(linear(p.img.mod, s.act), 6, -1);
  const modTxt = tw.split(linear(p.txt.mod, s.act), 6, -1);
  const im = projectQkv(p.img, modulate(ln(img), modImg[0]!, modImg[1]!), s.angles.img, cfg);
  const tx = projectQkv(p.txt, modulate(ln(txt), modTxt[0]!, modTxt[1]!), s.angles.txt, cfg);
  const [L, S] = [txt.shape[1]!, img.shape[1]!];
  const joint = multiHeadAttention(tw.concat([tx.q, im.q], 1), tw.concat([tx.k, im.k], 1), tw.concat([tx.v, im.v], 1), s.keyMask); // [text ; image]
  const [oTxt, oImg] = tw.split(joint.reshape([joint.shape[0]!, L + S, cfg.dim]), [L, S], 1) as [F, F];
  const gated = (x: F, gate: F, y: F) => x.add(gate.unsqueeze(1).mul(y));
  const img1 = gated(img, modImg[2]!, linear(p.img.out, oImg, cfg.lora));
  const txt1 = gated(txt, modTxt[2]!, linear(p.txt.out, oTxt, cfg.lora));
  const mlp = (q: StreamParams, x: F, mod: F[]) => gated(x, mod[5]!, feedForward(q.mlp, modulate(ln(x), mod[3]!, mod[4]!), ffConfig(cfg)));
  return [mlp(p.txt, txt1, modTxt), mlp(p.img, img1, modImg)];
}

/** The MMDiT as a velocity network: x [B, channels, H, W] with H, W multiples of the patch size. */
export function mmdit(cfg: MmditConfig): Network<MmditParams, MmditCond> {
  checkConfig(cfg);
  return (p, x, t, r, cond) => {
    const [B, , H, W] = x.shape as [number, number, number, number];
    const [h, w, L] = [H / cfg.patch, W / cfg.patch, cond.tokens.shape[1]!];
    const temb = twinTime(p.time, t, r, timeConfig(cfg));
    // F is f32 by type; at run time x may be f64 (oracle) or 16-bit, which rotates by f32 angles (applyRope)
    const angleType = (x.dtype as tw.DType) === 'f64' ? 'f64' : 'f32';
    const shared: Shared = {
      act: tw.silu(temb),
      angles: {
        txt: ropeAngles(textPositions(h, w, L), cfg.ropeAxes, cfg.ropeTheta, angleType) as F,
        img: ropeAngles(imagePositions(h, w), cfg.ropeAxes, cfg.ropeTheta, angleType) as F,
      },
      keyMask: tw.concat([cond.mask, tw.ones([B, h * w], 'bool')], 1),
    };
    let img = linear(p.imgIn, patchify(x, cfg.patch));
    let txt = linear(p.txtIn, rmsNorm(p.txtNorm, cond.tokens, 1e-6));
    const apply = (b: BlockParams, t: F, i: F, s: Shared) => dualStreamBlock(b, t, i, s, cfg);
    const block = cfg.remat ? tw.checkpoint(apply) : apply;
    for (const b of p.blocks) [txt, img] = block(b, txt, img, shared);
    const [scale, shift] = tw.split(linear(p.normOut.mod, shared.act), 2, -1) as [F, F]; // scale first
    return unpatchify(linear(p.projOut, modulate(ln(img), shift, scale)), h, w, cfg.patch);
  };
}
