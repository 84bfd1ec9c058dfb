import { defineConfig } from 'tsup'

export default defineConfig({
  // NB: the library (ESM and CommonJS, with types) and bin `tiered-session` (src/cli/main.ts, its shebang kept).
  entry: { index: 'src/index.ts', cli: 'src/cli/main.ts' },
  format: ['esm', 'cjs'],
  dts: { entry: { index: 'src/index.ts' } },
  clean: true,
  // NB: import.meta.url in the CommonJS build too (src/tiers/wal-checkpointer.ts resolves better-sqlite3 with it).
  shims: true,
  sourcemap: true,
  target: 'node20',
  platform: 'node',
})
