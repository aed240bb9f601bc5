// `npm run experiments`: the results table of the README, regenerated from scratch (or from the checkpoints
// already under runs/experiments/, which it resumes). Same backbone, steps and seeds for five objectives —
// flow matching (1 and 50 Euler steps), RCGM, TwinFlow, MeanFlow and shortcut models (1, 2, 4 NFE) — on the 2-D
// checkerboard and 8 gaussians (--objectives a,b: only those, their rows merged into the README's table), a λ sweep for TwinFlow at 1 NFE, and MNIST (mmdit-small on cuda, mmdit-tiny elsewhere, on its own
// backend) when it fits: otherwise one measured step gives the time it would need. Writes runs/experiments/results.json and
// the README section between the experiments markers; `--help` lists the scale flags.

import { existsSync } from 'node:fs';
import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Command, Option } from 'commander';
import * as tw from '../index.ts';
import { evaluate, type MetricRow, metricsTable } from './cli/eval.ts';
import { type DataSet, latestCheckpointOf, type ModelName, type ObjectiveName, readJson, type RunConfig, runPaths, writeJsonAtomic } from './cli/runs.ts';
import { samplePlot } from './cli/sample.ts';
import { train } from './cli/train.ts';
import { countParams, countTrainable } from '../models/nn/params.ts';
import { loraModelFor, modelFor } from '../models/registry.ts';

const list = (v: string) => v.split(',').map((s) => s.trim()).filter(Boolean);
const nums = (v: string) => list(v).map(Number);
const o = new Command('experiments')
  .addOption(new Option('--backend <name>').choices(['auto', 'cpu', 'webgpu', 'cuda']).default('auto'))
  .option('--data <list>', '2-D data sets', list, ['2d:checkerboard', '2d:8gauss'])
  .option('--steps <n>', '2-D training steps', Number, 4000)
  .option('--batch <n>', '2-D batch size', Number, 64)
  .option('--hidden <n>', 'MLP width (depth 3)', Number, 64)
  .option('--lr <x>', 'AdamW learning rate (2-D)', Number, 3e-3)
  .option('--objectives <list>', 'objectives of the 2-D rows; a subset trains only those and merges their rows into the README table', list, ['fm', 'rcgm', 'twinflow', 'meanflow', 'shortcut'])
  .option('--seeds <list>', 'seeds; rows show the mean (± sd over seeds)', nums, [0, 1])
  .option('--samples <n>', 'samples per 2-D metric', Number, 4096)
  .option('--lambda-data <name>', 'data set of the λ sweep', '2d:checkerboard')
  .option('--lambdas <list>', 'λ values of the sweep (fractions allowed)', list, ['0', '1/6', '1/3', '1/2', '2/3'])
  .option('--lora-ranks <list>', 'LoRA ranks of the flow matching → TwinFlow rows', nums, [4, 16])
  .option('--lora-steps <n>', 'TwinFlow LoRA steps from the flow-matching run', Number, 1000)
  .addOption(new Option('--mnist <when>', 'MNIST: run it, skip it, or auto (run on cuda only; elsewhere measure a step and estimate)').choices(['auto', 'run', 'skip']).default('auto'))
  .option('--mnist-steps <n>', 'MNIST training steps', Number, 1500)
  .option('--mnist-batch <n>', 'MNIST batch size', Number, 128)
  .option('--mnist-lr <x>', 'MNIST learning rate', Number, 2e-4)
  .option('--mnist-seeds <list>', 'MNIST seeds', nums, [0])
  .addOption(new Option('--mnist-backend <name>', 'MNIST backend').choices(['auto', 'cpu', 'webgpu', 'cuda']).default('auto'))
  .option('--out <dir>', 'where the runs go', 'runs/experiments')
  .parse(process.argv)
  .opts();

