/**
 * The MNIST evaluation classifier must classify ≥ 97% of the held-out real digits. Trains it into
 * runs/mnist-classifier/ when that holds no checkpoint yet (minutes on a 2-core cpu; the test suite trains a
 * short run only), else loads it, then measures the held-out accuracy again from the loaded weights.
 *
 * Usage: npx tsx scripts/check-classifier.ts [dir]   (exit status 1 below 97%)
 */
import * as tw from '../index.ts';
import { loadMnist } from '../models/data/mnist.ts';
import { CLASSIFIER_DIR, classifierAccuracy, loadOrTrainClassifier } from '../models/metrics/classifier.ts';

const dir = process.argv[2] ?? CLASSIFIER_DIR;
const data = loadMnist();
const t0 = performance.now();
const clf = await loadOrTrainClassifier(data, dir, { log: (line) => console.log(`${((performance.now() - t0) / 1000).toFixed(0)} s  ${line}`) });
const accuracy = await classifierAccuracy(clf.params, data.heldOut.images, data.heldOut.labels).item();
console.log(`${clf.trained ? 'trained' : 'loaded'} ${dir} (backend ${tw.backendChoice().name}) in ${((performance.now() - t0) / 1000).toFixed(1)} s: held-out accuracy ${(100 * accuracy).toFixed(2)}%`);
if (accuracy < 0.97) {
  console.error('below the required 97%');
  process.exitCode = 1;
}
