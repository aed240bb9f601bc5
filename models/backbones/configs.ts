// The MMDiT sizes of BACKBONE.md. tiny trains on a CPU; small is the MNIST model (32×32 digits, patch 4);
// qwen-image-20b is Qwen-Image's transformer (16-channel latents in 2×2 patches, 1024² pixels), ≈20.4B
// parameters, not zero-initialised since its weights are loaded. The small ones start DiT-style at zero.

import type { MmditConfig } from './mmdit.ts';

export const mmditConfigs = {
  tiny: {
    dim: 64, layers: 2, heads: 4, headDim: 16, ropeAxes: [4, 6, 6], ropeTheta: 10000, textDim: 64,
    channels: 4, patch: 2, size: 8, timeChannels: 256, zeroInit: true,
  },
  small: {
    dim: 256, layers: 6, heads: 4, headDim: 64, ropeAxes: [16, 24, 24], ropeTheta: 10000, textDim: 256,
    channels: 1, patch: 4, size: 32, timeChannels: 256, zeroInit: true,
  },
  'qwen-image-20b': {
    dim: 3072, layers: 60, heads: 24, headDim: 128, ropeAxes: [16, 56, 56], ropeTheta: 10000, textDim: 3584,
    channels: 16, patch: 2, size: 128, timeChannels: 256, zeroInit: false,
  },
} as const satisfies Record<string, MmditConfig>;

export type MmditConfigName = keyof typeof mmditConfigs;
