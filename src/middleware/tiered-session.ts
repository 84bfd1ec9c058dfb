// tieredSession(): the session middleware. Verifies the cookie, loads the session, and commits what the
// request changed before the response's first byte goes out.

import type { IncomingMessage, ServerResponse } from 'node:http'
import { managerOf, TieredStore } from '../store.js'
import { readCookie } from './cookie-header.js'
import { withStatus } from './error-status.js'
import { holdResponse } from './hold-response.js'
import type { TieredSessionOptions } from './options.js'
import { resolveSessionOptions } from './options.js'
import { SessionContext } from './session-context.js'
import { setSessionCookie } from './set-cookie.js'
import { Signer } from './signature.js'

/** A Connect/Express middleware. */
export type SessionMiddleware = ((
  req: IncomingMessage,
  res: ServerResponse,
  next: (err?: unknown) => void,
) => void) & {
  /** The store this middleware uses (created from options when none was given). */
  readonly store: TieredStore
}

/**
 * Session middleware with express-session's `req.session` API and cookie format, that saves before the
 * response is sent, merges parallel changes, and throttles touch writes. Options are checked here, so a
 * bad configuration fails at start-up with TS_INVALID_OPTION.
 */
export function tieredSession(options: TieredSessionOptions): SessionMiddleware {
  const resolved = resolveSessionOptions(options)
  const store = options.store instanceof TieredStore ? options.store : new TieredStore(options.store ?? {})
  const manager = managerOf(store)
  const signer = new Signer(resolved.secrets)

  const middleware = (req: IncomingMessage, res: ServerResponse, next: (err?: unknown) => void): void => {
    // Already handled (e.g. mounted twice).
    if ((req as { session?: unknown }).session !== undefined) {
      next()
      return
    }
    let cookieSid: string | undefined
    let secretIndex = 0
    const raw = readCookie(req.headers.cookie, resolved.name)
    if (raw?.startsWith('s:')) {
      const verified = signer.unsign(raw.slice(2))
      if (verified !== undefined) {
        cookieSid = verified.value
        secretIndex = verified.secretIndex
      }
    }
    SessionContext.open(req, store, manager, resolved, cookieSid, secretIndex).then(
      (context) => {
        holdResponse(
          res,
          async () => {
            const result = await context.commit()
            if (result.setCookie && result.cookie !== undefined) {
              setSessionCookie(
                req,
                res,
                { name: resolved.name, signer, proxy: resolved.proxy },
                result.sid,
                result.cookie,
              )
            }
          },
          (error) => next(withStatus(error)),
        )
        next()
      },
      (error: unknown) => next(withStatus(error)),
    )
  }
  return Object.assign(middleware, { store })
}
