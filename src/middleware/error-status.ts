// The HTTP status a store error maps to when it reaches next(err).

import { ErrorCodes } from '../errors.js'

/** Codes that mean "try again shortly": Redis down, Redis refusing commands, a session changing too fast. */
const RETRYABLE: ReadonlySet<unknown> = new Set([
  ErrorCodes.REDIS_UNAVAILABLE,
  ErrorCodes.REDIS_REFUSED,
  ErrorCodes.WRITE_CONFLICT,
])

/** 503 for TS_REDIS_UNAVAILABLE, TS_REDIS_REFUSED and TS_WRITE_CONFLICT, 413 for TS_SESSION_TOO_LARGE, else 500. */
export function statusFor(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code
  if (RETRYABLE.has(code)) return 503
  if (code === ErrorCodes.SESSION_TOO_LARGE) return 413
  return 500
}

/** Gives an error object its `status` (what Express's error handler reads); wraps anything else. */
export function withStatus(error: unknown): Error & { status: number } {
  const err = error instanceof Error ? error : new Error(String(error))
  const status = statusFor(err)
  Object.defineProperty(err, 'status', {
    value: status,
    enumerable: false,
    writable: true,
    configurable: true,
  })
  return err as Error & { status: number }
}
