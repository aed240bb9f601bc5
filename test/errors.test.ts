// Error messages, pinned exactly: each names the op, the shapes/dtypes involved and the caller's source line.
// The location must point at the line of THIS file that made the failing call; the expected line is found by
// the `// @tag` marker at the end of that line, so editing the file above it keeps the test valid.
import { readFileSync } from 'node:fs';
import { fileURLToPath } from 'node:url';
import { describe, expect, it } from 'vitest';
import * as tw from 'twinflow';

const SELF = fileURLToPath(import.meta.url);
const LINES = readFileSync(SELF, 'utf8').split('\n');
const esc = (s: string) => s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');

/** 1-based line of the statement tagged `// @tag` (the tag must end the line, so this lookup never matches). */
function lineOf(tag: string): number {
  const i = LINES.findIndex((l) => l.trimEnd().endsWith(`// @${tag}`));
  if (i < 0) throw new Error(`no line tagged @${tag}`);
  return i + 1;
}

/** The full message: the text, then " (at <this file>:<tagged line>:<col>)". */
const exactly = (message: string, tag: string) => new RegExp(`^${esc(message)} \\(at ${esc(SELF)}:${lineOf(tag)}:\\d+\\)$`);

type ErrorClass = new (...args: never[]) => Error;
function expectThrow(fn: () => unknown, cls: ErrorClass, message: string, tag: string): void {
  expect(fn).toThrow(cls);
  expect(fn).toThrow(exactly(message, tag));
  try {
    fn();
  } catch (e) {
    expect(e).toBeInstanceOf(tw.TwinflowError);
    expect((e as tw.TwinflowError).location).toMatch(new RegExp(`^${esc(SELF)}:${lineOf(tag)}:\\d+$`));
  }
}

const f64 = (v: number[], shape?: number[]) => tw.tensor(Float64Array.from(v), 'f64', shape);

describe('shape errors', () => {
  it('add of unbroadcastable shapes names the op and both shapes', () => {
    const a = tw.zeros([2, 3]), b = tw.zeros([4]);
    expectThrow(() => tw.add(a, b), tw.ShapeError, 'add: cannot broadcast shapes [2,3] and [4]', 'add'); // @add
  });

  it('matmul inner dimension mismatch', () => {
    const a = tw.zeros([2, 3]), b = tw.zeros([4, 5]);
    expectThrow(() => tw.matmul(a, b), tw.ShapeError, 'matmul: inner dimensions differ: f32[2,3] @ f32[4,5]', 'matmul'); // @matmul
  });

  it('reshape to a different size', () => {
    const a = tw.zeros([2, 3]);
    expectThrow(() => a.reshape([4]), tw.ShapeError, 'reshape: cannot reshape f32[2,3] to [4]', 'reshape'); // @reshape
  });

  it('bad axis', () => {
    const a = tw.zeros([2, 3]);
    expectThrow(() => tw.sum(a, 5), tw.ShapeError, 'sum: axis 5 is out of range for rank 2', 'axis'); // @axis
    expectThrow(() => tw.softmax(a, -3), tw.ShapeError, 'softmax: axis -3 is out of range for rank 2', 'axis2'); // @axis2
  });

  it('concat of mismatched shapes', () => {
    const a = tw.zeros([2, 3]), b = tw.zeros([2, 4]);
    expectThrow(() => tw.concat([a, b], 0), tw.ShapeError, 'concat: cannot join f32[2,3] and f32[2,4] along axis 0', 'concat'); // @concat
  });

  it('slice index out of range', () => {
    const a = tw.zeros([2, 3]);
    expectThrow(() => a.slice(5), tw.ShapeError, 'slice: index 5 out of range for axis 0 of f32[2,3]', 'slice'); // @slice
  });

  it('random with something that is not a key names the sampler called', () => {
    const notKey = tw.zeros([2]) as unknown as tw.Tensor<'u32'>;
    const msg = 'random.uniform: expected a key (u32[2] from random.key), got f32[2]';
    expectThrow(() => tw.random.uniform(notKey, [3]), tw.ShapeError, msg, 'rand'); // @rand
    const msg2 = 'random.normal: expected a key (u32[2] from random.key), got u32[3]';
    const wide = tw.tensor(Uint32Array.of(1, 2, 3), 'u32');
    expectThrow(() => tw.random.normal(wide, [3]), tw.ShapeError, msg2, 'rand2'); // @rand2
  });

  it('tensor() from a ragged nested array', () => {
    const ragged = [[1, 2], [3]];
    expectThrow(() => tw.tensor(ragged), tw.ShapeError, 'tensor: ragged nested array at [1]: expected length 2, got 1', 'ragged'); // @ragged
  });
});

