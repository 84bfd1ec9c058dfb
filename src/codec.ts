// The one owner of a session's JSON text: the whole payload (encode, decode, exact size), the per-key snapshot
// the middleware compares to find what a request changed, the whole text built from that snapshot, JSON
// copies, and the record transforms of a merge (patch) and a touch (new cookie).

import { ErrorCodes, TieredSessionError } from './errors.js'

/** A session as stored: any JSON-serializable object (express-session adds `cookie`). */
export type SessionObject = Record<string, unknown>

/** A serialized session and its exact size in bytes (UTF-8). */
export interface Encoded {
  readonly payload: string
  readonly bytes: number
}

/** JSON text of each top-level data key (not `cookie`, not functions); undefined for a key that serializes to nothing. */
export type KeySnapshot = ReadonlyMap<string, string | undefined>

/** The changes of one request as a merge applies them (see `SessionPatch`). */
export interface PatchInput {
  /** Top-level keys set, each as its JSON text. */
  readonly set: Readonly<Record<string, string>>
  /** Top-level keys deleted. */
  readonly unset: readonly string[]
  /** The cookie to store, or undefined to keep the stored one. */
  readonly cookie?: unknown
}

/** What a record transform needs to know of the store's rules. */
export interface RecordRules {
  /** Throws TS_SESSION_TOO_LARGE for a payload over `maxSessionBytes`. */
  checkSize(bytes: number): void
  /** The absolute expiry (ms) a session gets when written at `now`. */
  expiresAt(session: SessionObject, now: number): number
  /** The user a session belongs to, or null. */
  userId(session: SessionObject): string | null
}

/** A serialized session with the fields a transform reads and writes (a tier's stored record fits). */
export interface SessionRecord {
  readonly payload: string
  readonly expiresAt: number
  readonly userId: string | null
}

/** Keys that are not session data: the cookie is tracked on its own. */
const NOT_DATA = new Set(['cookie'])

function encodeFailed(cause: unknown): TieredSessionError {
  return new TieredSessionError(ErrorCodes.ENCODE_FAILED, 'the session could not be serialized to JSON', {
    cause,
  })
}

/** Serializes a session. Throws TS_ENCODE_FAILED for cycles, BigInts and non-objects. */
export function encodeSession(session: unknown): Encoded {
  if (session === null || typeof session !== 'object' || Array.isArray(session)) {
    throw new TieredSessionError(ErrorCodes.ENCODE_FAILED, 'a session must be a plain object')
  }
  let payload: string
  try {
    payload = JSON.stringify(session)
  } catch (cause) {
    throw encodeFailed(cause)
  }
  return { payload, bytes: Buffer.byteLength(payload, 'utf8') }
}

/** Decodes a stored payload. Throws TS_DECODE_FAILED unless it is JSON text of a plain object. */
export function decodeSession(payload: unknown): SessionObject {
  if (typeof payload !== 'string') {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not text')
  }
  let value: unknown
  try {
    value = JSON.parse(payload)
  } catch (cause) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not valid JSON', {
      cause,
    })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not an object')
  }
  return value as SessionObject
}

/** The exact size in bytes of a payload as the memory tier counts it. */
export function payloadBytes(payload: string): number {
  return Buffer.byteLength(payload, 'utf8')
}

/** A deep copy through JSON (undefined for a value that serializes to nothing). Throws TS_ENCODE_FAILED. */
export function copyJson<T>(value: T): T | undefined {
  let json: string | undefined
  try {
    json = JSON.stringify(value)
  } catch (cause) {
    throw encodeFailed(cause)
  }
  return json === undefined ? undefined : (JSON.parse(json) as T)
}

/** The JSON text of a value, for comparing two versions of it. Throws TS_ENCODE_FAILED. */
export function jsonText(value: unknown): string | undefined {
  try {
    return JSON.stringify(value)
  } catch (cause) {
    throw encodeFailed(cause)
  }
}

/** The JSON text of each data key of `session` (catches `req.session.cart.push(x)`). Throws TS_ENCODE_FAILED. */
export function snapshotKeys(session: object): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  try {
    for (const key of Object.keys(session)) {
      if (NOT_DATA.has(key)) continue
      const value = (session as Record<string, unknown>)[key]
      if (typeof value === 'function') continue
      // NB: JSON.stringify(undefined) is undefined: such a key is as good as absent once stored.
      out.set(key, JSON.stringify(value))
    }
  } catch (cause) {
    throw encodeFailed(cause)
  }
  return out
}

