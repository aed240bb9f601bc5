// Flow matching written from scratch as an objective (docs/objectives.md walks through it): the contract is
// models/objectives/objective.ts, the network any backbone of models/backbones/.
import * as tw from 'twinflow';
import type { Network } from '../../models/backbones/types.ts';
import type { Batch, LossOut, Objective } from '../../models/objectives/objective.ts';

type T = tw.Tensor<'f32'>;

/** x_t = t·z + (1 − t)·x; the network at r = t is the velocity, regressed on v = z − x. */
export function flowMatchingLoss<P, C>(net: Network<P, C>, params: P, batch: Batch<C>, z: T, t: T): LossOut {
  const { x, cond } = batch;
  const col = (a: T) => a.reshape([-1, ...Array<number>(x.ndim - 1).fill(1)]); // [B] → [B, 1, …]
  const xt = col(t).mul(z).add(col(tw.sub(1, t)).mul(x));
  const loss = net(params, xt, t, t, cond).sub(z.sub(x)).square().mean();
  return { loss, terms: { flow: loss } };
}

/** The objective the training step calls: every random draw comes from the step's key. */
export const flowMatching: Objective = {
  loss: (net, params, _ema, batch, key) => {
    const [kz, kt] = tw.random.split(key);
    return flowMatchingLoss(net, params, batch, tw.random.normal(kz, batch.x.shape), tw.random.uniform(kt, [batch.x.shape[0]!]));
  },
  terms: () => ['flow'],
};
