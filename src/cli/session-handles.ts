// Sessions as the tool names them: by handle (opaque, safe to show), never by id. NB: built on today's store
// API, where sessions are listed with their ids; once ids are hashed at rest (`hashIds`), listByUser gives the
// handle and the engine destroys by handle, and these three become calls of those.

import { createHash } from 'node:crypto'
import type { StoredSession } from '../session-data.js'
import type { TieredStore } from '../store.js'

/** A session of a user as `sessions` shows it. */
export interface HandleEntry {
  readonly handle: string
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
  readonly session: StoredSession
}

/** The handle of a stored session: SHA-256 of its stored key (`handle\0` first), 22 base64url characters. */
export function handleOf(storedKey: string): string {
  return createHash('sha256').update(`handle\0${storedKey}`).digest('base64url').slice(0, 22)
}

/** The live sessions of a user, by handle, soonest to expire first. */
export async function sessionsOf(store: TieredStore, userId: string): Promise<HandleEntry[]> {
  const entries = await store.listByUser(userId)
  return entries
    .map((entry) => ({ handle: handleOf(entry.sid), expiresAt: entry.expiresAt, session: entry.session }))
    .sort((a, b) => a.expiresAt - b.expiresAt)
}

/** Destroys the session with this handle (a scan of every id: for tools); resolves to whether there was one. */
export async function destroyHandle(store: TieredStore, handle: string): Promise<boolean> {
  const sid = (await store.ids()).find((id) => handleOf(id) === handle)
  if (sid === undefined) return false
  await store.destroy(sid)
  return true
}

/** Destroys every session of a user but the one with handle `except`; resolves to how many. */
export async function logoutUser(store: TieredStore, userId: string, except?: string): Promise<number> {
  const keep = (await store.listByUser(userId))
    .filter((entry) => handleOf(entry.sid) === except)
    .map((entry) => entry.sid)
  return store.destroyByUser(userId, { except: keep })
}
