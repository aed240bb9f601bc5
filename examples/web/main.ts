// The page: a Generate tab (shipped runs, or any run directory given as ?run=URL/) and a Train tab. What the
// page shows is also kept in window.twinflowDemo, which the browser tests read.

import * as tw from '../../web.ts';
import { startBackend, type PageBackend } from './backend.ts';
import { drawLoss, drawScatter } from './draw.ts';
import { generateInto } from './generate.ts';
import { type LoadedRun, loadRun } from './run.ts';
import { TabTrainer } from './train.ts';

/** Runs shipped under public/runs/ (made by the CLI; the commands are in each folder's COMMAND.md). */
const SHIPPED = [
  { url: 'runs/checkerboard/', label: '2-D checkerboard (MLP)' },
  { url: 'runs/mnist/', label: 'MNIST digits (MLP, prompts)' },
];

interface DemoState {
  backend?: PageBackend;
  /** The last generation's values, its run, NFE and seed, and its time. */
  generated?: { run: string; nfe: number; seed: number; prompt: string; values: number[]; ms: number; compiled: boolean };
  /** Every error shown on the page. */
  errors: string[];
  train?: TabTrainer;
}

const $ = <E extends HTMLElement>(id: string) => document.getElementById(id) as E;
const demo: DemoState = { errors: [] };
(window as unknown as { twinflowDemo: DemoState }).twinflowDemo = demo;

function showError(box: HTMLElement, e: unknown): void {
  const text = e instanceof Error ? `${e.name}: ${e.message}` : String(e);
  demo.errors.push(text);
  box.textContent = text;
  box.hidden = false;
}

function tabs(): void {
  const pairs = [['tab-generate', 'panel-generate'], ['tab-train', 'panel-train']] as const;
  for (const [tab, panel] of pairs) {
    $(tab).addEventListener('click', () => {
      for (const [t, p] of pairs) {
        $(t).setAttribute('aria-selected', String(t === tab));
        $(p).hidden = p !== panel;
      }
    });
  }
}

function generateTab(backend: PageBackend): void {
  const select = $<HTMLSelectElement>('run');
  const custom = new URLSearchParams(location.search).get('run');
  const runs = custom ? [{ url: custom.endsWith('/') ? custom : `${custom}/`, label: `${custom} (from the URL)` }, ...SHIPPED] : SHIPPED;
  for (const r of runs) select.add(new Option(r.label, r.url));
  const loaded = new Map<string, Promise<LoadedRun>>();
  const button = $<HTMLButtonElement>('generate');
  const errorBox = $('generate-error');
  const facts = $('generate-facts');
  const promptLabel = $('prompt-label');
  const go = async () => {
    errorBox.hidden = true;
    button.disabled = true;
    try {
      const url = select.value;
      if (!loaded.has(url)) loaded.set(url, loadRun(url));
      const run = await loaded.get(url)!.catch((e) => {
        loaded.delete(url); // a fixed file can be retried
        throw e;
      });
      promptLabel.hidden = run.model.kind !== 'image';
      const [nfe, seed, prompt] = [Number($<HTMLSelectElement>('nfe').value), Number($<HTMLInputElement>('seed').value), $<HTMLInputElement>('prompt').value];
      const g = await generateInto($('generate-canvas'), run, nfe, seed, prompt);
      demo.generated = { run: url, nfe, seed, prompt, values: Array.from(g.values), ms: g.ms, compiled: g.compiled };
      facts.textContent = [
        `backend   ${tw.backendChoice().device}`,
        `adapter   ${backend.adapter}`,
        `run       ${url}: ${run.config.objective} on ${run.config.data}, ${run.config.model}, step ${run.step}`,
        `${g.compiled ? 'first call (compile + run)' : 'generation'}  ${g.ms.toFixed(1)} ms for ${g.values.length / run.model.sampleShape.reduce((a, b) => a * b, 1)} samples at ${nfe} NFE`,
      ].join('\n');
    } catch (e) {
      showError(errorBox, e);
    } finally {
      button.disabled = false;
    }
  };
  button.addEventListener('click', () => void go());
  select.addEventListener('change', () => void go());
  void go();
}

function trainTab(): void {
  const toggle = $<HTMLButtonElement>('train-toggle');
  const download = $<HTMLButtonElement>('train-download');
  const status = $('train-status');
  const errorBox = $('train-error');
  const trainer = new TabTrainer({
    onLoss: (steps, losses) => drawLoss($('loss-canvas'), steps, losses),
    onSamples: (xy) => drawScatter($('train-canvas'), new Float32Array(0), xy),
    onStatus: (text) => (status.textContent = text),
  });
  demo.train = trainer;
  toggle.addEventListener('click', () => {
    if (trainer.isRunning) {
      toggle.disabled = true;
      void trainer.pause().then(() => {
        toggle.textContent = 'Resume';
        toggle.disabled = false;
        download.disabled = false;
      });
      return;
    }
    toggle.textContent = 'Pause';
    download.disabled = true;
    trainer.start().catch((e) => {
      showError(errorBox, e);
      toggle.textContent = 'Resume';
    });
  });
  download.addEventListener('click', async () => {
    const bytes = await trainer.checkpoint();
    const a = document.createElement('a');
    a.href = URL.createObjectURL(new Blob([bytes as BlobPart], { type: 'application/octet-stream' }));
    a.download = `checkerboard-step${trainer.steps}.safetensors`;
    a.click();
    setTimeout(() => URL.revokeObjectURL(a.href), 10_000);
  });
}

async function main(): Promise<void> {
  tabs();
  const backend = await startBackend();
  demo.backend = backend;
  if (backend.notice) {
    $('backend-notice').textContent = backend.notice;
    $('backend-notice').hidden = false;
  }
  generateTab(backend);
  trainTab();
}

main().catch((e) => showError($('generate-error'), e));
