// A clock tests move by hand instead of sleeping.

import type { Clock } from '../../src/clock.js'

/** Starts at `start` ms and only moves when `advance` or `set` is called. */
export class ManualClock implements Clock {
  #now: number

  constructor(start = Date.UTC(2026, 0, 1)) {
    this.#now = start
  }

  now(): number {
    return this.#now
  }

  advance(ms: number): void {
    this.#now += ms
  }

  set(ms: number): void {
    this.#now = ms
  }
}
