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
    rollupOptions: {
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
