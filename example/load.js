// The "load" button: creates many ~2 KiB sessions straight in the store, paced over a few seconds, and
// reads some back, so a visitor can watch the spiller hold memory under its budget on /admin/tiers.

import { randomBytes, randomInt } from 'node:crypto'
import { setTimeout as delay } from 'node:timers/promises'

/** Roughly the serialized size of one load session, used to size the default load. */
export const LOAD_SESSION_BYTES = 2048
export const MAX_LOAD = 200_000
/** Load sessions expire on their own after this long (the sweep then removes them from disk). */
export const LOAD_TTL_MS = 10 * 60_000
/** A load is written in this many batches, one every PACE_MS: about four seconds to watch. */
const BATCHES = 40
const PACE_MS = 100

/** Enough sessions to fill the memory budget one and a half times over, so the spiller has to run. */
export function defaultLoadCount(maxBytes) {
  return Math.min(MAX_LOAD, Math.ceil((1.5 * maxBytes) / LOAD_SESSION_BYTES))
}

function loadSession(now) {
  const session = {
    cookie: {
      originalMaxAge: LOAD_TTL_MS,
      expires: new Date(now + LOAD_TTL_MS).toISOString(),
      httpOnly: true,
      path: '/',
      sameSite: 'lax',
    },
    load: true,
    cart: { tea: randomInt(1, 4), biscuits: randomInt(1, 4) },
    createdAt: now,
    lastSeenAt: now,
    userAgent: 'tiered-session example load generator',
  }
  // Pad to about the size of a login + cart session with some history in it.
  session.padding = 'x'.repeat(Math.max(0, LOAD_SESSION_BYTES - JSON.stringify(session).length - 16))
  return session
}

/** One load at a time. `onBatch` runs after each batch (the admin page samples the stats there). */
export class LoadGenerator {
  #store
  #onBatch
  #state = 'idle'
  #target = 0
  #created = 0
  #reads = 0
  #startedAt = 0
  #ms = 0
  #error = ''
  #sids = []
  #abort = new AbortController()
  #running = Promise.resolve()

  constructor(store, { onBatch = () => {} } = {}) {
    this.#store = store
    this.#onBatch = onBatch
  }

  get running() {
    return this.#state === 'running'
  }

  /** Starts a load of `count` sessions; false when one is already running. */
  start(count) {
    if (this.running || this.#abort.signal.aborted) return false
    this.#state = 'running'
    this.#target = count
    this.#created = 0
    this.#reads = 0
    this.#error = ''
    this.#startedAt = performance.now()
    this.#running = this.#run(count)
    return true
  }

  async #run(count) {
    const perBatch = Math.ceil(count / Math.min(BATCHES, count))
    try {
      while (this.#created < count) {
        const now = Date.now()
        const sids = Array.from({ length: Math.min(perBatch, count - this.#created) }, () =>
          randomBytes(18).toString('base64url'),
        )
        await Promise.all(sids.map((sid) => this.#store.set(sid, loadSession(now))))
        this.#created += sids.length
        // Read back a quarter as many older load sessions: the spilled ones come back from disk (a promotion).
        const older = this.#sids.length
        if (older > 0) {
          const reads = Array.from({ length: Math.ceil(sids.length / 4) }, () =>
            this.#store.get(this.#sids[randomInt(older)]),
          )
          this.#reads += (await Promise.all(reads)).length
        }
        for (const sid of sids) this.#sids.push(sid)
        if (this.#sids.length > MAX_LOAD) this.#sids.splice(0, this.#sids.length - MAX_LOAD)
        this.#ms = performance.now() - this.#startedAt
        this.#onBatch()
        if (this.#created < count) await delay(PACE_MS, undefined, { signal: this.#abort.signal })
      }
      this.#state = 'done'
    } catch (err) {
      this.#state = 'failed'
      this.#error = this.#abort.signal.aborted ? 'server shutting down' : (err.code ?? err.name)
      if (!this.#abort.signal.aborted) console.error(`load: stopped by ${this.#error}`)
    }
    this.#ms = performance.now() - this.#startedAt
    this.#onBatch()
  }

  /** What the admin page shows: `{ state, created, target, reads, ms, text }`. */
  status() {
    const seconds = (this.#ms / 1000).toFixed(1)
    const text = {
      idle: `No load yet. Each load session is about ${LOAD_SESSION_BYTES / 1024} KiB and expires after ${LOAD_TTL_MS / 60_000} minutes.`,
      running: `Creating sessions: ${this.#created} of ${this.#target}…`,
      done: `Created ${this.#created} sessions in ${seconds} s and read back ${this.#reads}.`,
      failed: `Load stopped after ${this.#created} of ${this.#target} sessions: ${this.#error}.`,
    }[this.#state]
    return {
      state: this.#state,
      created: this.#created,
      target: this.#target,
      reads: this.#reads,
      ms: Math.round(this.#ms),
      text,
    }
  }

  /** Stops a running load after its current batch (at shutdown, before the store closes). */
  async stop() {
    this.#abort.abort()
    await this.#running
  }
}