const OBJECTIVES: ObjectiveName[] = ['fm', 'rcgm', 'twinflow', 'meanflow', 'shortcut'];
const NFES: Record<ObjectiveName, number[]> = { fm: [1, 50], rcgm: [1, 2, 4], twinflow: [1, 2, 4], meanflow: [1, 2, 4], shortcut: [1, 2, 4] };
const LABEL: Record<ObjectiveName, string> = { fm: 'flow matching', rcgm: 'RCGM', twinflow: 'TwinFlow', meanflow: 'MeanFlow', shortcut: 'shortcut' };
const fraction = (s: string) => s.split('/').map(Number).reduce((a, b) => a / b);
const objectives = o.objectives as ObjectiveName[];
const unknown = objectives.filter((k) => !OBJECTIVES.includes(k));
if (unknown.length || !objectives.length) {
  process.stderr.write(`--objectives ${objectives.join(',')}: ${unknown.length ? `${unknown.join(', ')} is not` : 'give at least one of'} ${OBJECTIVES.join(', ')}\n`);
  process.exit(2);
}
/** Only some objectives: their 2-D rows replace theirs in the README table; the λ sweep and MNIST are not run. */
const partial = OBJECTIVES.some((k) => !objectives.includes(k));
const README = 'README.md', BEGIN = '<!-- experiments:begin -->', END = '<!-- experiments:end -->';
const log = (l: string) => process.stderr.write(`${l}\n`);

const t0 = performance.now();
const choice = await tw.setBackend(o.backend);
const device = tw.backendChoice().device;
log(`backend: ${choice.name} on ${device} (${choice.reason})`);

/** Trains (or resumes, or reuses) the run in `dir`; returns its training time per step (NaN when reused). */
const runs = { trained: 0, reused: 0 };
async function ensureTrained(run: RunConfig, dir: string): Promise<number> {
  const paths = runPaths(dir);
  const folder = await latestCheckpointOf(dir);
  let resume = false;
  if (folder) {
    const ckpt = path.join(folder, 'checkpoint.json');
    const saved = await readJson<RunConfig>(paths.config);
    const step = (await readJson<{ step: number }>(ckpt)).step;
    // key order does not matter: a run trained by `twinflow train` with the same flags counts as the same run
    const same = (a: RunConfig, b: RunConfig) => JSON.stringify(a, Object.keys(a).sort()) === JSON.stringify(b, Object.keys(b).sort());
    if (same(saved, run) && step === run.steps) {
      runs.reused++;
      return NaN;
    }
    resume = same({ ...saved, steps: run.steps }, run) && step < run.steps;
    if (!resume) await rm(dir, { recursive: true, force: true });
  }
  log(`train ${dir}${resume ? ' (resuming)' : ''}`);
  const r = await train({ run, out: dir, resume, checkpointEvery: Math.min(1000, Math.ceil(run.steps / 4)), logEvery: Math.min(500, Math.ceil(run.steps / 10)), progress: 'lines', log: (l) => log(`  ${l}`) });
  if (r.interrupted) process.exit(130);
  runs.trained++;
  return r.secPerStep;
}

interface Row extends MetricRow { data: string; objective: string; lambda?: number; seeds: number; sd?: Partial<Record<keyof MetricRow, number>> }

/** Mean (and sd) of each metric over the seeds' rows. */
function combine(rows: MetricRow[], extra: Omit<Row, keyof MetricRow | 'seeds' | 'sd'>): Row {
  const out: Row = { ...rows[0]!, ...extra, seeds: rows.length };
  const keys = ['slicedW2', 'energy', 'modes', 'precision', 'accuracy', 'frechet', 'diversity'] as const;
  for (const k of keys) {
    const v = rows.map((r) => r[k]).filter((x): x is number => x !== undefined);
    if (!v.length) continue;
    const mean = v.reduce((a, b) => a + b, 0) / v.length;
    out[k] = mean;
    if (v.length > 1) (out.sd ??= {})[k] = Math.sqrt(v.reduce((a, b) => a + (b - mean) ** 2, 0) / (v.length - 1));
  }
  return out;
}

/**
 * The metric rows of a trained run, from `eval.json` in its directory when that was computed for the same
 * checkpoint (file size and time), samplers and sample count, and by the same scoring; else evaluated now.
 */
