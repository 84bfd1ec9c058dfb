// CPU time per store operation, for benches that compare variants of a store in one process: process CPU time
// (user + system), not wall time, so other processes taking the cores away (a shared machine) do not count;
// interleaved rounds (a b c, c b a, ...), median per variant.

import { median } from './stats.js'

/** A session of ~1 KiB, shaped like express-session's. */
export function benchSession(i) {
  const DAY = 86_400_000
  return {
    cookie: { originalMaxAge: DAY, expires: new Date(Date.now() + DAY).toISOString(), path: '/' },
    userId: `user-${i}`,
    cart: Array.from({ length: 6 }, (_, j) => ({
      sku: `sku-${i}-${j}`,
      qty: 1,
      title: `item ${j} of a cart`,
    })),
  }
}

/** The store operations measured, each with how many make one sample. */
export const OPERATIONS = {
  'get (memory hit)': { n: 100_000, op: (store, i) => store.get(`s${i % 100}`) },
  'get (miss: memory, then disk)': { n: 50_000, op: (store, i) => store.get(`nope${i}`) },
  'touch (in memory)': { n: 50_000, op: (store, i) => store.touch(`s${i % 100}`, benchSession(i % 100)) },
  'set (whole session, group commit)': {
    n: 10_000,
    op: (store, i) => store.set(`w${i % 1000}`, benchSession(i)),
  },
  'merge (disk transaction)': {
    n: 5_000,
    op: (store, i) => store.merge(`s${i % 100}`, { set: { n: String(i) }, unset: [] }),
  },
}

async function cpuNsPerOp(store, op, n) {
  const start = process.cpuUsage()
  for (let i = 0; i < n; i++) await op(store, i)
  const used = process.cpuUsage(start)
  return ((used.user + used.system) * 1000) / n
}

/**
 * Median CPU ns per operation of each of OPERATIONS on each store of `stores` ({ name: store }, filled with
 * sessions s0..s99 first), over `rounds` interleaved rounds. Resolves to { [operation]: { [name]: ns } }.
 */
export async function measureStores(stores, rounds, log = () => {}) {
  const names = Object.keys(stores)
  for (const store of Object.values(stores))
    for (let i = 0; i < 100; i++) await store.set(`s${i}`, benchSession(i))
  const results = {}
  for (const [operation, { n, op }] of Object.entries(OPERATIONS)) {
    const samples = Object.fromEntries(names.map((name) => [name, []]))
    for (const name of names) await cpuNsPerOp(stores[name], op, n / 5) // warm-up
    for (let r = 0; r < rounds; r++) {
      const order = r % 2 === 0 ? names : [...names].reverse()
      for (const name of order) samples[name].push(await cpuNsPerOp(stores[name], op, n))
    }
    results[operation] = Object.fromEntries(names.map((name) => [name, median(samples[name])]))
    log(
      `  ${operation}: ${names.map((name) => `${name} ${results[operation][name].toFixed(0)} ns`).join(', ')}\n`,
    )
  }
  return results
}
