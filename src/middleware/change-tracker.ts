// Which top-level keys of a session a request changed: each key's JSON text at save time (a codec snapshot) is
// compared with the text it had when the session was loaded.

import type { KeySnapshot, PatchInput } from '../codec.js'

/** The keys set (with their JSON) and deleted between `before` and `after`. */
export function diff(before: KeySnapshot, after: KeySnapshot): Pick<PatchInput, 'set' | 'unset'> {
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
export function isEmpty(patch: Pick<PatchInput, 'set' | 'unset'>): boolean {
  return patch.unset.length === 0 && Object.keys(patch.set).length === 0
}
