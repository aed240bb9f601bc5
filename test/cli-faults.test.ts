// Runs that survive faults, through the CLI as a user runs it: kill -9 at random moments (many inside a
// save) and resume each time, ending bitwise equal to an uninterrupted run; a full disk (a 400 KB tmpfs,
// where mounting is allowed); the non-finite guard; SIGTERM and a second signal during the save; runs in the
// older single-folder layout; raw samples; and one clear line, exit 2, for each run-folder problem.

import { spawnSync } from 'node:child_process';
import { cpSync, existsSync, mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { saveCheckpoint } from '../models/checkpoint/checkpoint.ts';
import { decodeSafetensors, encodeSafetensors } from '../models/checkpoint/safetensors.ts';
import * as tw from 'twinflow';
import { compareRuns, killAndResume } from '../scripts/kill-harness.ts';
import { latestCheckpointOf, type RunConfig } from '../scripts/cli/runs.ts';
import { initialState, loadRun, train } from '../scripts/cli/train.ts';
import { rng } from './support/rng.ts';
import { cli } from './support/cli.ts';

const TINY = ['--data', '2d:checkerboard', '--model', 'mlp', '--hidden', '16', '--batch', '16', '--backend', 'cpu'];

const errorLines = (s: string) => s.split('\n').filter((l) => l.startsWith('error:'));
const latestStep = async (dir: string) => JSON.parse(readFileSync(path.join((await latestCheckpointOf(dir))!, 'checkpoint.json'), 'utf8')).step as number;

let dir: string;
let base: string; // a finished 4-step run, copied by the tests that damage it
beforeAll(async () => {
  dir = mkdtempSync(path.join(tmpdir(), 'twinflow-faults-'));
  base = path.join(dir, 'base');
  const r = await cli(['train', ...TINY, '--steps', '4', '--checkpoint-every', '2', '--log-every', '2', '--out', base]);
  expect(r.code, r.stderr).toBe(0);
}, 30_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const copyOf = (name: string) => {
  const to = path.join(dir, name);
  cpSync(base, to, { recursive: true });
  return to;
};

it('kill -9 at random moments, many inside a save: every run folder resumes, and ends bitwise equal to an uninterrupted run', async () => {
  const steps = 20;
  const args = [...TINY, '--steps', String(steps), '--checkpoint-every', '1', '--log-every', '1', '--keep-checkpoints', '2'];
  const killed = path.join(dir, 'killed'), straight = path.join(dir, 'straight');
  const report = await killAndResume({ args, dir: killed, steps, kills: 4, killAfter: { min: 1, max: 4, jitterMs: 20 }, random: rng(7) });
  console.log(`kill -9 harness: ${report.kills} kills (${report.midSave} inside a save), resumed from steps ${report.resumedFrom.join(' ')}`);
  expect(report.kills).toBe(4);
  // the uninterrupted run in this process (no second process start): the same flags
  await tw.setBackend('cpu');
  const run: RunConfig = { data: '2d:checkerboard', model: 'mlp', objective: 'twinflow', lambda: 0.5, hidden: 16, steps, batch: 16, lr: 3e-3, seed: 0 };
  await train({ run, out: straight, resume: false, checkpointEvery: steps, logEvery: steps, progress: 'lines', log: () => {} });
  expect(JSON.parse(readFileSync(path.join(killed, 'config.json'), 'utf8'))).toEqual(run);
  expect(await compareRuns(killed, straight)).toMatchObject({ maxAbs: 0, bitwise: true });
  const names = readdirSync(path.join(killed, 'checkpoints'));
  expect(names.filter((n) => n.startsWith('.tmp-'))).toEqual([]);
  expect(names.sort()).toEqual(['latest', 'step-00000019', 'step-00000020']);
}, 50_000);

/** Why a 400 KB tmpfs cannot be mounted here, or undefined when it can. */
function tmpfsUnavailable(at: string): string | undefined {
  if (process.platform !== 'linux') return `tmpfs needs Linux, this is ${process.platform}`;
  if (process.getuid?.() !== 0) return 'mounting a tmpfs needs root';
  mkdirSync(at, { recursive: true });
  const r = spawnSync('mount', ['-t', 'tmpfs', '-o', 'size=400k', 'tmpfs', at], { encoding: 'utf8' });
  return r.status === 0 ? undefined : `mount -t tmpfs failed: ${(r.stderr || r.error?.message || '').trim()}`;
}

describe('a full disk', () => {
  const at = path.join(tmpdir(), `twinflow-tmpfs-${process.pid}`);
  let why: string | undefined;
  beforeAll(() => {
    why = tmpfsUnavailable(at);
    if (why) console.warn(`disk-full test: skipping: ${why}`);
  });
  afterAll(() => {
    if (!why) spawnSync('umount', [at]);
    rmSync(at, { recursive: true, force: true });
  });
  it('ENOSPC during a save: one line saying so and that the previous checkpoint is intact; sample and --resume accept the run', async (ctx) => {
    if (why) ctx.skip();
    const run = path.join(at, 'run');
    // hidden 64: one checkpoint takes about 320 KB, so the second does not fit
    const r = await cli(['train', ...TINY, '--hidden', '64', '--steps', '6', '--checkpoint-every', '2', '--log-every', '2', '--out', run]);
    expect(r.code).toBe(1);
    expect(errorLines(r.stderr)).toEqual([`error: could not save the checkpoint of step 4 in ${run}/checkpoints: no space left on device (ENOSPC); the previous checkpoint ${run}/checkpoints/step-00000002 is intact; once that is fixed, continue with: twinflow train --out ${run} --resume`]);
    expect(r.stderr).not.toMatch(/\n\s+at /); // no stack
    expect(readdirSync(path.join(run, 'checkpoints')).sort()).toEqual(['latest', 'step-00000002']);
    const png = path.join(dir, 'full-disk.png');
    const s = await cli(['sample', '--ckpt', run, '--backend', 'cpu', '--out', png]);
    expect(s.code, s.stderr).toBe(0);
    // room again (elsewhere): the run resumes from step 2
    const moved = path.join(dir, 'from-full-disk');
    cpSync(run, moved, { recursive: true });
    const resumed = await cli(['train', '--out', moved, '--resume', '--backend', 'cpu', '--log-every', '2']);
    expect(resumed.code, resumed.stderr).toBe(0);
    expect(resumed.stderr).toMatch(/resuming .* from step 2/);
    expect(await latestStep(moved)).toBe(6);
  }, 50_000);
});

describe('non-finite values', () => {
  it('--lr 10: training stops naming the step and the terms, keeps the last finite checkpoint, exits 1', async () => {
    const run = path.join(dir, 'diverged');
    const r = await cli(['train', '--data', '2d:checkerboard', '--backend', 'cpu', '--lr', '10', '--steps', '60', '--checkpoint-every', '2', '--log-every', '2', '--out', run]);
    expect(r.code).toBe(1);
    const [line] = errorLines(r.stderr);
    expect(line).toMatch(/^error: step (\d+): non-finite (loss term (adv|any|mul|e2e|rectify)|loss|gradients)(, [^;]+)?; training stopped and the last finite checkpoint is step (\d+) \(.*step-\d+\)\. Lower --lr, or pass --on-nan skip/);
    const [badStep, keptStep] = [Number(/step (\d+):/.exec(line!)![1]), Number(/checkpoint is step (\d+)/.exec(line!)![1])];
    expect(keptStep).toBeLessThan(badStep);
    expect(await latestStep(run)).toBe(keptStep);
    expect(existsSync(path.join(run, 'loss.png'))).toBe(true);
    const s = await cli(['sample', '--ckpt', run, '--backend', 'cpu', '--out', path.join(dir, 'diverged.png')]);
    expect(s.code, s.stderr).toBe(0); // the kept checkpoint is finite
  }, 50_000);

  it('--on-nan skip leaves such steps out and finishes', async () => {
    const r = await cli(['train', '--data', '2d:checkerboard', '--backend', 'cpu', '--lr', '10', '--steps', '30', '--checkpoint-every', '10', '--log-every', '10', '--on-nan', 'skip', '--out', path.join(dir, 'skipped')]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stderr).toMatch(/step \d+: non-finite .*; its update was skipped \(\d+ steps skipped so far; --on-nan skip\)/);
    expect(r.stdout).toMatch(/trained to step 30 .*; \d+ steps with non-finite values skipped/);
  }, 30_000);

  it('sample and eval refuse non-finite weights, naming the file and tensor', async () => {
    const run = copyOf('nan-weights');
    const file = path.join((await latestCheckpointOf(run))!, 'ema.safetensors');
    const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(file)));
    const t = tensors.get('out.w')!;
    t.data[1] = NaN;
    const { sha256: _, ...meta } = metadata;
    writeFileSync(file, encodeSafetensors(tensors, meta));
    for (const cmd of ['sample', 'eval']) {
      const r = await cli([cmd, '--ckpt', run, '--backend', 'cpu']);
      expect(r.code).toBe(2);
      expect(errorLines(r.stderr)).toEqual([`error: ${file}: tensor out.w holds 1 non-finite values (NaN or ±Infinity) of 32: the weights diverged; use an earlier checkpoint (--ckpt ${run}/checkpoints/step-...) or retrain with a lower --lr`]);
    }
  }, 30_000);
});

