// The session data type users extend by declaration merging, shared by the store and the middleware.

/**
 * The data you keep in a session. Extend it by declaration merging:
 * `declare module 'tiered-session' { interface SessionData { cart: string[] } }`.
 */
// biome-ignore lint/suspicious/noEmptyInterface: users extend it by declaration merging.
export interface SessionData {}

/** What is stored under `session.cookie` (express-session's Cookie#toJSON shape). */
export interface StoredCookie {
  originalMaxAge: number | null
  expires: string | Date | null
  secure?: boolean | 'auto'
  httpOnly?: boolean
  domain?: string
  path?: string
  sameSite?: boolean | 'lax' | 'strict' | 'none'
  partitioned?: boolean
  priority?: 'low' | 'medium' | 'high'
}

/** A session as the store keeps and returns it: your data, and the cookie the middleware stores with it. */
export type StoredSession = SessionData & { cookie?: StoredCookie; [key: string]: unknown }
