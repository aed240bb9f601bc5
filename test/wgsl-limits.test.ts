// The WGSL renderer reads the device's workgroup-memory limit: the matmul tile shrinks to fit it, and a kernel
// that cannot fit fails when it is compiled, saying why (no GPU needed: these check the generated source).

import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';
import { simplify } from '../compiler/simplify/index.ts';
import { buildPlan } from '../compiler/plan.ts';
import { traceGraph } from '../dsl/transforms.ts';
import { dispatchWgsl, renderWgsl, type WgslCaps } from '../backends/webgpu/wgsl.ts';

const kernelOf = (f: (...a: tw.Tensor<'f32'>[]) => tw.Tensor, ...args: tw.Tensor<'f32'>[]) =>
  buildPlan(simplify(traceGraph(f as never, args).graph, { final: true }), { bytesPer: () => 4, maxArgs: 8 }).steps[0]!.kernel;
const gpu = (extra: Partial<WgslCaps> = {}): WgslCaps => ({ f16: false, software: false, subgroups: false, ...extra });
const shared = (code: string) => [...code.matchAll(/var<workgroup> \w+: array<(vec4<)?f32>?, (\d+)>;/g)].reduce((s, m) => s + Number(m[2]) * (m[1] ? 16 : 4), 0);

describe('workgroup memory limits', () => {
  const mm = kernelOf((a, b) => tw.matmul(a, b), tw.zeros([300, 200]), tw.zeros([200, 500]));

  it('the default matmul tile (64×128×8) fits the 16 KiB every device has', () => {
    expect(shared(renderWgsl(mm, gpu()).code)).toBe(8 * (64 + 128) * 4);
    expect(dispatchWgsl(mm, gpu())).toEqual([Math.ceil(500 / 128), Math.ceil(300 / 64), 1]);
  });

  it('a device with less workgroup memory gets the largest tile that fits, and the dispatch follows it', () => {
    const caps = gpu({ workgroupStorage: 4096 });
    expect(shared(renderWgsl(mm, caps).code)).toBeLessThanOrEqual(4096);
    expect(dispatchWgsl(mm, caps)).toEqual([Math.ceil(500 / 64), Math.ceil(300 / 64), 1]);
  });

  it('a kernel that cannot fit fails at compile time with the reason', () => {
    expect(() => renderWgsl(mm, gpu({ workgroupStorage: 2048 }))).toThrow("no matmul tile fits this device's maxComputeWorkgroupStorageSize of 2048 bytes (the smallest needs 4096)");
    expect(() => renderWgsl(mm, gpu({ matmulTile: { bm: 128, bn: 128, bk: 16 }, workgroupStorage: 8192 }))).toThrow(
      "matmul tile 128×128×16 needs 16384 bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of 8192",
    );
    const softmax = kernelOf((x) => tw.softmax(x), tw.zeros([64, 1000]));
    expect(shared(renderWgsl(softmax, gpu()).code)).toBe(2 * 128 * 4); // one 128-lane array per reduction stage
    expect(() => renderWgsl(softmax, gpu({ workgroupStorage: 512 }))).toThrow(/kernel \w+: needs 1024 bytes of workgroup memory, over this device's maxComputeWorkgroupStorageSize of 512/);
  });
});
