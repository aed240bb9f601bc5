// The browser demo: `npm run web` serves it, `npm run build:web` writes a static bundle to examples/web/dist.
// Shipped runs (config.json + checkpoint/) are static files under public/runs/.
import { defineConfig } from 'vite';

export default defineConfig({
  root: import.meta.dirname,
  base: './',
  build: { outDir: 'dist', emptyOutDir: true, target: 'es2022' },
  server: { host: '127.0.0.1' },
});