it('SIGTERM saves and exits 0; a second signal during the save waits for it; loss.png and history are kept', async () => {
  const run = path.join(dir, 'terminated');
  let sent = 0;
  const r = await cli(['train', ...TINY, '--steps', '100000', '--checkpoint-every', '1', '--log-every', '1', '--out', run], (text, child) => {
    if (sent === 0 && /^step 3\//m.test(text)) child.kill('SIGTERM'), sent++;
    else if (sent === 1 && /SIGTERM: finishing the step/.test(text)) child.kill('SIGINT'), child.kill('SIGTERM'), sent++;
  });
  expect(sent).toBe(2);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/(SIGINT|SIGTERM) again: .*waiting for it to finish so that the checkpoint, history and loss\.png stay whole/);
  expect(r.stdout).toMatch(/interrupted at step (\d+) \(SIGTERM\); checkpoint saved/);
  const step = Number(/interrupted at step (\d+)/.exec(r.stdout)![1]);
  expect(await latestStep(run)).toBe(step);
  const history = JSON.parse(readFileSync(path.join((await latestCheckpointOf(run))!, 'history.json'), 'utf8'));
  expect(history.at(-1).step).toBe(step);
  expect(existsSync(path.join(run, 'loss.png'))).toBe(true);
}, 30_000);

