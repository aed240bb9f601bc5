// Backend selection: setBackend with an explicit name and with 'auto' (which explains what it skipped),
// backendChoice(), unknown names, and TWINFLOW_BACKEND read at import time (in a child process, ~0.5 s each).
import { spawnSync } from 'node:child_process';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';

const root = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '..');

describe('setBackend', () => {
  it("'cpu' is chosen as requested", async () => {
    expect(await tw.setBackend('cpu')).toEqual({ name: 'cpu', reason: 'requested' });
    const c = tw.backendChoice();
    expect(c).toMatchObject({ name: 'cpu', reason: 'requested' });
    expect(c.device).toMatch(/^cpu/);
    expect(await tw.add(tw.tensor([1, 2]), 1).data()).toEqual(Float32Array.of(2, 3));
  });

  it("'auto' takes the first of cuda, webgpu, cpu that runs here and says why it skipped the others", async () => {
    const cuda = await tw.setBackend('cuda').then(() => true, () => false);
    const webgpu = await tw.setBackend('webgpu').then(() => true, () => false);
    const got = await tw.setBackend('auto');
    // cuda needs an NVIDIA driver and GPU; webgpu runs where a Vulkan driver (lavapipe) is installed
    if (cuda) {
      expect(got).toEqual({ name: 'cuda', reason: 'auto: first choice' });
      return;
    }
    expect(got.name).toBe(webgpu ? 'webgpu' : 'cpu');
    // Tried in order cuda, webgpu; each skip carries its own reason (not the caller's location).
    expect(got.reason).toMatch(webgpu ? /^auto: cuda unavailable \(.+\)$/ : /^auto: cuda unavailable \(.+\); webgpu unavailable \(.+\)$/);
    expect(got.reason).not.toContain('(at ');
    expect(tw.backendChoice()).toMatchObject(got);
    // No argument means auto.
    expect(await tw.setBackend()).toEqual(got);
    await tw.setBackend('cpu');
  });

  it('an unknown name is refused and leaves the choice as it was', async () => {
    await tw.setBackend('cpu');
    const p = tw.setBackend('nope' as tw.BackendName);
    await expect(p).rejects.toBeInstanceOf(tw.TwinflowError);
    await expect(p).rejects.toThrow(/^unknown backend 'nope'; expected cpu, webgpu, cuda or auto \(at .*backend\.test\.ts:\d+:\d+\)$/);
    expect(tw.backendChoice()).toMatchObject({ name: 'cpu', reason: 'requested' });
  });
});

describe('TWINFLOW_BACKEND at import', () => {
  const importWith = (value: string) =>
    spawnSync(
      process.execPath,
      ['--import', 'tsx', '--input-type=module', '-e', "import * as tw from 'twinflow'; console.log(JSON.stringify(tw.backendChoice()))"],
      { cwd: root, env: { ...process.env, TWINFLOW_BACKEND: value }, encoding: 'utf8', timeout: 20_000 },
    );

  it('cpu selects the cpu backend as requested', () => {
    const r = importWith('cpu');
    expect(r.stderr).toBe('');
    expect(r.status).toBe(0);
    expect(JSON.parse(r.stdout)).toMatchObject({ name: 'cpu', reason: 'requested' });
  });

  it('an unknown name fails the import with a message naming the variable', () => {
    const r = importWith('nope');
    expect(r.status).not.toBe(0);
    expect(r.stdout).toBe('');
    expect(r.stderr).toContain("BackendUnavailableError: TWINFLOW_BACKEND=nope: unknown backend 'nope'; expected cpu, webgpu, cuda or auto");
  });
});