const SCORING = 1; // bump when a metric's definition changes
async function evaluated(dir: string, nfes: number[], samples: number): Promise<MetricRow[]> {
  const weights = await stat(path.join((await latestCheckpointOf(dir))!, 'params.safetensors'));
  const key = JSON.stringify({ scoring: SCORING, nfes, samples, weights: [weights.size, weights.mtimeMs] });
  const file = path.join(dir, 'eval.json');
  if (existsSync(file)) {
    const cached = await readJson<{ key: string; rows: MetricRow[] }>(file);
    if (cached.key === key) return cached.rows;
  }
  log(`eval ${dir}`);
  const { rows } = await evaluate(dir, nfes, samples);
  await writeJsonAtomic(file, { key, rows });
  return rows;
}

/**
 * Runs every seed of a configuration (starting each from the same seed's run `initFrom`, when given); returns
 * the combined rows per sampler (the data row first).
 */
async function experiment(base: Omit<RunConfig, 'seed'>, name: string, nfes: number[], samples: number, seeds = o.seeds as number[], initFrom?: string): Promise<{ rows: Row[]; secPerStep: number[] }> {
  const perSeed: MetricRow[][] = [];
  const secPerStep: number[] = [];
  for (const seed of seeds) {
    const dir = path.join(o.out, `${name}-s${seed}`);
    const run = { ...base, seed, ...(initFrom ? { init: path.join(o.out, `${initFrom}-s${seed}`) } : {}) } as RunConfig;
    secPerStep.push(await ensureTrained(run, dir));
    perSeed.push(await evaluated(dir, nfes, samples));
  }
  const extra = { data: base.data, objective: LABEL[base.objective], ...(base.lambda !== undefined ? { lambda: base.lambda } : {}) };
  return { rows: perSeed[0]!.map((_, i) => combine(perSeed.map((rs) => rs[i]!), extra)), secPerStep };
}

const slug = (d: string) => d.replace(/^2d:/, '');

/** Sample pictures for the README: TwinFlow at 1 NFE from the first seed's run of each data set. */
const PICTURES = 'docs/results';
const pictures: { file: string; caption: string }[] = [];
async function picture(run: string, data: string, seed: number): Promise<void> {
  const file = path.join(PICTURES, `${data}-twinflow-1nfe.png`);
  await samplePlot({ ckpt: path.join(o.out, `${run}-s${seed}`), nfe: 1, out: file });
  pictures.push({ file, caption: `${data}, TwinFlow, 1 NFE` });
}
const results: { toy: Row[]; lambda: Row[]; lora: Row[]; mnist: Row[] | { notRun: string }; timing: Record<string, number> } = { toy: [], lambda: [], lora: [], mnist: [], timing: {} };

// Table cells: mean (± sd over seeds)
const f = (r: Row, k: keyof MetricRow, digits: number) => {
  const v = r[k] as number | undefined;
  if (v === undefined) return '';
  const sd = r.sd?.[k];
  return sd === undefined ? v.toFixed(digits) : `${v.toFixed(digits)} ± ${sd.toFixed(digits)}`;
};
const modes = (r: Row) => (r.modes === undefined ? '' : `${Number(r.modes.toFixed(1))}/${r.modesTotal}`);
const toyTable = (rows: Row[], first: string) => [
  `| ${first} | objective | sampler | sliced W2 | energy distance | modes covered | in modes |`, '| --- | --- | --- | --- | --- | --- | --- |',
  ...rows.map((r) => `| ${slug(r.data)} | ${r.objective} | ${r.sampler} | ${f(r, 'slicedW2', 4)} | ${f(r, 'energy', 4)} | ${modes(r)} | ${f(r, 'precision', 3)} |`),
].join('\n');

// 2-D: every objective on each data set, one data row each
for (const data of o.data as DataSet[]) {
  for (const objective of objectives) {
    const base = { data, model: 'mlp' as const, objective, ...(objective === 'twinflow' ? { lambda: 0.5 } : {}), hidden: o.hidden, steps: o.steps, batch: o.batch, lr: o.lr };
    const { rows, secPerStep } = await experiment(base, `${slug(data)}-${objective}`, NFES[objective], o.samples);
    if (objective === objectives[0]) results.toy.push({ ...rows[0]!, objective: 'data' });
    results.toy.push(...rows.slice(1));
    if (objective === 'twinflow') await picture(`${slug(data)}-twinflow`, slug(data), (o.seeds as number[])[0]!);
    results.timing[`${data} ${objective} s/step`] = secPerStep.filter(Number.isFinite).reduce((a, b, _, v) => a + b / v.length, 0);
  }
}