it('a run in the older layout (checkpoint/ and history.json) samples and resumes into step folders', async () => {
  const run = path.join(dir, 'legacy');
  const config: RunConfig = { data: '2d:checkerboard', model: 'mlp', objective: 'twinflow', lambda: 0.5, hidden: 16, steps: 4, batch: 16, lr: 3e-3, seed: 0 };
  const { params, ema, optState } = initialState(config);
  await saveCheckpoint(path.join(run, 'checkpoint'), { params, ema, optState, step: 2 }, config);
  writeFileSync(path.join(run, 'config.json'), JSON.stringify(config));
  writeFileSync(path.join(run, 'history.json'), JSON.stringify([{ step: 2, loss: 1, terms: {}, stepsPerSec: 1 }]));
  const s = await cli(['sample', '--ckpt', run, '--backend', 'cpu']);
  expect(s.code, s.stderr).toBe(0);
  const r = await cli(['train', '--out', run, '--resume', '--backend', 'cpu', '--log-every', '2']);
  expect(r.code, r.stderr).toBe(0);
  expect(r.stderr).toMatch(/resuming .* from step 2 \(.*checkpoint\)/);
  expect(await latestStep(run)).toBe(4);
  expect(JSON.parse(readFileSync(path.join((await latestCheckpointOf(run))!, 'history.json'), 'utf8')).map((h: { step: number }) => h.step)).toEqual([2, 4]);
}, 30_000);

