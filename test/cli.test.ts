// The `twinflow` CLI, spawned as a user runs it (scripts/cli/bin.mjs): user errors print one line and exit 2;
// a tiny train → sample → eval round trip writes a PNG and the metric table; --resume continues from the
// saved step; Ctrl-C (SIGINT) during training saves a loadable checkpoint and exits 0.

import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { loadRun } from '../scripts/cli/train.ts';
import type { RunConfig } from '../scripts/cli/runs.ts';
import { cli } from './support/cli.ts';

const TINY = ['--data', '2d:checkerboard', '--model', 'mlp', '--hidden', '16', '--batch', '16', '--backend', 'cpu', '--log-every', '2'];


const lines = (s: string) => s.split('\n').filter((l) => l.trim() !== '');

let dir: string;
beforeAll(() => void (dir = mkdtempSync(path.join(tmpdir(), 'twinflow-cli-'))));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe('user errors: one line on stderr, exit code 2', () => {
  const cases: [string, string[], RegExp][] = [
    ['an unknown flag', ['train', '--data', '2d:checkerboard', '--out', 'x', '--bogus'], /unknown option '--bogus'/],
    ['an unknown data set', ['train', '--data', '2d:donut', '--out', 'x'], /'2d:donut' is invalid.*2d:checkerboard/],
    ['a bad number', ['train', '--data', '2d:8gauss', '--steps', '-3', '--out', 'x'], /--steps.*positive integer/],
    ['a model that does not fit the data', ['train', '--data', '2d:moons', '--model', 'mmdit-tiny', '--out', 'x'], /mmdit-tiny takes images/],
    ['--lambda with another objective', ['train', '--data', '2d:moons', '--objective', 'rcgm', '--lambda', '1/3', '--out', 'x'], /--lambda applies to --objective twinflow/],
    ['an unknown objective', ['train', '--data', '2d:moons', '--objective', 'diffusion', '--out', 'x'], /'diffusion' is invalid.*twinflow, rcgm, fm, meanflow, shortcut/],
    ['a batch too small for the objective', ['train', '--data', '2d:moons', '--objective', 'shortcut', '--batch', '1', '--out', 'x'], /--batch 1: a batch of 1 rows cannot hold both flow-matching rows and self-consistency rows/],
    ['an unknown command', ['fly'], /unknown command 'fly'/],
    ['a missing run', ['sample', '--ckpt', '/nonexistent/run'], /--ckpt \/nonexistent\/run: no run there \(expected \/nonexistent\/run\/config\.json/],
  ];
  it.each(cases)('%s', async (_, args, message) => {
    const r = await cli(args);
    expect(r.code).toBe(2);
    expect(lines(r.stderr)).toHaveLength(1);
    expect(r.stderr).toMatch(message);
  });
});

describe('--objective meanflow and shortcut', () => {
  it.each(['meanflow', 'shortcut'])('%s: trains, is recorded in the run config, and evaluates with the any-step sampler', async (objective) => {
    const run = path.join(dir, objective);
    const t = await cli(['train', ...TINY, '--objective', objective, '--steps', '2', '--out', run]);
    expect(t.code, t.stderr).toBe(0);
    expect(JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8')).objective).toBe(objective);
    const e = await cli(['eval', '--ckpt', run, '--nfe', '1,2', '--samples', '64', '--backend', 'cpu']);
    expect(e.code, e.stderr).toBe(0);
    expect(readFileSync(path.join(run, 'metrics.md'), 'utf8')).toMatch(/\| any-step, 1 NFE \| \d[\s\S]*\| any-step, 2 NFE \| \d/);
  }, 60_000);
});

describe('a tiny run', () => {
  let run: string;
  beforeAll(async () => {
    run = path.join(dir, 'tiny');
    const r = await cli(['train', ...TINY, '--steps', '4', '--checkpoint-every', '2', '--out', run]);
    expect(r.stderr).toMatch(/backend: cpu/);
    expect(r.code, r.stderr).toBe(0);
  }, 30_000);

  it('sample writes a PNG scatter plot', async () => {
    const png = path.join(dir, 'grid.png');
    const r = await cli(['sample', '--ckpt', run, '--nfe', '2', '--backend', 'cpu', '--out', png]);
    expect(r.code, r.stderr).toBe(0);
    const bytes = readFileSync(png);
    expect([...bytes.subarray(0, 8)]).toEqual([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
    expect(bytes.subarray(12, 16).toString()).toBe('IHDR');
    expect([bytes.readUInt32BE(16), bytes.readUInt32BE(20)]).toEqual([480, 500]); // width, height
  }, 30_000);

  it('eval writes the metric table as markdown and JSON', async () => {
    const r = await cli(['eval', '--ckpt', path.join(run, 'checkpoints'), '--nfe', '1,2', '--samples', '256', '--backend', 'cpu']);
    expect(r.code, r.stderr).toBe(0);
    const md = readFileSync(path.join(run, 'metrics.md'), 'utf8');
    expect(md).toMatch(/\| sampler \| sliced W2 \| energy distance \| modes covered \| in modes \|/);
    expect(md).toMatch(/\| few-step, 2 NFE \| \d/);
    const json = JSON.parse(readFileSync(path.join(run, 'metrics.json'), 'utf8'));
    expect(json.step).toBe(4);
    expect(json.rows.map((row: { nfe: number | null }) => row.nfe)).toEqual([null, 1, 2]);
    expect(r.stdout).toContain(md.trim());
  }, 60_000);

  it('--resume continues from the saved step', async () => {
    const r = await cli(['train', '--out', run, '--resume', '--steps', '6', '--backend', 'cpu', '--log-every', '2']);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/resuming .* from step 4/);
    const latest = path.join(run, 'checkpoints', readFileSync(path.join(run, 'checkpoints', 'latest'), 'utf8').trim());
    expect(JSON.parse(readFileSync(path.join(latest, 'checkpoint.json'), 'utf8')).step).toBe(6);
    const history = JSON.parse(readFileSync(path.join(latest, 'history.json'), 'utf8'));
    expect(history.map((h: { step: number }) => h.step)).toEqual([2, 4, 6]);
  }, 30_000);

  it('a checkpoint from another model: one line, exit 2', async () => {
    const flags = await cli(['train', '--out', run, '--resume', '--model', 'mmdit-tiny', '--data', 'mnist']);
    expect(flags.code).toBe(2);
    expect(lines(flags.stderr)).toHaveLength(1);
    expect(flags.stderr).toMatch(/holds a checkpoint of twinflow on 2d:checkerboard with mlp/);
    // a run whose config names another width than its tensors have
    const config = path.join(run, 'config.json');
    writeFileSync(config, JSON.stringify({ ...JSON.parse(readFileSync(config, 'utf8')), hidden: 24 }));
    const tensors = await cli(['sample', '--ckpt', run, '--backend', 'cpu']);
    expect(tensors.code).toBe(2);
    expect(lines(tensors.stderr)).toEqual([expect.stringMatching(/^backend: /), expect.stringMatching(/^error: .*params.safetensors does not match the model: shape of \S+: \[16,16\] in the file, \[16,24\] in the model/)]);
  }, 30_000);
});

it('Ctrl-C during training saves a loadable checkpoint and exits 0', async () => {
  const run = path.join(dir, 'interrupted');
  let sent = false;
  const r = await cli(['train', ...TINY, '--steps', '100000', '--out', run], (text, child) => {
    if (!sent && /^step \d+\/100000/m.test(text)) {
      sent = true;
      child.kill('SIGINT');
    }
  });
  expect(sent).toBe(true);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stdout).toMatch(/interrupted at step \d+ \(SIGINT\); checkpoint saved/);
  const config = JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8')) as RunConfig;
  const ckpt = await loadRun(run, config);
  expect(ckpt.step).toBeGreaterThanOrEqual(2);
  expect(ckpt.step).toBeLessThan(100000);
  expect(existsSync(path.join(run, 'loss.png'))).toBe(true);
}, 30_000);
