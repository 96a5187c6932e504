import { defineConfig } from 'vite';
import { svelte } from '@sveltejs/vite-plugin-svelte';

// `EDDY_SERVE` points the dev server's /api at a running `eddy serve`
// (e.g. EDDY_SERVE=http://127.0.0.1:8787 npm run dev -w ui, then open
// http://localhost:5173/?token=<its token>). `eddy serve` accepts only its
// own Host and Origin, so the proxy presents both as the backend's.
const backend = process.env.EDDY_SERVE;

export default defineConfig({
  plugins: [svelte()],
  // Relative asset paths: the same build is served by `eddy serve` and
  // embedded in the desktop app.
  base: './',
  clearScreen: false,
  server: {
    port: 5173,
    strictPort: true,
    proxy: backend
      ? {
          '/api': {
            target: backend,
            ws: true,
            changeOrigin: true,
            headers: { origin: backend },
          },
        }
      : undefined,
  },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
  },
});