if (partial) await mergeRows();

// Flow matching → TwinFlow with LoRA (the paper's route for Qwen-Image): each seed's flow-matching run above,
// frozen, with rank-r adapters on its hidden and output layers trained by TwinFlow; beside TwinFlow from scratch
const loraSpec = { model: 'mlp', objective: 'twinflow', hidden: o.hidden, batch: o.batch };
for (const data of o.data as DataSet[]) {
  const total = countParams(modelFor({ ...loraSpec, data }).spec);
  const scratch = results.toy.filter((r) => r.data === data && r.objective === LABEL.twinflow);
  results.lora.push(...scratch.map((r) => ({ ...r, objective: `TwinFlow from scratch, ${o.steps} steps, all ${total} parameters` })));
  for (const rank of o.loraRanks as number[]) {
    const base = { data, model: 'mlp' as const, objective: 'twinflow' as const, lambda: 0.5, hidden: o.hidden, steps: o.loraSteps, batch: o.batch, lr: o.lr, lora: rank };
    const { rows } = await experiment(base, `${slug(data)}-fm-twinflow-lora${rank}`, NFES.twinflow, o.samples, o.seeds, `${slug(data)}-fm`);
    const trainable = countTrainable(loraModelFor({ ...loraSpec, data }, rank).spec);
    results.lora.push(...rows.slice(1).map((r) => ({ ...r, objective: `flow matching → TwinFlow (LoRA ${rank}), ${o.loraSteps} steps, ${trainable} trainable (${(100 * trainable / total).toFixed(1)}%)` })));
  }
}

// λ sweep: TwinFlow at 1 NFE (λ = 1/2 is the main TwinFlow run)
for (const l of o.lambdas as string[]) {
  const lambda = fraction(l);
  const name = lambda === 0.5 ? `${slug(o.lambdaData)}-twinflow` : `${slug(o.lambdaData)}-twinflow-lambda${l.replace('/', 'of')}`;
  const base = { data: o.lambdaData as DataSet, model: 'mlp' as const, objective: 'twinflow' as const, lambda, hidden: o.hidden, steps: o.steps, batch: o.batch, lr: o.lr };
  const { rows } = await experiment(base, name, [1], o.samples);
  results.lambda.push({ ...rows[1]!, sampler: `λ = ${l}` });
}

// MNIST: the same rows, scored by the classifier
const mnistChoice = o.mnist === 'skip' || o.mnistBackend === o.backend ? choice : await tw.setBackend(o.mnistBackend);
const mnistDevice = tw.backendChoice().device;
if (mnistChoice !== choice) log(`mnist backend: ${mnistChoice.name} on ${mnistDevice} (${mnistChoice.reason})`);
const mnistModel: ModelName = mnistChoice.name === 'cuda' ? 'mmdit-small' : 'mmdit-tiny';
const mnistBase = { data: 'mnist' as const, model: mnistModel, steps: o.mnistSteps, batch: o.mnistBatch, lr: o.mnistLr };
if (o.mnist === 'run' || (o.mnist === 'auto' && mnistChoice.name === 'cuda')) {
  const rows: Row[] = [];
  for (const objective of OBJECTIVES) {
    const r = await experiment({ ...mnistBase, objective, ...(objective === 'twinflow' ? { lambda: 0.5 } : {}) }, `mnist-${mnistModel}-${objective}`, NFES[objective], 1000, o.mnistSeeds);
    if (objective === OBJECTIVES[0]) rows.push({ ...r.rows[0]!, objective: 'data' });
    rows.push(...r.rows.slice(1));
    if (objective === 'twinflow') await picture(`mnist-${mnistModel}-twinflow`, 'mnist', (o.mnistSeeds as number[])[0]!);
    results.timing[`mnist ${objective} s/step`] = r.secPerStep.filter(Number.isFinite).reduce((a, b, _, v) => a + b / v.length, 0);
  }
  results.mnist = rows;
} else if (o.mnist === 'auto') {
  // one short TwinFlow run times a step (the first, compiling step left out)
  const dir = await mkdtemp(path.join(tmpdir(), 'twinflow-mnist-step-'));
  log(`mnist: timing ${mnistModel} steps on ${mnistChoice.name}`);
  const r = await train({ run: { ...mnistBase, objective: 'twinflow', lambda: 0.5, steps: 2, seed: 0 }, out: dir, resume: false, checkpointEvery: 1000, logEvery: 1000, progress: 'lines', log: () => {} });
  await rm(dir, { recursive: true, force: true });
  const hours = (r.secPerStep * o.mnistSteps * OBJECTIVES.length * (o.mnistSeeds as number[]).length) / 3600;
  results.timing['mnist twinflow s/step'] = r.secPerStep;
  results.mnist = { notRun: `not run: ${mnistModel} takes ${r.secPerStep.toFixed(1)} s per TwinFlow step (batch ${o.mnistBatch}) on ${mnistChoice.name}, so the ${OBJECTIVES.length} × ${o.mnistSteps}-step runs need about ${hours.toFixed(0)} hours; run \`npm run experiments -- --mnist run\` on a GPU` };
} else results.mnist = { notRun: 'not run (--mnist skip)' };

