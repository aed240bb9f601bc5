// docs/objectives.md: every ts block is a repository file (<!-- file: PATH -->, verbatim) or an excerpt of one
// (<!-- excerpt: PATH -->, found verbatim in it), and its walkthrough example runs as written.
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { describe, expect, it } from 'vitest';

const root = new URL('..', import.meta.url).pathname;
const doc = readFileSync(root + 'docs/objectives.md', 'utf8');

describe('docs/objectives.md', () => {
  it('marks every ts block as a file or an excerpt, and each matches the repository', () => {
    const blocks = [...doc.matchAll(/(?:<!-- (file|excerpt): (\S+) -->\n)?```ts\n([\s\S]*?)```/g)];
    expect(blocks.length).toBeGreaterThanOrEqual(8);
    for (const [, kind, file, code] of blocks) {
      expect(kind, `unmarked block:\n${code}`).toBeDefined();
      const text = readFileSync(root + file!, 'utf8');
      if (kind === 'file') expect(code, file).toBe(text);
      else expect(text.includes(code!), `${file} does not contain:\n${code}`).toBe(true);
    }
  });

  it('is linked from the README', () => {
    expect(readFileSync(root + 'README.md', 'utf8')).toContain('(docs/objectives.md)');
  });

  it('its example runs: gradients checked, and the loss falls under the training step', () => {
    const out = execFileSync(root + 'node_modules/.bin/tsx', ['examples/objective/check.ts'], { cwd: root, encoding: 'utf8', env: { ...process.env, TWINFLOW_BACKEND: '' } });
    expect(out).toContain('gradients: ok');
    const [early, late] = [/steps 1-20: ([\d.e-]+)/, /steps 21-120: ([\d.e-]+)/].map((re) => Number(re.exec(out)?.[1]));
    expect(late).toBeLessThan(early!);
  }, 120_000);
});
