// Sessions as the tool names them: by handle (opaque, safe to show: see at-rest/session-key.ts), never by id.

import type { StoredSession } from '../session-data.js'
import { managerOf, type TieredStore } from '../store.js'

/** A session of a user as `sessions` shows it. */
export interface HandleEntry {
  readonly handle: string
  /** Absolute expiry, milliseconds since the epoch. */
  readonly expiresAt: number
  /** When the session was created (ms since the epoch), known to a store with `maxLifetime`. */
  readonly createdAt: number | undefined
  readonly session: StoredSession
}

/** The live sessions of a user, by handle, soonest to expire first. */
export async function sessionsOf(store: TieredStore, userId: string): Promise<HandleEntry[]> {
  const entries = await store.listByUser(userId)
  return entries
    .map((entry) => ({
      handle: entry.handle,
      expiresAt: entry.expiresAt,
      createdAt: entry.createdAt,
      session: entry.session,
    }))
    .sort((a, b) => a.expiresAt - b.expiresAt)
}

/** Destroys the session with this handle (a scan: for tools); resolves to whether there was one. */
export function destroyHandle(store: TieredStore, handle: string): Promise<boolean> {
  return managerOf(store).destroyByHandle(handle)
}

/** Destroys every session of a user but the one with handle `except`; resolves to how many. */
export async function logoutUser(store: TieredStore, userId: string, except?: string): Promise<number> {
  if (except === undefined) return store.destroyByUser(userId)
  const only = (await store.listByUser(userId)).map((entry) => entry.handle).filter((h) => h !== except)
  // NB: `only` empty destroys nothing (a session created meanwhile is kept: run logout again for it).
  return only.length === 0 ? 0 : store.destroyByUser(userId, { only })
}