// --mnist skip keeps the README's MNIST table, goal and picture from the invocation that measured them
const kept = o.mnist === 'skip' ? keptMnist(await readFile(README, 'utf8')) : undefined;

// ---- report ----
const find = (rows: Row[], data: string, objective: string, nfe: number) => rows.find((r) => r.data === data && r.objective === objective && r.nfe === nfe);

const goals: string[] = [];
const verdict = (ok: boolean) => (ok ? '**met**' : '**missed**');
for (const data of o.data as string[]) {
  const [tw1, rc1, fm50] = [find(results.toy, data, 'TwinFlow', 1), find(results.toy, data, 'RCGM', 1), find(results.toy, data, 'flow matching', 50)];
  if (!tw1 || !rc1 || !fm50) continue;
  goals.push(`${slug(data)}: TwinFlow 1 NFE sliced W2 ${tw1.slicedW2!.toFixed(4)} vs RCGM 1 NFE ${rc1.slicedW2!.toFixed(4)}: beats RCGM ${verdict(tw1.slicedW2! < rc1.slicedW2!)}; ` +
    `vs flow matching at 50 steps ${fm50.slicedW2!.toFixed(4)} (ratio ${(tw1.slicedW2! / fm50.slicedW2!).toFixed(2)}): within 10% ${verdict(tw1.slicedW2! <= 1.1 * fm50.slicedW2!)}; ` +
    `modes ${modes(tw1)}: no collapse ${verdict(tw1.modes === tw1.modesTotal)}.`);
}
const mnistRows = Array.isArray(results.mnist) ? results.mnist : undefined;
if (mnistRows) {
  const t = find(mnistRows, 'mnist', 'TwinFlow', 1), r = find(mnistRows, 'mnist', 'RCGM', 1);
  // diversity only means something for samples that are digits: below half accuracy they are mostly not
  const digits = t ? t.accuracy! >= 0.5 : false;
  if (t && r) goals.push(`MNIST: TwinFlow 1 NFE accuracy ${t.accuracy!.toFixed(3)} vs RCGM ${r.accuracy!.toFixed(3)}, Fréchet ${t.frechet!.toFixed(1)} vs ${r.frechet!.toFixed(1)}; diversity ratio ${t.diversity!.toFixed(3)} ≥ 0.9 ` +
    (digits ? verdict(t.diversity! >= 0.9) : `**not measured**: conditional accuracy ${t.accuracy!.toFixed(3)} is near chance (0.1), the samples are not yet digits (the model is undertrained at this scale), so their spread says nothing about collapse.`));
} else goals.push(kept?.goal ?? 'MNIST diversity goal: not measured (MNIST not run).');
if (kept?.picture) pictures.push(kept.picture);

