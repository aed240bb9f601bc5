// models/metrics/classifier: shapes, a short real training run on part of the train split (the full run and
// its ≥ 97% held-out check are scripts/check-classifier.ts: minutes on a cpu), and the checkpoint kept in a
// directory: trained once, then loaded as saved, and refused when asked for other training options.
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { loadMnist, type MnistSplit } from '../../models/data/mnist.ts';
import { classifierAccuracy, classifierFeatures, classifierLogits, classifierSpec, FEATURE_DIM, type LoadedClassifier, loadOrTrainClassifier } from '../../models/metrics/classifier.ts';
import { countParams, initParams } from '../../models/nn/params.ts';

const host = async (t: tw.Tensor): Promise<number[]> => Array.from((await t.data()) as ArrayLike<number>);

describe('MNIST classifier', () => {
  let data: { train: MnistSplit; heldOut: MnistSplit };
  let dir: string;
  let first: LoadedClassifier;
  // one epoch over 2,560 shuffled train digits: 40 steps of 64
  const short = { epochs: 1, seed: 1 };
  beforeAll(async () => {
    const all = loadMnist();
    const rows = tw.random.permutation(tw.random.key(5), all.train.labels.shape[0]!).slice([0, 2560]);
    const pick = <D extends tw.DType>(t: tw.Tensor<D>) => t.take(rows, 0);
    data = { train: { images: pick(all.train.images), labels: pick(all.train.labels), prompts: { ids: pick(all.train.prompts.ids), mask: pick(all.train.prompts.mask) } }, heldOut: all.heldOut };
    dir = await mkdtemp(path.join(tmpdir(), 'twinflow-classifier-'));
    first = await loadOrTrainClassifier(data, dir, short);
  }, 120_000);
  afterAll(() => rm(dir, { recursive: true, force: true }));

  it('maps [B, 1, 32, 32] to 128 non-negative features and 10 logits', async () => {
    const p = initParams(classifierSpec(), tw.random.key(0));
    expect(countParams(classifierSpec())).toBe(16 * 9 + 16 + 32 * 144 + 32 + 2048 * 128 + 128 + 128 * 10 + 10);
    const x = tw.random.uniform(tw.random.key(1), [3, 1, 32, 32], { min: -1, max: 1 });
    const f = classifierFeatures(p, x);
    expect([f.shape, classifierLogits(p, x).shape]).toEqual([[3, FEATURE_DIM], [3, 10]]);
    expect((await host(f)).every((v) => v >= 0)).toBe(true);
    // each image is classified on its own: a batch gives the rows of single-image calls
    const one = await host(classifierLogits(p, x.slice([1, 2])));
    (await host(classifierLogits(p, x))).slice(10, 20).forEach((v, i) => expect(v).toBeCloseTo(one[i]!, 5));
  });

  it('a short training run already classifies most held-out digits', async () => {
    expect(first.trained).toBe(true);
    expect(first.heldOutAccuracy).toBeGreaterThan(0.75); // 81.6% with this seed; chance is 10%
    expect(await classifierAccuracy(first.params, data.heldOut.images, data.heldOut.labels).item()).toBe(first.heldOutAccuracy);
  });

  it('is saved once and then loaded as saved; other training options are refused', async () => {
    const again = await loadOrTrainClassifier(data, dir, short);
    expect([again.trained, again.heldOutAccuracy]).toEqual([false, first.heldOutAccuracy]);
    const [a, b] = [tw.treeFlatten(first.params)[0], tw.treeFlatten(again.params)[0]];
    for (let i = 0; i < a.length; i++) expect(await host(b[i]!)).toEqual(await host(a[i]!));
    await expect(loadOrTrainClassifier(data, dir, { ...short, epochs: 2 })).rejects.toThrow(/trained with .*"epochs":1.*remove it to retrain/);
  });
});
