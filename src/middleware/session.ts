// `req.session`: the session's data as own properties, its `id` and `cookie`, and express-session's
// methods, each taking a callback or returning a Promise.

import type { Callback } from '../callback.js'
import { withCallback } from '../callback.js'
import type { SessionCookie } from './session-cookie.js'

/** What a Session asks of its request's controller. */
export interface SessionController {
  regenerate(keep: readonly string[]): Promise<void>
  destroy(): Promise<void>
  reload(): Promise<void>
  save(): Promise<void>
  touch(): void
}

/** Options of {@link Session.regenerate}. */
export interface RegenerateOptions {
  /** Top-level keys carried over to the new session (e.g. `['cart']`). */
  keep?: readonly string[]
}

/** Names that are methods or fields of a Session and so never data keys. */
export const RESERVED_KEYS: ReadonlySet<string> = new Set([
  'id',
  'cookie',
  'regenerate',
  'destroy',
  'reload',
  'save',
  'touch',
  'resetMaxAge',
])

const kController = Symbol('controller')
const kId = Symbol('id')

/** A request's session. Data keys are own enumerable properties; everything else is not. */
export class Session {
  declare cookie: SessionCookie
  declare readonly [kController]: SessionController
  declare readonly [kId]: string

  constructor(
    id: string,
    cookie: SessionCookie,
    data: Record<string, unknown>,
    controller: SessionController,
  ) {
    Object.defineProperty(this, kController, { value: controller })
    Object.defineProperty(this, kId, { value: id })
    this.cookie = cookie
    for (const [key, value] of Object.entries(data)) {
      if (RESERVED_KEYS.has(key)) continue
      // NB: defineProperty, so a stored "__proto__" key stays data and never becomes a prototype.
      Object.defineProperty(this, key, { value, enumerable: true, writable: true, configurable: true })
    }
  }

  /** The session id (also `req.sessionID`). */
  get id(): string {
    return this[kId]
  }

  /**
   * Replaces the session with a new one under a new id (call it on login). `keep` carries the named keys
   * over, so a visitor keeps their cart. The old session is destroyed in the store.
   */
  regenerate(options?: RegenerateOptions): Promise<void>
  regenerate(callback: (err?: unknown) => void): void
  regenerate(options: RegenerateOptions, callback: (err?: unknown) => void): void
  regenerate(
    optionsOrCallback?: RegenerateOptions | Callback<void>,
    callback?: Callback<void>,
  ): Promise<void> | undefined {
    const cb = typeof optionsOrCallback === 'function' ? optionsOrCallback : callback
    const keep =
      typeof optionsOrCallback === 'object' && optionsOrCallback !== null ? optionsOrCallback.keep : []
    return withCallback(() => this[kController].regenerate(keep ?? []), cb)
  }

  /** Destroys the session in the store and removes `req.session`. */
  destroy(): Promise<void>
  destroy(callback: (err?: unknown) => void): void
  destroy(callback?: Callback<void>): Promise<void> | undefined {
    return withCallback(() => this[kController].destroy(), callback)
  }

  /** Replaces `req.session` with the stored version (what other requests saved meanwhile). */
  reload(): Promise<void>
  reload(callback: (err?: unknown) => void): void
  reload(callback?: Callback<void>): Promise<void> | undefined {
    return withCallback(() => this[kController].reload(), callback)
  }

  /** Saves now (it is saved before the response anyway); resolves once durable. */
  save(): Promise<void>
  save(callback: (err?: unknown) => void): void
  save(callback?: Callback<void>): Promise<void> | undefined {
    return withCallback(() => this[kController].save(), callback)
  }

  /** Restarts the cookie's lifetime and writes the new expiry at the end of the request, whatever `touchAfter` says. */
  touch(): Promise<void>
  touch(callback: (err?: unknown) => void): void
  touch(callback?: Callback<void>): Promise<void> | undefined {
    return withCallback(() => this[kController].touch(), callback)
  }

  /** Restarts the cookie's lifetime (`expires` = now + `originalMaxAge`) in memory. */
  resetMaxAge(): Promise<void>
  resetMaxAge(callback: (err?: unknown) => void): void
  resetMaxAge(callback?: Callback<void>): Promise<void> | undefined {
    return withCallback(() => this.cookie.resetMaxAge(), callback)
  }
}
