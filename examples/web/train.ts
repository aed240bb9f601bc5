// The Train tab: TwinFlow on the 2-D checkerboard, trained live in the page with the CLI's loss, optimizer,
// clipping, EMA, initialisation and random streams (models/twinflow/train-step.ts, jitted and donated), a loss plot,
// 1-NFE samples as it learns, pause/resume, and a one-file checkpoint to download that
// `npx twinflow sample --ckpt FILE.safetensors` reads.

import * as tw from '../../web.ts';
import { checkpointToBytes } from '../../models/checkpoint/codec.ts';
import { sample2d } from '../../models/data/toy2d.ts';
import { modelFor, objectiveFor } from '../../models/registry.ts';
import { generate } from '../../models/twinflow/generate.ts';
import { freshGuard, initialState, STREAMS, type StepState, trainStep, zeroSums } from '../../models/twinflow/train-step.ts';
import type { RunConfig } from './run.ts';

/** The CLI's defaults for 2-D data: `twinflow train --data 2d:checkerboard` (batch 64, lr 3e-3, seed 0). */
export const TRAIN_RUN: RunConfig = { data: '2d:checkerboard', model: 'mlp', objective: 'twinflow', steps: 0, batch: 64, lr: 3e-3, seed: 0 };
/** Steps between loss points (the running sums are read then, not every step). */
export const LOG_EVERY = 10;
/** Steps between redraws of the live samples and evaluations of the held-out loss. */
const SAMPLE_EVERY = 50;
/** Rows of the held-out batch. */
const HELD_OUT = 1024;

export interface TrainView {
  onLoss(steps: number[], losses: number[]): void;
  onSamples(xy: Float32Array): Promise<void> | void;
  onStatus(text: string): void;
}

export class TabTrainer {
  readonly model = modelFor(TRAIN_RUN);
  private readonly objective = objectiveFor(TRAIN_RUN);
  private readonly names = this.objective.terms(TRAIN_RUN.batch);
  private readonly init = initialState(this.model.spec, TRAIN_RUN);
  private readonly step = trainStep(this.model.net, this.init.opt, this.objective, this.names);
  private readonly dataKey = tw.random.foldIn(tw.random.key(TRAIN_RUN.seed), STREAMS.data);
  private readonly drawKey = tw.random.foldIn(tw.random.key(TRAIN_RUN.seed), STREAMS.draws);
  private state: StepState = { params: this.init.params, ema: this.init.ema, opt: this.init.optState };
  private sums = zeroSums(this.names);
  private guard = freshGuard(0, this.names);
  /** Whether training should go on (cleared by pause), and whether its loop is still going. */
  private wanted = false;
  private running = false;
  private loop: Promise<void> | undefined;
  steps = 0;
  readonly lossSteps: number[] = [];
  readonly losses: number[] = [];
  /** Steps per second over the last loss interval. */
  rate = 0;
  /**
   * The flow-matching error on a fixed held-out batch: mean |F(x_t, t, t) − (z − x)|², the instantaneous
   * velocity TwinFlow's mul and any terms teach. It falls from the first steps, while the TwinFlow loss
   * itself starts near its floor (the zero-initialised output is trivially self-consistent) and moves little.
   */
  readonly heldOut: { step: number; loss: number }[] = [];
  private readonly heldOutLoss = (() => {
    const [kx, kz, kt] = tw.random.split(tw.random.foldIn(tw.random.key(TRAIN_RUN.seed), STREAMS.eval), 3);
    const x = sample2d('checkerboard', kx!, HELD_OUT);
    const z = tw.random.normal(kz!, [HELD_OUT, 2]);
    const t = tw.random.uniform(kt!, [HELD_OUT]);
    const xt = t.reshape([HELD_OUT, 1]).mul(z).add(t.neg().add(1).reshape([HELD_OUT, 1]).mul(x));
    const error = tw.jit((params: unknown) => this.model.net(params, xt, t, t, null).sub(z.sub(x)).square().mean(), { name: 'heldOutError' });
    return async () => this.heldOut.push({ step: this.steps, loss: await error(this.state.params).item() });
  })();

  constructor(private readonly view: TrainView) {}

  get isRunning(): boolean {
    return this.running;
  }

  /** Starts or resumes; resolves when paused (or on an error, which it rethrows). */
  start(): Promise<void> {
    this.wanted = true;
    if (!this.running) {
      this.running = true;
      this.loop = this.run().finally(() => (this.running = false));
    }
    return this.loop!;
  }

  /** Stops after the current interval of LOG_EVERY steps. */
  async pause(): Promise<void> {
    this.wanted = false;
    await this.loop;
  }

  private async run(): Promise<void> {
    if (!this.heldOut.length) await this.heldOutLoss();
    while (this.wanted) {
      const t0 = performance.now();
      for (let k = 0; k < LOG_EVERY; k++) {
        // the CLI's batch for 2-D data: problem().batch in scripts/cli/problem.ts
        const batch = { x: sample2d('checkerboard', tw.random.foldIn(this.dataKey, this.steps), TRAIN_RUN.batch), cond: null, nullCond: null };
        ({ state: this.state, sums: this.sums, guard: this.guard } = this.step(this.state, this.sums, this.guard, batch, tw.random.foldIn(this.drawKey, this.steps)));
        this.steps++;
      }
      const loss = (await this.sums.loss.item()) / LOG_EVERY;
      const bad = await this.guard.first.item();
      // the step froze the state at the first non-finite update: stop there, as the CLI does
      if (bad >= 0) throw new Error(`step ${bad + 1}: the loss or gradients were not finite; training stopped`);
      this.rate = (LOG_EVERY * 1000) / (performance.now() - t0);
      this.sums = zeroSums(this.names);
      this.lossSteps.push(this.steps);
      this.losses.push(loss);
      this.view.onLoss(this.lossSteps, this.losses);
      if (this.steps % SAMPLE_EVERY === 0) {
        await this.heldOutLoss();
        await this.view.onSamples(await this.samples());
      }
      const held = this.heldOut.at(-1)!;
      this.view.onStatus(`step ${this.steps} · loss ${loss.toPrecision(3)} · held-out flow-matching error ${held.loss.toPrecision(4)} (step ${held.step}) · ${this.rate.toFixed(1)} steps/s`);
      await new Promise((r) => setTimeout(r, 0)); // let the page paint and take clicks
    }
  }

  /** 1-NFE samples from the EMA parameters, as `twinflow sample --nfe 1` draws them. */
  async samples(n = 1024): Promise<Float32Array> {
    return (await (await generate(this.model, TRAIN_RUN, this.state.ema, 1, n)).data()) as Float32Array;
  }

  /** The whole training state as one safetensors file, its config the run's (steps = the steps so far). */
  checkpoint(): Promise<Uint8Array> {
    const { params, ema, opt } = this.state;
    return checkpointToBytes({ params, ema, optState: opt, step: this.steps }, { ...TRAIN_RUN, steps: this.steps });
  }
}
