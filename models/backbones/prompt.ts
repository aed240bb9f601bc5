// Short text prompts over a small vocabulary ("a handwritten digit seven"), embedded by a learned table into
// the MMDiT's text stream, so that small labelled data (MNIST) exercises the text path, its padding mask and
// MSRoPE's text positions as the full model does. The empty prompt is the null condition ∅.

import * as tw from '../../core.ts';
import { embedding, type EmbeddingParams, embeddingSpec } from '../nn/embedding.ts';
import type { SpecTree } from '../nn/params.ts';
import type { MmditCond } from './mmdit.ts';

export const DIGIT_WORDS = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'] as const;
/** Id 0 is padding. */
export const VOCABULARY = ['<pad>', 'a', 'the', 'handwritten', 'digit', 'number', ...DIGIT_WORDS] as const;

const TEMPLATES = [(w: string) => `a handwritten digit ${w}`, (w: string) => `the number ${w}`, (w: string) => `digit ${w}`, (w: string) => w];
/** Longest prompt in tokens. */
export const PROMPT_LENGTH = 4;

/** One of a few phrasings (variant mod 4) of the prompt for a digit label. */
export function digitPrompt(label: number, variant: number): string {
  return TEMPLATES[variant % TEMPLATES.length]!(DIGIT_WORDS[label]!);
}

/** Word ids [B, maxLen] (0 after the end) and mask [B, maxLen] (true on words); '' gives an all-false row. */
export function tokenize(prompts: readonly string[], maxLen = PROMPT_LENGTH): { ids: tw.Tensor<'i32'>; mask: tw.Tensor<'bool'> } {
  const ids = new Int32Array(prompts.length * maxLen);
  prompts.forEach((text, b) => {
    const words = text.split(/\s+/).filter((s) => s.length > 0);
    if (words.length > maxLen) throw new tw.ShapeError(`tokenize: '${text}' has ${words.length} words, more than ${maxLen}`);
    words.forEach((word, i) => {
      const id = VOCABULARY.indexOf(word.toLowerCase() as (typeof VOCABULARY)[number]);
      if (id <= 0) throw new tw.ShapeError(`tokenize: '${word}' is not in the vocabulary`);
      ids[b * maxLen + i] = id;
    });
  });
  const t = tw.tensor(ids, 'i32', [prompts.length, maxLen]);
  return { ids: t, mask: t.ne(0) };
}

export function promptEmbeddingSpec(textDim: number): SpecTree {
  return embeddingSpec(VOCABULARY.length, textDim);
}

/** The MMDiT text condition for tokenized prompts. */
export function embedPrompt(p: EmbeddingParams, ids: tw.Tensor<'i32'>, mask: tw.Tensor<'bool'>): MmditCond {
  return { tokens: embedding(p, ids), mask };
}
