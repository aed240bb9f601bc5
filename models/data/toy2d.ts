// 2-D toy distributions with seeded sampling, written with DSL ops so a sampler jits (n is static) and gives
// the same points on every backend for the same key. Each is centred at the origin, within about [−3.5, 3.5]².

import * as tw from '../../core.ts';

export type Toy2d = '8gauss' | 'checkerboard' | 'moons' | 'spirals';
export const TOY2D: readonly Toy2d[] = ['8gauss', 'checkerboard', 'moons', 'spirals'];

type T = tw.Tensor<'f32'>;

/** 8 gaussians: equal-weight modes at radius GAUSS8_RADIUS, angles k·π/4, isotropic standard deviation GAUSS8_SIGMA. */
export const GAUSS8_RADIUS = 2;
export const GAUSS8_SIGMA = 0.1;
/** The 8 mode centres, [8, 2]. */
export function gauss8Centres(): T {
  const c = Array.from({ length: 8 }, (_, k) => [GAUSS8_RADIUS * Math.cos((k * Math.PI) / 4), GAUSS8_RADIUS * Math.sin((k * Math.PI) / 4)]);
  return tw.tensor(c);
}

const column = (x: T) => x.reshape([-1, 1]);

function gauss8(key: tw.random.Key, n: number): T {
  const [km, kn] = tw.random.split(key);
  return gauss8Centres().take(tw.random.randint(km, [n], 0, 8), 0).add(tw.random.normal(kn, [n, 2]).mul(GAUSS8_SIGMA));
}

/** Uniform on the 8 cells of a 4×4 board over [−2, 2]² whose integer corners (⌊x⌋, ⌊y⌋) have an even sum. */
function checkerboard(key: tw.random.Key, n: number): T {
  const [kx, ky, kr] = tw.random.split(key, 3);
  const x = tw.random.uniform(kx, [n], { min: -2, max: 2 });
  const fx = tw.floor(x);
  const parity = fx.sub(tw.floor(fx.mul(0.5)).mul(2)); // ⌊x⌋ mod 2 ∈ {0, 1}
  // y in [0, 1) or [−2, −1), shifted up by one on odd columns
  const y = tw.random.uniform(ky, [n]).sub(tw.random.randint(kr, [n], 0, 2).cast('f32').mul(2)).add(parity);
  return tw.concat([column(x), column(y)], 1);
}

/** Two interleaving half circles (scikit-learn's make_moons), noise 0.1, centred and scaled by 1.5. */
function moons(key: tw.random.Key, n: number): T {
  const [ka, km, kn] = tw.random.split(key, 3);
  const a = tw.random.uniform(ka, [n], { max: Math.PI });
  const lower = tw.random.bernoulli(km, 0.5, [n]);
  // upper moon (cos a, sin a); lower moon (1 − cos a, 0.5 − sin a)
  const x = tw.where(lower, tw.sub(1, tw.cos(a)), tw.cos(a));
  const y = tw.where(lower, tw.sub(0.5, tw.sin(a)), tw.sin(a));
  const p = tw.concat([column(x), column(y)], 1).add(tw.random.normal(kn, [n, 2]).mul(0.1));
  return p.sub(tw.tensor([0.5, 0.25])).mul(1.5);
}

/** Two interleaved arms r = θ, θ ∈ [0, 3π] with density ∝ √u (FFJORD's 2spirals), scaled by 1/3, noise 0.1. */
function spirals(key: tw.random.Key, n: number): T {
  const [kt, ks, kn] = tw.random.split(key, 3);
  const th = tw.sqrt(tw.random.uniform(kt, [n])).mul(3 * Math.PI);
  const arm = tw.random.bernoulli(ks, 0.5, [n]).cast('f32').mul(2).sub(1); // ±1: the second arm is the first rotated by π
  const p = tw.concat([column(tw.cos(th).mul(th).neg()), column(tw.sin(th).mul(th))], 1).mul(column(arm));
  return p.div(3).add(tw.random.normal(kn, [n, 2]).mul(0.1));
}

const SAMPLERS: Record<Toy2d, (key: tw.random.Key, n: number) => T> = { '8gauss': gauss8, checkerboard, moons, spirals };

/** n points of the named distribution: f32 [n, 2]. */
export function sample2d(name: Toy2d, key: tw.random.Key, n: number): T {
  const f = SAMPLERS[name];
  if (!f) throw new RangeError(`sample2d: unknown distribution '${name}'; one of ${TOY2D.join(', ')}`);
  return f(key, n);
}
