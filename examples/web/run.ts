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

/**
 * The checkpoint folder of a run: the one checkpoints/latest names, as `twinflow train` writes them, or the
 * checkpoint/ folder of older runs (the shipped ones). A dev server answers unknown paths with the page,
 * so the pointer must look like a step folder's name.
 */
async function checkpointUrl(url: string): Promise<string> {
  const res = await fetch(`${url}checkpoints/latest`).catch(() => undefined);
  const name = res?.ok ? (await res.text()).trim() : '';
  return /^step-\d+$/.test(name) ? `${url}checkpoints/${name}/` : `${url}checkpoint/`;
}

/** A run directory's config and EMA parameters (only the EMA part of the checkpoint is fetched). */
export async function loadRun(url: string): Promise<LoadedRun> {
  const config = (await fetchJson(`${url}config.json`)) as RunConfig;
  const model = modelFor(config);
  const template = initParams(model.spec, tw.random.key(0));
  const { ema, step } = await loadCheckpoint(await checkpointUrl(url), { ema: template });
  return { url, config, model, ema, step };
}
