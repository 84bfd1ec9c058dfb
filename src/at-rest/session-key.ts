// How a session id becomes the key every tier stores it under (`hashIds`: SHA-256 of the id, so a dump holds
// no id a cookie could carry), and a session's handle: an opaque name of a stored session, safe to show.

import * as crypto from 'node:crypto'
import { isValidSid } from '../session-fields.js'

const { createHash } = crypto

/** Node's one-shot digest (Node >= 20.12): a third of createHash's cost for a short input (~0.55 against 1.5 µs). */
const oneShot = (crypto as { hash?: (algorithm: string, data: string, encoding: 'base64url') => string }).hash

/** SHA-256 of a session id, base64url without padding (43 characters): the key it is stored under. */
export function hashSid(sid: string): string {
  return oneShot === undefined
    ? createHash('sha256').update(sid).digest('base64url')
    : oneShot('sha256', sid, 'base64url')
}

/**
 * The handle of a stored session: opaque, stable for the session's life, safe to show in a page (it is neither
 * the id nor the key in the tiers: SHA-256 of the stored key, 22 base64url characters, 132 bits).
 */
export function handleOf(storedKey: string): string {
  return createHash('sha256').update(`handle\0${storedKey}`).digest('base64url').slice(0, 22)
}

/** Most ids whose key is remembered: a request's calls (get, then set or touch) hash its id once. */
const MEMO_SIZE = 512

/** Turns session ids into stored keys, remembering the last few so a request hashes its id once. */
export class SessionKeys {
  /** True when ids are hashed (`hashIds`). */
  readonly hashed: boolean
  #memo = new Map<string, string>()

  constructor(hashed: boolean) {
    this.hashed = hashed
  }

  /**
   * The key `sid` is stored under. An id that is not acceptable is returned as it is: the paths below treat it
   * as they always did (a miss, or TS_INVALID_SID).
   */
  keyOf(sid: string): string {
    if (!this.hashed || !isValidSid(sid)) return sid
    const known = this.#memo.get(sid)
    if (known !== undefined) return known
    const key = hashSid(sid)
    // NB: cleared when full rather than kept in LRU order: cheaper, and a miss costs one hash (~1 µs).
    if (this.#memo.size >= MEMO_SIZE) this.#memo = new Map()
    this.#memo.set(sid, key)
    return key
  }
}