it('sample --format npy and safetensors write the raw samples beside the plot', async () => {
  const out = path.join(dir, 'raw', 'points.png');
  for (const format of ['npy', 'safetensors']) {
    const r = await cli(['sample', '--ckpt', base, '--backend', 'cpu', '--nfe', '2', '--out', out, '--format', format]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`samples: ${out}, ${out.replace('.png', `.${format}`)}`);
  }
  const npy = readFileSync(out.replace('.png', '.npy'));
  const headerLength = npy.readUInt16LE(8);
  expect(npy.subarray(0, 8).toString('latin1')).toBe('\x93NUMPY\x01\x00');
  expect((10 + headerLength) % 64).toBe(0);
  expect(npy.subarray(10, 10 + headerLength).toString()).toMatch(/^\{'descr': '<f4', 'fortran_order': False, 'shape': \(2000, 2\), \} *\n$/);
  const values = new Float32Array(npy.buffer.slice(npy.byteOffset + 10 + headerLength, npy.byteOffset + npy.length));
  const { tensors, metadata } = decodeSafetensors(new Uint8Array(readFileSync(out.replace('.png', '.safetensors'))));
  expect(tensors.get('samples')!.shape).toEqual([2000, 2]);
  expect(Array.from(tensors.get('samples')!.data)).toEqual(Array.from(values));
  expect(metadata).toMatchObject({ nfe: '2', step: '4', data: '2d:checkerboard' });
}, 30_000);

it('sample --nfe past 16 steps streams one compiled step at a time; the samples stay finite and near the data', async () => {
  const out = path.join(dir, 'long', 'points.png');
  const r = await cli(['sample', '--ckpt', base, '--backend', 'cpu', '--nfe', '24', '--out', out, '--format', 'safetensors']);
  expect(r.code, r.stderr).toBe(0);
  const x = decodeSafetensors(new Uint8Array(readFileSync(out.replace('.png', '.safetensors')))).tensors.get('samples')!.data;
  expect(x.length).toBe(4000);
  expect(x.every((v) => Number.isFinite(v) && Math.abs(v) < 10)).toBe(true);
}, 30_000);

