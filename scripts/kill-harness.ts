// Kills `twinflow train` with SIGKILL at random moments and resumes it each time, checking after every kill
// that the run folder holds a loadable checkpoint (or none yet), then compares the final weights with an
// uninterrupted run. Used by the fault-injection test (cpu, a few kills) and by `npm run soak` (thousands of
// steps on WebGPU). Kills land at a random step, a random few milliseconds after its progress line, so many
// fall inside a checkpoint save.

import { spawn } from 'node:child_process';
import { existsSync, readdirSync } from 'node:fs';
import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { decodeSafetensors, type HostTensor } from '../models/checkpoint/safetensors.ts';
import { latestCheckpointOf, readRunConfig, runPaths } from './cli/runs.ts';
import { loadRun } from './cli/train.ts';

const BIN = path.resolve(import.meta.dirname, 'cli/bin.mjs');

export interface KillOptions {
  /** `twinflow train` flags, without --out and --resume. */
  args: string[];
  dir: string;
  /** Total steps (the --steps of args). */
  steps: number;
  kills: number;
  /** A kill comes after a random number of steps in [min, max] of each session, then 0–jitterMs later. */
  killAfter: { min: number; max: number; jitterMs: number };
  random?: () => number;
  log?: (line: string) => void;
}

export interface KillReport {
  kills: number;
  /** The checkpoint step found after each kill (−1: none yet). */
  resumedFrom: number[];
  /** Kills that landed inside a save (they left a temporary or an unswitched step folder behind). */
  midSave: number;
  /** Sessions stopped cleanly by a signal from outside the harness (then resumed too). */
  external: number;
}

interface Session { code: number | null; signal: NodeJS.Signals | null; stderr: string }

/** Runs one training session; `killAt(step)` says whether to SIGKILL it after that progress line. */
function session(args: string[], killAt: (step: number) => boolean, jitterMs: number, random: () => number): Promise<Session> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, 'train', ...args], { stdio: ['ignore', 'ignore', 'pipe'] });
    let stderr = '';
    let killing = false;
    child.stderr.on('data', (d: Buffer) => {
      stderr += d;
      if (killing) return;
      const steps = [...String(d).matchAll(/^step (\d+)\//gm)].map((m) => Number(m[1]));
      if (steps.some(killAt)) {
        killing = true;
        setTimeout(() => child.kill('SIGKILL'), random() * jitterMs);
      }
    });
    child.on('error', reject);
    child.on('close', (code, signal) => resolve({ code, signal, stderr: stderr.slice(-4000) }));
  });
}

/** The step of the run's latest checkpoint after checking that it loads (−1 when it has none yet). */
async function checkRun(dir: string): Promise<number> {
  if (!(await latestCheckpointOf(dir))) return -1;
  const { step } = await loadRun(dir, await readRunConfig(dir));
  return step;
}

/** Whether a save was cut short: temporaries, or step folders past the latest checkpoint `at`. */
function leftovers(dir: string, at: number): boolean {
  const names = existsSync(runPaths(dir).checkpoints) ? readdirSync(runPaths(dir).checkpoints) : [];
  return names.some((n) => n.startsWith('.tmp-') || Number(/^step-(\d+)$/.exec(n)?.[1] ?? -1) > at);
}

/** Trains `steps` steps in `dir` through `kills` SIGKILLs, resuming after each; throws when a session fails. */
export async function killAndResume(o: KillOptions): Promise<KillReport> {
  const random = o.random ?? Math.random;
  const report: KillReport = { kills: 0, resumedFrom: [], midSave: 0, external: 0 };
  let resume = false;
  for (;;) {
    const last = report.kills === o.kills;
    const target = o.killAfter.min + Math.floor(random() * (o.killAfter.max - o.killAfter.min + 1));
    let first = -1;
    const s = await session([...o.args, '--out', o.dir, ...(resume ? ['--resume'] : [])], (step) => {
      if (first < 0) first = step;
      return !last && step - first >= target;
    }, o.killAfter.jitterMs, random);
    if (s.signal === 'SIGKILL') {
      report.kills++;
      const at = await checkRun(o.dir);
      report.resumedFrom.push(at);
      if (leftovers(o.dir, at)) report.midSave++;
      o.log?.(`kill ${report.kills}: the run resumes from ${at < 0 ? 'scratch (no checkpoint yet)' : `step ${at}`}`);
      // before the first config.json there is nothing to resume: start afresh
      resume = existsSync(runPaths(o.dir).config);
      continue;
    }
    if (s.code !== 0) throw new Error(`a training session in ${o.dir} failed (exit ${s.code}):\n${s.stderr}`);
    const at = await checkRun(o.dir);
    if (at === o.steps) return report;
    // stopped cleanly before the end: a SIGINT or SIGTERM from outside (it saved); resume it
    o.log?.(`a session stopped cleanly at step ${at} (${/^(SIG\w+): finishing/m.exec(s.stderr)?.[1] ?? 'no signal named'}); resuming`);
    report.external++;
    resume = true;
  }
}

/** Runs training uninterrupted, in one session. */
export async function trainOnce(args: string[], dir: string): Promise<void> {
  const s = await session([...args, '--out', dir], () => false, 0, Math.random);
  if (s.code !== 0) throw new Error(`the uninterrupted run in ${dir} failed (exit ${s.code}):\n${s.stderr}`);
}

/** The tensors of a run's latest checkpoint part (params, ema or optimizer). */
async function tensorsOf(dir: string, part: string): Promise<Map<string, HostTensor>> {
  const file = path.join((await latestCheckpointOf(dir))!, `${part}.safetensors`);
  return decodeSafetensors(new Uint8Array(await readFile(file)), file).tensors;
}

/** The largest absolute difference between two runs' final params, EMA and optimizer state, and whether every bit agrees. */
export async function compareRuns(a: string, b: string): Promise<{ maxAbs: number; bitwise: boolean; values: number }> {
  let maxAbs = 0, bitwise = true, values = 0;
  for (const part of ['params', 'ema', 'optimizer']) {
    const [ta, tb] = [await tensorsOf(a, part), await tensorsOf(b, part)];
    for (const [name, x] of ta) {
      const y = tb.get(name);
      if (!y || y.data.length !== x.data.length) throw new Error(`${part}.${name}: not in both runs with one shape`);
      for (let i = 0; i < x.data.length; i++) {
        const d = Math.abs(x.data[i]! - y.data[i]!);
        maxAbs = Number.isNaN(d) ? Infinity : Math.max(maxAbs, d);
        if (!Object.is(x.data[i], y.data[i])) bitwise = false;
      }
      values += x.data.length;
    }
  }
  return { maxAbs, bitwise, values };
}