/**
 * The JSON text of a whole session from its data keys' texts (a snapshot) and its cookie: what
 * JSON.stringify of the session gives, without serializing its values a second time.
 */
export function wholeText(keys: KeySnapshot, cookie: unknown): string {
  let text = `{"cookie":${JSON.stringify(cookie)}`
  for (const [key, json] of keys) if (json !== undefined) text += `,${JSON.stringify(key)}:${json}`
  return `${text}}`
}

/**
 * `current` with a request's changes applied: keys in `set` replaced, those in `unset` removed, the cookie
 * replaced. Throws TS_DECODE_FAILED (the stored copy) or TS_SESSION_TOO_LARGE.
 */
export function patchRecord(
  current: SessionRecord,
  patch: PatchInput,
  rules: RecordRules,
  now: number,
): SessionRecord {
  const latest = decodeSession(current.payload)
  for (const key of patch.unset) delete latest[key]
  for (const [key, json] of Object.entries(patch.set)) {
    // NB: defineProperty, so a "__proto__" key is data and never a prototype.
    Object.defineProperty(latest, key, {
      value: JSON.parse(json),
      enumerable: true,
      writable: true,
      configurable: true,
    })
  }
  if (patch.cookie !== undefined) latest.cookie = patch.cookie
  const { payload, bytes } = encodeSession(latest)
  rules.checkSize(bytes)
  return { payload, expiresAt: rules.expiresAt(latest, now), userId: rules.userId(latest) }
}

const COOKIE_FIRST = '{"cookie":'

/**
 * Where the cookie's JSON value ends in a payload that starts with it (`{"cookie":{...},...`), found by
 * scanning the cookie alone (strings and nesting), never the data after it; -1 for any other payload.
 */
function cookieEnd(payload: string): number {
  if (!payload.startsWith(COOKIE_FIRST)) return -1
  let depth = 0
  let inString = false
  for (let i = COOKIE_FIRST.length; i < payload.length; i++) {
    const c = payload.charCodeAt(i)
    if (inString) {
      if (c === 0x5c)
        i++ // backslash: skip the escaped character
      else if (c === 0x22) inString = false
      continue
    }
    if (c === 0x22) inString = true
    else if (c === 0x7b || c === 0x5b) depth++
    else if (c === 0x7d || c === 0x5d) {
      // NB: the payload's own closing brace ends a cookie that is a scalar (null, a number).
      if (depth === 0) return i
      depth--
      if (depth === 0) return i + 1
    } else if (c === 0x2c && depth === 0) return i
  }
  return -1
}

/**
 * The payload with its cookie replaced by `cookieText` (JSON text). A payload that starts with its cookie (what
 * express-session and tieredSession() store) is spliced as text, without decoding the data; any other is
 * decoded and encoded again, with the cookie first from then on. Throws TS_DECODE_FAILED for a payload that
 * is not a session.
 */
export function withCookie(payload: string, cookieText: string): string {
  const end = cookieEnd(payload)
  if (end >= 0) return `${COOKIE_FIRST}${cookieText}${payload.slice(end)}`
  const { cookie: _old, ...data } = decodeSession(payload)
  return `${COOKIE_FIRST}${cookieText}${JSON.stringify(data)
    .slice(1)
    .replace(/^(?!\})/, ',')}`
}

/**
 * A payload that starts with its cookie, cut in two as text: the cookie's JSON and the rest (the data); undefined
 * for any other payload.
 */
export function splitCookie(payload: string): { readonly cookie: string; readonly data: string } | undefined {
  const end = cookieEnd(payload)
  if (end < 0) return undefined
  return { cookie: payload.slice(COOKIE_FIRST.length, end), data: payload.slice(end) }
}

/** `current` with its cookie replaced, or undefined when the touch would not extend its life. */
export function touchRecord(
  current: SessionRecord,
  cookieText: string,
  expiresAt: number,
): SessionRecord | undefined {
  if (current.expiresAt >= expiresAt) return undefined
  return { payload: withCookie(current.payload, cookieText), expiresAt, userId: current.userId }
}
