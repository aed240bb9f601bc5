// The browser demo: `npm run web` serves it, `npm run build:web` writes a static bundle to examples/web/dist.
// Shipped runs (config.json + checkpoint/) are static files under public/runs/.
import path from 'node:path';
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  // the page imports the library from the repository root, above this folder
  server: { host: '127.0.0.1', fs: { allow: [path.resolve(import.meta.dirname, '../..')] } },
});
