// TieredSessionError and the closed set of error codes users branch on.
// Messages never carry session data or session ids.

/** Every error code this package produces. Branch on `err.code`, never on `instanceof`. */
export const ErrorCodes = {
  /** An option passed to a constructor is missing, of the wrong type or out of range. */
  INVALID_OPTION: 'TS_INVALID_OPTION',
  /** A session id is not a non-empty string of visible ASCII of at most 256 characters. */
  INVALID_SID: 'TS_INVALID_SID',
  /** A serialized session is larger than `maxSessionBytes`. */
  SESSION_TOO_LARGE: 'TS_SESSION_TOO_LARGE',
  /** A session could not be serialized (a cycle, a BigInt, not an object). */
  ENCODE_FAILED: 'TS_ENCODE_FAILED',
  /** A stored payload could not be decoded; the read is a miss. */
  DECODE_FAILED: 'TS_DECODE_FAILED',
  /** The SQLite file or its directory could not be created or opened. */
  DISK_OPEN_FAILED: 'TS_DISK_OPEN_FAILED',
  /** A read or a transaction on the SQLite file failed at run time. */
  DISK_IO: 'TS_DISK_IO',
  /** Redis did not answer within `commandTimeout` or is disconnected (an outage). */
  REDIS_UNAVAILABLE: 'TS_REDIS_UNAVAILABLE',
  /** Redis answered but refused the command (WRONGTYPE, OOM, READONLY, CLUSTERDOWN, ...): not an outage. */
  REDIS_REFUSED: 'TS_REDIS_REFUSED',
  /** A merge or touch lost its compare-and-set to other writers of the same session too many times in a row. */
  WRITE_CONFLICT: 'TS_WRITE_CONFLICT',
  /** `req.session.reload()` found no session to load (destroyed or expired meanwhile). */
  SESSION_NOT_FOUND: 'TS_SESSION_NOT_FOUND',
  /** The store was closed; no further operation is accepted. */
  STORE_CLOSED: 'TS_STORE_CLOSED',
  /** An operation needs the SQLite file and the store has none (`disk: false`). */
  NO_DISK_TIER: 'TS_NO_DISK_TIER',
  /** `store.backup(path)` could not create or write the copy at `path`. */
  BACKUP_FAILED: 'TS_BACKUP_FAILED',
} as const

/** One of {@link ErrorCodes}. */
export type ErrorCode = (typeof ErrorCodes)[keyof typeof ErrorCodes]

/** The one error class of this package; `code` says what happened. */
export class TieredSessionError extends Error {
  override readonly name = 'TieredSessionError'
  readonly code: ErrorCode

  constructor(code: ErrorCode, message: string, options?: { cause?: unknown }) {
    super(message, options)
    this.code = code
  }
}

/** True when `err` carries one of our codes (works across ESM/CJS copies of the class). */
export function isTieredSessionError(err: unknown): err is TieredSessionError {
  return (
    err instanceof Error &&
    typeof (err as { code?: unknown }).code === 'string' &&
    (Object.values(ErrorCodes) as string[]).includes((err as unknown as { code: string }).code)
  )
}

/** Wraps anything thrown by a dependency into a TieredSessionError with `code`, keeping ours as they are. */
export function wrapError(code: ErrorCode, message: string, cause: unknown): TieredSessionError {
  if (isTieredSessionError(cause)) return cause
  return new TieredSessionError(code, message, { cause })
}
