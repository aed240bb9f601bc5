// A run served as static files (config.json + checkpoint/): its config, its model rebuilt from the config
// alone (models/registry.ts) and its EMA parameters (the only part of the checkpoint fetched).

import * as tw from '../../web.ts';
import { loadCheckpoint } from '../../models/checkpoint/fetch.ts';
import { initParams } from '../../models/nn/params.ts';
import { type Model, modelFor, type RunSpec } from '../../models/registry.ts';

export type RunConfig = RunSpec & { seed: number; steps: number; lr: number };

export interface LoadedRun {
  url: string;
  config: RunConfig;
  model: Model;
  ema: unknown;
  step: number;
}

async function fetchJson(url: string): Promise<unknown> {
  const res = await fetch(url);
  if (!res.ok) throw new Error(`${url}: ${res.status} ${res.statusText || 'error'}${res.status === 404 ? ': not found, no run there' : ''}`);
  try {
    return await res.json();
  } catch (e) {
    throw new Error(`${url}: not valid JSON (${(e as Error).message})`);
  }
}

/** The checkpoint folder of a run: the step folder checkpoints/latest names, as `twinflow train` writes them. */
async function checkpointUrl(url: string): Promise<string> {
  const pointer = `${url}checkpoints/latest`;
  const res = await fetch(pointer);
  if (!res.ok) throw new Error(`${pointer}: ${res.status} ${res.statusText || 'error'}${res.status === 404 ? ': not found, no checkpoint in this run' : ''}`);
  const name = (await res.text()).trim();
  // a dev server answers unknown paths with the page itself
  if (!/^step-\d+$/.test(name)) throw new Error(`${pointer}: does not name a step folder (step-NNNNNNNN): not a twinflow run`);
  return `${url}checkpoints/${name}/`;
}

/** A run directory's config and EMA parameters (only the EMA part of the checkpoint is fetched). */
export async function loadRun(url: string): Promise<LoadedRun> {
  const config = (await fetchJson(`${url}config.json`)) as RunConfig;
  const model = modelFor(config);
  const template = initParams(model.spec, tw.random.key(0));
  const { ema, step } = await loadCheckpoint(await checkpointUrl(url), { ema: template });
  return { url, config, model, ema, step };
}