describe('run-folder problems: one line naming the file and the fix, exit 2', () => {
  it('a truncated or missing config.json, a damaged pointer, --out naming a file', async () => {
    const run = copyOf('damaged');
    const config = path.join(run, 'config.json');
    const manifest = path.join((await latestCheckpointOf(run))!, 'checkpoint.json');
    writeFileSync(config, readFileSync(config, 'utf8').slice(0, 17));
    const cases: [string[], string][] = [
      [['sample', '--ckpt', run], `${config}: not valid JSON (.*): the file is damaged; the manifest ${manifest} holds a copy \\(its "config" field\\): write that into ${config}`],
      [['train', '--out', run, '--resume'], `${config}: not valid JSON`],
    ];
    for (const [args, message] of cases) {
      const r = await cli(args);
      expect(r.code, r.stderr).toBe(2);
      expect(errorLines(r.stderr)).toHaveLength(1);
      expect(r.stderr).toMatch(new RegExp(`^error: ${message.replaceAll('/', '\\/')}`, 'm'));
    }
    rmSync(config);
    const missing = await cli(['eval', '--ckpt', run]);
    expect(missing.stderr).toMatch(new RegExp(`^error: ${config}: not found; the manifest ${manifest} holds a copy`, 'm'));
    expect(missing.code).toBe(2);
    cpSync(path.join(base, 'config.json'), config);
    writeFileSync(path.join(run, 'checkpoints', 'latest'), 'step-00000099\n');
    const pointer = await cli(['sample', '--ckpt', run]);
    expect(pointer.code).toBe(2);
    expect(errorLines(pointer.stderr)).toEqual([`error: ${run}/checkpoints/latest: names step-00000099, which is not in ${run}/checkpoints; write the name of the newest folder there into it`]);
    const params = path.join(run, 'checkpoints', 'step-00000004', 'params.safetensors');
    writeFileSync(params, readFileSync(params).subarray(0, 100));
    writeFileSync(path.join(run, 'checkpoints', 'latest'), 'step-00000004\n');
    const truncated = await cli(['sample', '--ckpt', run, '--backend', 'cpu']);
    expect(truncated.code).toBe(2);
    expect(errorLines(truncated.stderr)).toEqual([expect.stringContaining(`error: ${params}: header length`)]);
    expect(truncated.stderr).toContain(`the file is truncated; other checkpoints: ${run}/checkpoints/step-00000002 (pass one to --ckpt, or write its folder name into ${run}/checkpoints/latest to resume from it)`);
    const file = path.join(dir, 'a-file');
    writeFileSync(file, 'x');
    for (const args of [['train', ...TINY, '--out', file], ['sample', '--ckpt', file]]) {
      const r = await cli(args);
      expect(r.code).toBe(2);
      expect(errorLines(r.stderr)).toEqual([expect.stringMatching(new RegExp(`${file} is a file; pass .*director`))]);
    }
  }, 30_000);

  it('--resume: --steps below the checkpoint is refused, extending it is logged; no silent rewrite of config.json', async () => {
    const run = copyOf('extended');
    const config = readFileSync(path.join(run, 'config.json'), 'utf8');
    const below = await cli(['train', '--out', run, '--resume', '--steps', '2', '--backend', 'cpu']);
    expect(below.code).toBe(2);
    expect(errorLines(below.stderr)).toEqual(['error: --steps 2: the checkpoint is already at step 4; pass --steps above 4 to train further']);
    expect(readFileSync(path.join(run, 'config.json'), 'utf8')).toBe(config);
    writeFileSync(path.join(run, 'config.json.tmp-99999'), '{"da'); // what a crash inside writes leaves
    mkdirSync(path.join(run, 'checkpoints', '.tmp-step-00000006-99999'));
    const same = await cli(['train', '--out', run, '--resume', '--backend', 'cpu']);
    expect(same.code, same.stderr).toBe(0);
    expect(same.stderr).toContain(`removed what an interrupted save left: ${run}/config.json.tmp-99999, ${run}/checkpoints/.tmp-step-00000006-99999`);
    expect(readdirSync(run).filter((n) => n.includes('.tmp-'))).toEqual([]);
    expect(readFileSync(path.join(run, 'config.json'), 'utf8')).toBe(config);
    const more = await cli(['train', '--out', run, '--resume', '--steps', '6', '--backend', 'cpu', '--log-every', '2']);
    expect(more.code, more.stderr).toBe(0);
    expect(more.stderr).toMatch(/--steps 6: the run's total changes from 4 to 6 steps \(recorded in .*config\.json\)/);
    expect(JSON.parse(readFileSync(path.join(run, 'config.json'), 'utf8')).steps).toBe(6);
  }, 40_000);

  it.each([
    ['--lambda 1/3/5', ['train', '--data', '2d:moons', '--lambda', '1/3/5', '--out', 'x'], /--lambda.*expected a number in \[0, 1\], e\.g\. 0\.5 or 1\/3/],
    ['--hidden 100000', ['train', '--data', '2d:moons', '--hidden', '100000', '--backend', 'cpu', '--out', 'x'], /^error: --hidden 100000: one weight would take 37\.3 GiB, over the 4\.0 GiB a tensor can hold; choose a smaller --hidden$/m],
    ['eval --samples 1e8', ['eval', '--ckpt', 'BASE', '--samples', '100000000', '--backend', 'cpu'], /^error: --samples 100000000: over 262144, the most the sliced Wasserstein distance sorts at once \(256 projections\); pass at most 262144$/m],
  ])('%s', async (_, args, message) => {
    const r = await cli(args.map((a) => (a === 'BASE' ? base : a)));
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(message);
  }, 30_000);
});

it('loadRun reads the latest step folder', async () => {
  const config = JSON.parse(readFileSync(path.join(base, 'config.json'), 'utf8')) as RunConfig;
  expect((await loadRun(base, config)).step).toBe(4);
});
