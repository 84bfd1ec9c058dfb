// session-file-store's format: one `<sid>.json` file per session, the JSON of the session plus `__lastAccess`
// (ms); it expires `cookie.originalMaxAge` (else its `ttl`, 3,600 s by default) after that last access. With its
// `secret` option a file holds ciphertext (kruptein's JSON envelope) that cannot be read without the secret.

import type { SessionObject } from '../codec.js'

/** session-file-store's default `ttl`, in seconds. */
export const FILE_STORE_DEFAULT_TTL_S = 3600

/** What one file holds. */
export type FileStoreEntry =
  | { readonly kind: 'session'; readonly session: SessionObject; readonly expiresAt: number }
  | { readonly kind: 'expired' }
  | { readonly kind: 'encrypted' }
  | { readonly kind: 'not-a-session' }

/**
 * The session in a session-file-store file, with its expiry (ms since the epoch) written into its cookie;
 * `ttlSeconds` is the store's `ttl` option.
 */
export function parseFileStoreFile(text: string, now: number, ttlSeconds: number): FileStoreEntry {
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch {
    // NB: with `encryptEncoding: false` the ciphertext is not even JSON.
    return { kind: /^[\s{"]/.test(text) ? 'not-a-session' : 'encrypted' }
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) return { kind: 'not-a-session' }
  const record = value as Record<string, unknown>
  if (typeof record.ct === 'string' || typeof record.hmac === 'string') return { kind: 'encrypted' }
  const cookie = record.cookie
  if (cookie === null || typeof cookie !== 'object' || Array.isArray(cookie)) return { kind: 'not-a-session' }
  const { __lastAccess: lastAccess, ...session } = record
  const maxAge = (cookie as { originalMaxAge?: unknown }).originalMaxAge
  const lifetimeMs = typeof maxAge === 'number' && maxAge > 0 ? maxAge : ttlSeconds * 1000
  const since = typeof lastAccess === 'number' && Number.isFinite(lastAccess) ? lastAccess : now
  const expiresAt = since + lifetimeMs
  if (expiresAt <= now) return { kind: 'expired' }
  session.cookie = { ...(cookie as object), expires: new Date(expiresAt).toISOString() }
  return { kind: 'session', session, expiresAt }
}
