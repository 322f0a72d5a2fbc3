import { defineConfig } from 'vite';

// No React plugin: Vite 8's built-in transform handles JSX with the automatic runtime (tsconfig "jsx": "react-jsx").
export default defineConfig({
  root: import.meta.dirname,
  base: '/',
  build: {
    outDir: 'dist',
    emptyOutDir: true,
    target: 'es2022',
    assetsDir: 'assets',
    sourcemap: false,
    // Ant Design's and ECharts' chunks are big but lazy (admin pages only); the phone path is measured
    // by `npm run bench:console-bundle` instead of this per-chunk warning.
    chunkSizeWarningLimit: 1600,
    rollupOptions: {
      output: {
        // The shell's small shared modules in one chunk: eight tiny chunks gzip worse than one (the phone path
        // is measured by bench:console-bundle).
        advancedChunks: {
          groups: [
            {
              name: 'shell',
              test: /\/src\/(nav\.ts|session\.tsx|ui\.tsx|api\.ts|router\.tsx|third-party\.tsx|notifications\.tsx|api\/client\.ts|shell\/app-shell\.tsx|shell\/require-session\.tsx|pages\/not-found\.tsx|pages\/personal\/bind\.tsx)$/,
            },
          ],
        },
      },
      // antd marks its modules "use client" for React Server Components; a browser bundle has no use for it.
      onwarn(w, warn) {
        if (w.code !== 'MODULE_LEVEL_DIRECTIVE') warn(w);
      },
    },
  },
  // `npm run dev -w packages/console` proxies the API to a server on :8080.
  server: {
    proxy: Object.fromEntries(
      ['/api', '/connect/hardware', '/hw/addDevice', '/wwopen'].map((p) => [p, { target: 'http://127.0.0.1:8080' }]),
    ),
  },
});
