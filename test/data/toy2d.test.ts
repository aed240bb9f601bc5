// models/data/toy2d: seeded 2-D samplers. Shape, determinism and jit, then each distribution's geometry
// checked point by point in plain JS (on its support, every region visited about evenly).
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { GAUSS8_RADIUS, GAUSS8_SIGMA, TOY2D, type Toy2d, sample2d } from '../../models/data/toy2d.ts';

const N = 4000;
const points = async (name: Toy2d, seed = 0): Promise<[number, number][]> => {
  const d = await sample2d(name, tw.random.key(seed), N).data();
  return Array.from({ length: N }, (_, i) => [d[2 * i]!, d[2 * i + 1]!]);
};
/** Shares of the points per region, from a region index function (−1: outside every region). */
const shares = (ps: [number, number][], regions: number, region: (p: [number, number]) => number) => {
  const c = new Array<number>(regions).fill(0);
  let outside = 0;
  for (const p of ps) {
    const r = region(p);
    if (r < 0) outside++;
    else c[r]!++;
  }
  return { shares: c.map((v) => v / ps.length), outside: outside / ps.length };
};

describe('sample2d', () => {
  it('gives f32 [n, 2], the same points for the same key, other points for another, and the same under jit', async () => {
    for (const name of TOY2D) {
      const a = sample2d(name, tw.random.key(1), 64);
      expect([a.dtype, a.shape]).toEqual(['f32', [64, 2]]);
      const again = await sample2d(name, tw.random.key(1), 64).data();
      expect(Array.from(again)).toEqual(Array.from(await a.data()));
      expect(Array.from(await sample2d(name, tw.random.key(2), 64).data())).not.toEqual(Array.from(again));
      const jitted = tw.jit((k: tw.random.Key) => sample2d(name, k, 64));
      expect(Array.from(await jitted(tw.random.key(1)).data())).toEqual(Array.from(again));
    }
    expect(() => sample2d('circles' as Toy2d, tw.random.key(0), 4)).toThrow(/unknown distribution 'circles'/);
  });

  it('8gauss: eight equal modes of standard deviation σ on the circle of radius 2', async () => {
    const ps = await points('8gauss');
    const mode = ([x, y]: [number, number]) => (Math.round(Math.atan2(y, x) / (Math.PI / 4)) + 8) % 8;
    const { shares: s } = shares(ps, 8, mode);
    for (const v of s) expect(Math.abs(v - 1 / 8)).toBeLessThan(0.025);
    // per axis, offsets from the centre have mean 0 and standard deviation σ
    const off = ps.map((p) => {
      const a = (mode(p) * Math.PI) / 4;
      return [p[0] - GAUSS8_RADIUS * Math.cos(a), p[1] - GAUSS8_RADIUS * Math.sin(a)];
    });
    for (const axis of [0, 1]) {
      const v = off.map((o) => o[axis]!);
      const mean = v.reduce((a, b) => a + b, 0) / N;
      const sd = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / N);
      expect(Math.abs(mean)).toBeLessThan(0.01);
      expect(Math.abs(sd / GAUSS8_SIGMA - 1)).toBeLessThan(0.05);
    }
  });

  it('checkerboard: uniform on the 8 cells of [−2, 2]² with an even ⌊x⌋ + ⌊y⌋', async () => {
    const ps = await points('checkerboard');
    const cell = ([x, y]: [number, number]) => {
      const [i, j] = [Math.floor(x), Math.floor(y)];
      return x < -2 || x >= 2 || y < -2 || y >= 2 || (i + j) % 2 !== 0 ? -1 : (i + 2) * 2 + Math.floor((j + 2) / 2);
    };
    const { shares: s, outside } = shares(ps, 8, cell);
    expect(outside).toBe(0);
    for (const v of s) expect(Math.abs(v - 1 / 8)).toBeLessThan(0.025);
  });

  it('moons: two noisy half circles (noise 0.1 before the 1.5 scale)', async () => {
    const ps = await points('moons');
    // back to make_moons' frame: upper arc |q| = 1 with q_y ≥ 0, lower arc |q − (1, 0.5)| = 1 with q_y ≤ 0.5
    const arc = ([x, y]: [number, number]) => {
      const q = [x / 1.5 + 0.5, y / 1.5 + 0.25] as const;
      const up = Math.abs(Math.hypot(q[0], q[1]) - 1), low = Math.abs(Math.hypot(q[0] - 1, q[1] - 0.5) - 1);
      return Math.min(up, low) > 0.4 ? -1 : up < low ? 0 : 1; // 4 noise standard deviations
    };
    const { shares: s, outside } = shares(ps, 2, arc);
    expect(outside).toBeLessThan(0.001);
    for (const v of s) expect(Math.abs(v - 0.5)).toBeLessThan(0.03);
  });

  it('spirals: two arms, each the other turned by π, out to radius π', async () => {
    const ps = await points('spirals');
    // distance to a dense polyline of each noise-free arm, then the nearest arm
    const arm = (sign: number) => Array.from({ length: 3000 }, (_, i) => {
      const th = (i / 2999) * 3 * Math.PI;
      return [(-sign * Math.cos(th) * th) / 3, (sign * Math.sin(th) * th) / 3];
    });
    const arms = [arm(1), arm(-1)];
    const nearest = (p: [number, number]) => {
      const d = arms.map((a) => Math.min(...a.map(([x, y]) => Math.hypot(x - p[0], y - p[1]))));
      return Math.min(...d) > 0.4 ? -1 : d[0]! < d[1]! ? 0 : 1;
    };
    const { shares: s, outside } = shares(ps.slice(0, 1000), 2, nearest);
    expect(outside).toBeLessThan(0.002);
    for (const v of s) expect(Math.abs(v - 0.5)).toBeLessThan(0.06);
    expect(Math.max(...ps.map(([x, y]) => Math.hypot(x, y)))).toBeGreaterThan(2.9);
  });
});
