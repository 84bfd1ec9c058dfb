// How long the model-based tests run: a short seeded run in the normal suite; with SOAK=1 (npm run
// test:soak) many more runs from a fresh seed, printed so a failure can be replayed with SOAK_SEED.

/** Runs for the normal suite, or SOAK_RUNS (default 40×) under SOAK=1. */
export function soakRuns(normal: number): number {
  if (!process.env.SOAK) return normal
  return Number(process.env.SOAK_RUNS ?? normal * 40)
}

/** The fixed seed of the normal suite, or SOAK_SEED / a fresh one under SOAK=1. */
export function soakSeed(): number {
  if (!process.env.SOAK) return 20261127
  return Number(process.env.SOAK_SEED ?? Math.floor(Math.random() * 2 ** 31))
}
