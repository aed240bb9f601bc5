// Memory-aware kernel order. Trace order runs a kernel as soon as it was written down, which can keep many
// large temporaries alive at once (e.g. a backward pass that computes every layer's gradient pieces before
// consuming any). This list scheduler runs, among the kernels whose inputs are ready, the one that frees the
// most bytes net of what it allocates; ties keep trace order, so graphs without slack are left as they were.

/** What the scheduler needs of a plan step: the values it reads and writes. */
export interface SchedStep {
  reads: readonly number[];
  writes: readonly number[];
}

/**
 * A topological order of `steps` (indices into it) that greedily limits live bytes. `temp(v)` is the size of
 * value `v` when the plan owns it and may free it after its last reader, else 0 (inputs, constants, outputs).
 */
export function memoryOrder(steps: readonly SchedStep[], temp: (value: number) => number): number[] {
  const producer = new Map<number, number>();
  steps.forEach((s, i) => s.writes.forEach((v) => producer.set(v, i)));
  // readers left per value, and per step the producer steps it waits on
  const readersLeft = new Map<number, number>();
  const waitsOn = steps.map(() => 0);
  const unblocks: number[][] = steps.map(() => []);
  steps.forEach((s, i) => {
    const deps = new Set<number>();
    for (const v of new Set(s.reads)) {
      readersLeft.set(v, (readersLeft.get(v) ?? 0) + 1);
      const p = producer.get(v);
      // trace order is topological, so real dependencies point backward (a later "producer" is a sort pass pair)
      if (p !== undefined && p < i) deps.add(p);
    }
    waitsOn[i] = deps.size;
    for (const p of deps) unblocks[p]!.push(i);
  });
  const gain = (i: number) => {
    let g = 0;
    for (const v of new Set(steps[i]!.reads)) if (readersLeft.get(v) === 1 && producer.get(v) !== i) g += temp(v);
    for (const v of new Set(steps[i]!.writes)) g -= temp(v);
    return g;
  };
  const ready = new Set<number>();
  waitsOn.forEach((w, i) => w === 0 && ready.add(i));
  const order: number[] = [];
  while (ready.size) {
    let best = -1, bestGain = -Infinity;
    for (const i of ready) {
      const g = gain(i);
      if (g > bestGain || (g === bestGain && i < best)) [best, bestGain] = [i, g];
    }
    ready.delete(best);
    order.push(best);
    for (const v of new Set(steps[best]!.reads)) readersLeft.set(v, readersLeft.get(v)! - 1);
    for (const j of unblocks[best]!) if (--waitsOn[j]! === 0) ready.add(j);
  }
  if (order.length !== steps.length) throw new Error('internal: plan steps form a cycle');
  return order;
}
