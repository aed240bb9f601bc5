// The README's examples are examples/readme.ts and examples/check-grads.ts, verbatim, and they run as written.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;

describe('README example', () => {
  it('is the same code as examples/readme.ts', () => {
    const readme = readFileSync(root + 'README.md', 'utf8');
    const block = /## Example\n\n```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(root + 'examples/readme.ts', 'utf8'));
  });

  it('runs: trains, hits the jit cache, prints the gradient program', () => {
    const out = execFileSync(root + 'node_modules/.bin/tsx', ['examples/readme.ts'], { cwd: root, encoding: 'utf8', env: { ...process.env, TWINFLOW_BACKEND: '' } });
    const loss = Number(/loss after 200 steps: ([\d.e-]+)/.exec(out)?.[1]);
    expect(loss).toBeLessThan(0.5);
    expect(out).toContain('{ hits: 200, misses: 1 }');
    expect(out).toMatch(/^graph\(/m);
    expect(out).toMatch(/= dot %\d+ %\d+/);
  });
});

describe("README's gradient-testing example", () => {
  it('is the same code as examples/check-grads.ts', () => {
    const readme = readFileSync(root + 'README.md', 'utf8');
    const block = /## Testing your objective's gradients\n[\s\S]*?```ts\n([\s\S]*?)```/.exec(readme)?.[1];
    expect(block).toBe(readFileSync(root + 'examples/check-grads.ts', 'utf8'));
  });

  it('runs: checkGrads passes the objective to second order', () => {
    const out = execFileSync(root + 'node_modules/.bin/tsx', ['examples/check-grads.ts'], { cwd: root, encoding: 'utf8', env: { ...process.env, TWINFLOW_BACKEND: '' } });
    expect(out).toContain('objective gradients: ok');
  });
});
