// Which top-level keys of a session a request changed: each key's JSON text at save time is compared
// with the text it had when the session was loaded (catches `req.session.cart.push(x)` too).

import type { SessionPatch } from '../engine-core.js'

/** Keys that are not session data: the cookie is tracked on its own. */
const NOT_DATA = new Set(['cookie'])

/** JSON text of each data key of `session`; a key whose value does not serialize maps to undefined. */
export function snapshot(session: object): Map<string, string | undefined> {
  const out = new Map<string, string | undefined>()
  for (const key of Object.keys(session)) {
    if (NOT_DATA.has(key)) continue
    const value = (session as Record<string, unknown>)[key]
    if (typeof value === 'function') continue
    const json = JSON.stringify(value)
    // NB: JSON.stringify(undefined) is undefined: such a key is as good as absent once stored.
    out.set(key, json)
  }
  return out
}

/** The keys set (with their JSON) and deleted between `before` and `after`. */
export function diff(
  before: ReadonlyMap<string, string | undefined>,
  after: ReadonlyMap<string, string | undefined>,
): Pick<SessionPatch, 'set' | 'unset'> {
  const set: Record<string, string> = {}
  const unset: string[] = []
  for (const [key, json] of after) {
    if (json === undefined) {
      if (before.get(key) !== undefined) unset.push(key)
    } else if (before.get(key) !== json) {
      Object.defineProperty(set, key, { value: json, enumerable: true, writable: true, configurable: true })
    }
  }
  for (const [key, json] of before) if (!after.has(key) && json !== undefined) unset.push(key)
  return { set, unset }
}

/** True when a patch changes nothing. */
export function isEmpty(patch: Pick<SessionPatch, 'set' | 'unset'>): boolean {
  return patch.unset.length === 0 && Object.keys(patch.set).length === 0
}

/**
 * The JSON text of a whole session from its data keys' texts (a snapshot) and its cookie: what
 * JSON.stringify of the session gives, without serializing its values a second time.
 */
export function wholeText(keys: ReadonlyMap<string, string | undefined>, cookie: unknown): string {
  let text = `{"cookie":${JSON.stringify(cookie)}`
  for (const [key, json] of keys) if (json !== undefined) text += `,${JSON.stringify(key)}:${json}`
  return `${text}}`
}