describe('dtype errors', () => {
  it('add of f32 and i32', () => {
    const a = tw.zeros([2]), b = tw.zeros([2], 'i32');
    const add = tw.add as (x: tw.Tensor, y: tw.Tensor) => tw.Tensor; // the static types already forbid this
    expectThrow(() => add(a, b), tw.DTypeError, 'add: dtype mismatch f32[2] vs i32[2]; cast one operand first', 'dtype'); // @dtype
  });

  it('log of an integer tensor', () => {
    const i = tw.tensor([1, 2], 'i32') as unknown as tw.Tensor<'f32'>;
    expectThrow(() => tw.log(i), tw.DTypeError, 'log: needs a float tensor, got i32[2]', 'log'); // @log
  });

  it('where with a non-bool condition', () => {
    const c = tw.zeros([2]) as unknown as tw.Tensor<'bool'>;
    expectThrow(() => tw.where(c, 1, 0), tw.DTypeError, 'where: condition must be a bool tensor, got f32[2]', 'where'); // @where
  });
});

describe('transform errors', () => {
  it('grad of a non-scalar output', () => {
    const g = tw.grad((x: tw.Tensor<'f64'>) => tw.mul(x, 2));
    const x = f64([1, 2]);
    const msg = 'grad: the function must return a scalar tensor, got f64[2]; use vjp with an explicit cotangent for non-scalar outputs';
    expectThrow(() => g(x), tw.TransformError, msg, 'nonscalar'); // @nonscalar
  });

  it('grad with respect to an integer input', () => {
    const g = tw.grad((x: tw.Tensor<'i32'>) => tw.sum(x));
    const x = tw.tensor([1, 2], 'i32');
    const msg =
      'grad: differentiated argument leaf 0 has dtype i32; only float tensors can be differentiated (pass integer data through an argument that is not differentiated)';
    expectThrow(() => g(x), tw.TransformError, msg, 'intgrad'); // @intgrad
  });

  it('vjp cotangent of the wrong shape', () => {
    const [, back] = tw.vjp((x: tw.Tensor<'f64'>) => tw.mul(x, 2), f64([1, 2]));
    const ct = f64([1, 2, 3]);
    expectThrow(() => back(ct), tw.TransformError, 'vjp: cotangent 0 is f64[3] but the output is f64[2]', 'vjpct'); // @vjpct
  });

  it('an error raised while tracing points at the line inside the traced function', () => {
    const f = tw.jit((x: tw.Tensor<'f32'>) => {
      const y = tw.reshape(x, [5]); // @intrace
      return y;
    });
    expectThrow(() => f(tw.zeros([2, 3])), tw.ShapeError, 'reshape: cannot reshape f32[2,3] to [5]', 'intrace');
  });
});

describe('backend errors', () => {
  it('setBackend with an unknown name', async () => {
    const bad = 'nope' as tw.BackendName;
    const p = tw.setBackend(bad); // @backend
    await expect(p).rejects.toBeInstanceOf(tw.TwinflowError);
    await expect(p).rejects.toThrow(exactly("unknown backend 'nope'; expected cpu, webgpu, cuda or auto", 'backend'));
    expect(tw.backendChoice().name).toBe('cpu');
  });
});

describe('locations in a page', () => {
  // A Chromium stack from a page whose modules a dev server serves over http: the library's frames (under the
  // server's root) are skipped, the user's frame is named by its URL without the cache-busting query.
  const stack = [
    'Error',
    '    at callerLocation (http://127.0.0.1:5173/dsl/errors.ts:40:17)',
    '    at new ShapeError (http://127.0.0.1:5173/dsl/errors.ts:55:22)',
    '    at broadcastShapes (http://127.0.0.1:5173/dsl/shape.ts?v=3f2a:12:11)',
    '    at http://127.0.0.1:5173/node_modules/.vite/deps/chunk.js?v=1:9:3',
    '    at generate (http://127.0.0.1:5173/examples/web/main.ts?t=17:88:21)',
    '    at async run (http://127.0.0.1:5173/examples/web/main.ts:120:5)',
  ].join('\n');
  it('http(s) frames point at the user code', async () => {
    const { userFrame } = await import('../dsl/errors.ts');
    expect(userFrame(stack, 'http://127.0.0.1:5173/')).toBe('http://127.0.0.1:5173/examples/web/main.ts:88:21');
    expect(userFrame(stack.replaceAll('http://127.0.0.1:5173', 'https://example.org/app'), 'https://example.org/app/')).toBe('https://example.org/app/examples/web/main.ts:88:21');
  });
  it('file paths with spaces and file:// URLs', async () => {
    const { userFrame } = await import('../dsl/errors.ts');
    const node = ['Error', '    at f (/lib dir/dsl/ops.ts:3:4)', '    at Object.<anonymous> (file:///my%20code/main.ts:7:9)'].join('\n');
    expect(userFrame(node, '/lib dir/')).toBe('/my code/main.ts:7:9');
  });
});
