import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    // the webgpu conformance suite checks that GPU buffers are recycled, which needs explicit GC
    execArgv: ['--expose-gc'],
  },
});
