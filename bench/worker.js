// A measurement that must run in a fresh process (its own heap, its own RSS): forked by runTask() in
// bench/lib/procs.js as `node --expose-gc bench/worker.js <task> <json args>`; the result goes back over IPC.

// Loaded lazily, so a task's process holds only the modules it needs (idle heap, start-up time).
const TASKS = {
  memory: async () => (await import('./memory.js')).memoryTask,
  spill: async () => (await import('./spill.js')).spillTask,
  coldstart: async () => (await import('./spill.js')).coldStartTask,
}

const [name, json] = process.argv.slice(2)
if (typeof process.send !== 'function' || !(name in TASKS)) {
  console.error(`bench/worker.js runs a task for bench/run.js (tasks: ${Object.keys(TASKS).join(', ')})`)
  process.exit(2)
}
try {
  const task = await TASKS[name]()
  const result = await task(JSON.parse(json))
  process.send({ ok: true, result }, () => process.disconnect())
} catch (error) {
  console.error(error)
  process.send({ ok: false, error: String(error?.message ?? error) }, () => process.exit(1))
}
