// The dashboard is a static bundle the verifier serves from memory (routes/dashboard-static.ts):
// relative asset URLs (base './'), no source maps shipped, everything bundled (no CDN).
import { defineConfig } from 'vite';

export default defineConfig({
  base: './',
  esbuild: { jsx: 'automatic', jsxImportSource: 'preact' },
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    sourcemap: false,
    target: 'es2022',
    assetsInlineLimit: 0,
    modulePreload: { polyfill: false },
  },
});
