// The cpu backend: a reference interpreter of the graph on host typed arrays. f64 programs run in float64
// (the oracle for gradient checks), f32 ones round every result to float32, f16/bf16 to their formats.

import { registerReadyBackend, type Backend, type Executable } from '../../dsl/backend.ts';
import type { HostArray } from '../../dsl/dtype.ts';
import type { Graph } from '../../dsl/graph.ts';
import type { AVal } from '../../dsl/shape.ts';
import { bufferOf } from '../../dsl/trace.ts';
import { evalRules } from './eval-rules.ts';
import { roundBF16, roundF16 } from '../../dsl/float-formats.ts';

function narrow(y: HostArray, a: AVal): HostArray {
  if (a.dtype === 'f16') for (let i = 0; i < y.length; i++) y[i] = roundF16(y[i]!);
  else if (a.dtype === 'bf16') for (let i = 0; i < y.length; i++) y[i] = roundBF16(y[i]!);
  return y;
}

export const cpuBackend: Backend = {
  name: 'cpu',
  device: 'cpu (JavaScript reference interpreter)',
  upload: (data, aval) => narrow(data.slice(), aval),
  read: async (buffer) => (buffer as HostArray).slice(),
  readSync: (buffer) => buffer as HostArray,
  compile(g: Graph): Executable {
    return {
      run(inputs) {
        const vals = new Array<HostArray>(g.nodes.length);
        g.inputs.forEach((id, i) => (vals[id] = inputs[i] as HostArray));
        for (const n of g.nodes) {
          if (n.kind === 'const') vals[n.id] = bufferOf(n.value, cpuBackend) as HostArray;
          else if (n.kind === 'prim') {
            const rule = evalRules[n.prim] as (ins: HostArray[], avals: AVal[], out: AVal, attrs: unknown) => HostArray;
            vals[n.id] = narrow(rule(n.inputs.map((i) => vals[i]!), n.inputs.map((i) => g.nodes[i]!.aval), n.aval, n.attrs), n.aval);
          }
        }
        return g.outputs.map((id) => vals[id]!);
      },
    };
  },
};

registerReadyBackend(cpuBackend);
