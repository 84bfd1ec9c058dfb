import { describe, expect, it } from 'vitest'
import { ErrorCodes, TieredSessionError } from '../src/errors.js'
import { statusFor, withStatus } from '../src/middleware/error-status.js'

describe('store errors passed to next(err)', () => {
  it.each([
    [ErrorCodes.REDIS_UNAVAILABLE, 503],
    [ErrorCodes.REDIS_REFUSED, 503],
    [ErrorCodes.WRITE_CONFLICT, 503],
    [ErrorCodes.SESSION_TOO_LARGE, 413],
    [ErrorCodes.DISK_IO, 500],
    [ErrorCodes.STORE_CLOSED, 500],
  ])('%s becomes status %i', (code, status) => {
    const err = withStatus(new TieredSessionError(code, 'x'))
    expect(err.status).toBe(status)
    expect(err).toBeInstanceOf(TieredSessionError)
    expect(statusFor(err)).toBe(status)
  })

  it('wraps a non-Error into an Error with status 500', () => {
    expect(withStatus('boom')).toMatchObject({ message: 'boom', status: 500 })
  })
})
