// The line format of `tiered-session export` and `import`: one session per line (NDJSON), under the key the
// store keeps it, with its absolute expiry, so a store can move between machines or between local and shared mode.

import { hashSid } from '../at-rest/session-key.js'
import type { SessionObject } from '../codec.js'
import type { ExportedRow } from '../manager/engine.js'
import { isValidSid } from '../session-fields.js'

/**
 * One line of an export, as JSON text ending in `\n`:
 *
 * ```json
 * {"key":"…","hashedKey":true,"expiresAt":1767225600000,"createdAt":null,"userId":"42","session":{"cookie":{…},"userId":42}}
 * ```
 *
 * - `key`: the key the store keeps the session under — the stored key, not necessarily a session id. With
 *   hashed ids it is the hash, and an import stores it as it is, never hashing it again.
 * - `hashedKey`: true when `key` is the SHA-256 of a session id (the store's `hashIds`), false when it is the id
 *   itself. A store that hashes ids takes both (a plain id is hashed on import); one that does not (`hashIds:
 *   false`) cannot take a hashed key.
 * - `expiresAt`: absolute expiry in milliseconds since the epoch; an import keeps it (an expired line is skipped).
 * - `createdAt`: when the session was created (ms since the epoch), known to a store with `maxLifetime`; else
 *   null. An import keeps it, so the absolute lifetime still counts from the session's creation.
 * - `userId`: the user the exporting store's `userId` option gave the session, or null; an import keeps it.
 * - `session`: the session as the app stored it (JSON), its `cookie` included.
 */
export interface ExportLine {
  readonly key: string
  readonly hashedKey: boolean
  readonly expiresAt: number
  readonly createdAt: number | null
  readonly userId: string | null
  readonly session: SessionObject
}

/** The line of one exported row. */
export function formatLine(row: ExportedRow, hashedKey: boolean): string {
  const line: ExportLine = {
    key: row.key,
    hashedKey,
    expiresAt: row.expiresAt,
    createdAt: row.createdAt ?? null,
    userId: row.userId,
    session: row.session,
  }
  return `${JSON.stringify(line)}\n`
}

/** A parsed line, or why it is not one (a reason that carries no data of the line). */
export type ParsedLine =
  | { readonly ok: true; readonly line: ExportLine }
  | { readonly ok: false; readonly reason: string }

/** Parses one line of an export. */
export function parseLine(text: string): ParsedLine {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    return { ok: false, reason: 'not JSON' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value))
    return { ok: false, reason: 'not a JSON object' }
  const { key, hashedKey, expiresAt, createdAt = null, userId, session } = value as Record<string, unknown>
  if (typeof key !== 'string' || key === '') return { ok: false, reason: '"key" is not a non-empty string' }
  if (typeof hashedKey !== 'boolean') return { ok: false, reason: '"hashedKey" is not true or false' }
  if (typeof expiresAt !== 'number' || !Number.isFinite(expiresAt))
    return { ok: false, reason: '"expiresAt" is not a number of milliseconds' }
  if (createdAt !== null && (typeof createdAt !== 'number' || !Number.isFinite(createdAt)))
    return { ok: false, reason: '"createdAt" is not a number of milliseconds or null' }
  if (userId !== null && typeof userId !== 'string')
    return { ok: false, reason: '"userId" is not a string or null' }
  if (session === null || typeof session !== 'object' || Array.isArray(session))
    return { ok: false, reason: '"session" is not an object' }
  return {
    ok: true,
    line: { key, hashedKey, expiresAt, createdAt, userId, session: session as SessionObject },
  }
}

/** A hashed id: SHA-256, base64url without padding. */
const HASHED_KEY = /^[A-Za-z0-9_-]{43}$/

/**
 * The key a line is stored under in a store that hashes ids (`hashIds`) or not: a hashed key as it is (never
 * hashed again), a plain id hashed for a store that hashes; or why the store cannot take it.
 */
export function storedKeyOf(
  line: ExportLine,
  hashIds: boolean,
): { readonly ok: true; readonly key: string } | { readonly ok: false; readonly reason: string } {
  if (line.hashedKey) {
    if (!hashIds)
      return { ok: false, reason: 'its key is a hashed id, and this store keeps plain ids (hashIds: false)' }
    if (!HASHED_KEY.test(line.key)) return { ok: false, reason: '"key" is not a hashed id' }
    return { ok: true, key: line.key }
  }
  if (!isValidSid(line.key)) return { ok: false, reason: '"key" is not a valid session id' }
  return { ok: true, key: hashIds ? hashSid(line.key) : line.key }
}
