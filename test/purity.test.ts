import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import { checkPurity, collectFiles } from '../scripts/check-purity.ts';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');
const fixture = (name: string) => path.join(root, 'test/fixtures/purity', name);
const IMPURE = 'test/fixtures/purity/impure.ts';

describe('check-purity', () => {
  it('reports exactly the side effects planted in impure.ts', () => {
    const got = checkPurity([fixture('impure.ts')], { cwd: root }).map(({ file, line, kind, transform }) => ({ file, line, kind, transform }));
    // Pinned against the `// <- kind` markers in the fixture.
    const expected: [number, string, string][] = [
      [20, 'Math.random', 'jit'],
      [21, 'Date.now', 'grad'],
      [22, 'performance.now', 'jit'],
      [23, 'new Date', 'jit'],
      [26, 'crypto.getRandomValues', 'vjp'],
      [30, 'crypto.randomUUID', 'jvp'],
      [36, 'outer-write', 'jit'], // step += 1
      [37, 'outer-write', 'jit'], // [seed] = ...
      [38, 'outer-write', 'jit'], // stats.calls++
      [39, 'outer-write', 'jit'], // history.push
      [43, 'outer-write', 'grad'], // cache.set in a nested closure
      [48, 'outer-write', 'jit'], // p.w = ... through a parameter
      [52, 'outer-write', 'vjp'], // stats['last'] = ..., via tw.vjp
      [58, 'outer-write', 'grad'], // identifier argument: grad(lossWithCounter)
      [65, 'Math.random', 'vjp'], // helper chain: dropout -> noise
    ];
    expect(got).toEqual(expected.map(([line, kind, transform]) => ({ file: IMPURE, line, kind, transform })));
  });

  it('names the transform call a helper violation is reached from', () => {
    const viaHelper = checkPurity([fixture('impure.ts')], { cwd: root }).find((v) => v.line === 65);
    expect(viaHelper?.message).toContain(`vjp() at ${IMPURE}:70:20 via dropout -> noise`);
  });

  it('finds nothing in pure.ts', () => {
    expect(checkPurity([fixture('pure.ts')])).toEqual([]);
  });

  it('finds no side effects in models/ and examples/ (empty or missing is fine)', () => {
    const dirs = ['models', 'examples'].map((d) => path.join(root, d));
    const violations = checkPurity(dirs, { cwd: root });
    expect(violations.map((v) => `${v.file}:${v.line}:${v.column}: ${v.message}`)).toEqual([]);
    expect(collectFiles(dirs).every((f) => !f.includes('node_modules'))).toBe(true);
  });

  it('CLI prints file:line:col lines and exits 1 on violations, 0 otherwise', () => {
    const cli = (...args: string[]) =>
      spawnSync(path.join(root, 'node_modules/.bin/tsx'), ['scripts/check-purity.ts', ...args], { cwd: root, encoding: 'utf8' });
    const bad = cli(fixture('impure.ts'), 'no-such-dir');
    expect(bad.status).toBe(1);
    expect(bad.stdout.trim().split('\n')).toHaveLength(15);
    expect(bad.stdout).toMatch(new RegExp(`^${IMPURE}:20:47: Math\\.random\\(\\)`, 'm'));
    const good = cli(fixture('pure.ts'));
    expect(good.status).toBe(0);
    expect(good.stdout).toContain('no side effects found in 1 files');
  });
});
