// The handle listByUser gives a session stored with hashIds (the default), from the id the test chose.

import { handleOf, hashSid } from '../../src/at-rest/session-key.js'

/** The handle of the session with id `sid` in a store with `hashIds` on. */
export function handleFor(sid: string): string {
  return handleOf(hashSid(sid))
}

/** The handles of these ids, sorted as `.sort()` sorts strings. */
export function handlesFor(...sids: string[]): string[] {
  return sids.map(handleFor).sort()
}

/** The key a store with `hashIds` on keeps the session with id `sid` under (SQLite rows, outbox, Redis keys). */
export function storedKey(sid: string): string {
  return hashSid(sid)
}
