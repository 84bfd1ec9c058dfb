// The HTTP status a store error maps to when it reaches next(err).

import { ErrorCodes } from '../errors.js'

/** 503 for TS_REDIS_UNAVAILABLE, 413 for TS_SESSION_TOO_LARGE, else 500. */
export function statusFor(error: unknown): number {
  const code = (error as { code?: unknown } | null)?.code
  if (code === ErrorCodes.REDIS_UNAVAILABLE) return 503
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