const minutes = (performance.now() - t0) / 60000;
const seeds = (o.seeds as number[]).join(', ');
const section = [
  `Measured by \`npm run experiments${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(' ')}` : ''}\` on ${choice.name} (${device}) in ${minutes.toFixed(0)} minutes` +
    `${runs.reused ? ` (${runs.reused} of ${runs.reused + runs.trained} runs trained earlier, by a previous invocation or \`twinflow train\` with the same settings; scores are kept in each run's eval.json)` : ''}. 2-D scale: MLP width ${o.hidden}, depth 3; ` +
    `${o.steps} steps of batch ${o.batch}, AdamW lr ${o.lr}, β (0.9, 0.99), gradient clip 1, EMA 0.99 (samples from the EMA); seed(s) ${seeds}; ` +
    `${o.samples} samples per metric against ${o.samples} held-out points. TwinFlow uses λ = 1/2 (1:1:1:1). Few-step sampling with stochasticity 1; ` +
    `flow matching samples with Euler steps, MeanFlow and shortcut with the any-step sampler (x ← x − (t − r)·F(x, t, r), step 1/NFE). "modes covered": 8-gaussian modes, or checkerboard cells, holding ≥ 5% of the samples; ` +
    `"in modes": share of samples within 3σ of a mode or inside a filled cell. The data row scores a second held-out sample: the noise floor.`,
  '',
  toyTable(results.toy, 'data'),
  '',
  `Flow matching → TwinFlow with LoRA: each seed's flow-matching run above (${o.steps} steps), its EMA weights frozen, rank-r adapters (alpha = r) ` +
    `on the hidden and output layers trained by TwinFlow (λ = 1/2, same batch and lr) for ${o.loraSteps} steps; the time embedders stay frozen. ` +
    'TwinFlow trained from scratch on all parameters for comparison; the share is of the model\'s parameters:',
  '',
  toyTable(results.lora, 'data').replace('| objective |', '| training |'),
  '',
  `λ sweep (TwinFlow, 1 NFE, ${slug(o.lambdaData)}; λ = batch share of the twin terms e2e + adv, 1/2 is the default):`,
  '',
  toyTable(results.lambda, 'data').replace('| objective | sampler |', '| objective | λ |'),
  '',
  mnistRows
    ? `MNIST (${mnistModel} on ${mnistChoice.name} (${mnistDevice}), ${o.mnistSteps} steps of batch ${o.mnistBatch}, lr ${o.mnistLr}, seed(s) ${(o.mnistSeeds as number[]).join(', ')}; 1,000 samples, 100 per digit, scored by the fixed classifier of models/metrics/classifier.ts):\n\n` +
      metricsTable(mnistRows, [['objective', (r) => (r as Row).objective], ['sampler', (r) => r.sampler]])
    : (kept?.table ?? `MNIST: ${(results.mnist as { notRun: string }).notRun}.`),
  '',
  'Goals:',
  '',
  ...goals.map((g) => `- ${g}`),
  ...(pictures.length ? ['', `Samples (first seed; samples over held-out data for 2-D, one row per digit for MNIST):`, '', pictures.map((p) => `![${p.caption}](${p.file})`).join(' ')] : []),
].join('\n');

await writeJsonAtomic(path.join(o.out, 'results.json'), { options: o, backend: { ...choice, device }, mnistBackend: { ...mnistChoice, device: mnistDevice }, minutes, runs, ...results });
const readme = await readFile(README, 'utf8');
const at = [readme.indexOf(BEGIN), readme.indexOf(END)];
const updated = at[0]! >= 0 && at[1]! > at[0]! ? `${readme.slice(0, at[0]! + BEGIN.length)}\n${section}\n${readme.slice(at[1]!)}` : `${readme.trimEnd()}\n\n## Results\n\n${BEGIN}\n${section}\n${END}\n`;
await writeFile(README, updated);
console.log(section);
console.log(`\nwritten: ${README} (between the experiments markers), ${path.join(o.out, 'results.json')}`);
process.exit(0);

/**
 * The MNIST part of the README's experiments section (its table with the paragraph above it, its goal line and
 * its picture), for an invocation that skips MNIST. A table kept the first time is headed by the command that
 * measured it (the section's first line); kept again, it already is.
 */
