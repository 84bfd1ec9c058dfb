// The time source. Everything that reads the time takes a Clock, so tests advance time instead of sleeping.

/** A source of wall-clock time in milliseconds since the epoch. */
export interface Clock {
  now(): number
}

/** The system clock (`Date.now`). */
export const systemClock: Clock = { now: () => Date.now() }
