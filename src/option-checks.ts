// The one option validator of TieredStore and tieredSession(): each check names the option it failed on, as
// TS_INVALID_OPTION, and returns the value (or its default).

import { ErrorCodes, TieredSessionError } from './errors.js'

/** Longest interval Node's timers accept, in ms (about 24.8 days). */
export const MAX_TIMER_MS = 2 ** 31 - 1

/** TS_INVALID_OPTION: `option "<option>" must be <expected>`. */
export function invalid(option: string, expected: string): TieredSessionError {
  return new TieredSessionError(ErrorCodes.INVALID_OPTION, `option "${option}" must be ${expected}`)
}

/** Throws TS_INVALID_OPTION for the first key of `value` not in `allowed` (`where` prefixes its name). */
export function checkKeys(value: object, allowed: readonly string[], where = ''): void {
  for (const key of Object.keys(value)) {
    if (!allowed.includes(key)) {
      const name = where ? `${where}.${key}` : key
      throw new TieredSessionError(ErrorCodes.INVALID_OPTION, `unknown option "${name}"`)
    }
  }
}

/** An integer in [min, max], or `fallback` when undefined. */
export function integer(
  value: unknown,
  option: string,
  min: number,
  fallback: number,
  max = Number.MAX_SAFE_INTEGER,
): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !Number.isSafeInteger(value) || value < min || value > max) {
    throw invalid(
      option,
      max === Number.MAX_SAFE_INTEGER ? `an integer >= ${min}` : `an integer from ${min} to ${max}`,
    )
  }
  return value
}

/** A number in (0, 1], or `fallback` when undefined. */
export function fraction(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value > 0 && value <= 1)) throw invalid(option, 'a number in (0, 1]')
  return value
}

/** A fraction of a session's lifetime in [0, 1] (0 included: "always"), or `fallback` when undefined. */
export function lifetimeFraction(value: unknown, option: string, fallback: number): number {
  if (value === undefined) return fallback
  if (typeof value !== 'number' || !(value >= 0 && value <= 1))
    throw invalid(option, 'a fraction of the session lifetime in [0, 1]')
  return value
}

/** A boolean, or `fallback` when undefined. */
export function boolean(value: unknown, option: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(option, 'a boolean')
  return value
}

/** A plain object (not null, not an array), or undefined when undefined. */
export function plainObject(value: unknown, option: string): Record<string, unknown> | undefined {
  if (value === undefined) return undefined
  if (value === null || typeof value !== 'object' || Array.isArray(value)) throw invalid(option, 'an object')
  return value as Record<string, unknown>
}

/** One of `choices`, or `fallback` when undefined; `expected` describes them in the error. */
export function oneOf<T>(
  value: unknown,
  option: string,
  choices: readonly T[],
  fallback: T,
  expected: string,
): T {
  if (value === undefined) return fallback
  if (!choices.includes(value as T)) throw invalid(option, expected)
  return value as T
}