function keptMnist(readme: string): { table: string; goal?: string; picture?: { file: string; caption: string } } | undefined {
  const section = readme.slice(readme.indexOf(BEGIN) + BEGIN.length, readme.indexOf(END));
  const paragraphs = section.split('\n\n');
  const at = paragraphs.findIndex((p, i) => p.trim().startsWith('MNIST (') && paragraphs[i + 1]?.trim().startsWith('|'));
  if (at < 0) return undefined;
  const heading = paragraphs[at - 1]?.trim().startsWith('MNIST rows kept')
    ? paragraphs[at - 1]!.trim()
    : `MNIST rows kept from the invocation that measured them (${/^\s*Measured by (`[^`]+`)/.exec(section)?.[1] ?? 'an earlier one'}): \`--mnist skip\` leaves them as they were.`;
  const table = `${heading}\n\n${paragraphs[at]!.trim()}\n\n${paragraphs[at + 1]!.trim()}`;
  const goal = /^- (MNIST: .*)$/m.exec(section)?.[1];
  const picture = /!\[([^\]]*mnist[^\]]*)\]\(([^)]+)\)/.exec(section);
  return { table, ...(goal ? { goal } : {}), ...(picture ? { picture: { caption: picture[1]!, file: picture[2]! } } : {}) };
}

/**
 * --objectives with a subset: their rows (not the data rows, which the table has) replace any rows of theirs in
 * the README's 2-D table, after the other rows of the same data set, with a note saying how they were measured.
 */
async function mergeRows(): Promise<never> {
  const readme = await readFile(README, 'utf8');
  const [begin, end] = [readme.indexOf(BEGIN), readme.indexOf(END)];
  if (!(begin >= 0 && end > begin)) {
    process.stderr.write(`--objectives ${objectives.join(',')}: ${README} has no experiments table to merge rows into; run all objectives once\n`);
    process.exit(2);
  }
  const lines = readme.slice(begin, end).split('\n');
  const header = lines.findIndex((l) => l.startsWith('| data | objective | sampler |'));
  let stop = header + 2;
  while (lines[stop]?.startsWith('| ')) stop++;
  const cell = (l: string, i: number) => l.split('|')[i]!.trim();
  const labels = objectives.map((k) => LABEL[k]);
  const kept = lines.slice(header + 2, stop).filter((l) => !labels.includes(cell(l, 2)));
  const fresh = toyTable(results.toy.filter((r) => r.objective !== 'data'), 'data').split('\n').slice(2);
  const sets = [...new Set([...kept, ...fresh].map((l) => cell(l, 1)))];
  const rows = sets.flatMap((d) => [...kept.filter((l) => cell(l, 1) === d), ...fresh.filter((l) => cell(l, 1) === d)]);
  const note = `Rows of ${labels.join(' and ')}: measured by \`npm run experiments -- ${process.argv.slice(2).join(' ')}\` on ${choice.name} (${device}) in ${((performance.now() - t0) / 60000).toFixed(0)} minutes` +
    `${runs.reused ? ` (${runs.reused} of ${runs.reused + runs.trained} runs trained earlier with the same settings, by \`twinflow train\` or a previous invocation; scores kept in each run's eval.json)` : ''}, ` +
    `with the 2-D settings above (${o.steps} steps of batch ${o.batch}, lr ${o.lr}, seed(s) ${(o.seeds as number[]).join(', ')}); the other rows are from the invocation above. ` +
    `${labels.join(' and ')} sample with the any-step sampler: x ← x − (t − r)·F(x, t, r) on a uniform grid (step d = 1/NFE).`;
  const after = lines.slice(stop);
  // a previous merge's note goes when this one covers all its rows
  const covered = (l: string) => /^Rows of (.+?): measured/.exec(l)?.[1]!.split(' and ').every((x) => labels.includes(x)) ?? false;
  while (covered(after[1] ?? '')) after.splice(0, 2);
  const merged = [...lines.slice(0, header + 2), ...rows, '', note, ...after].join('\n');
  await writeFile(README, readme.slice(0, begin) + merged + readme.slice(end));
  console.log([...lines.slice(header, header + 2), ...rows, '', note].join('\n'));
  console.log(`\nmerged into ${README} (between the experiments markers)`);
  process.exit(0);
}

