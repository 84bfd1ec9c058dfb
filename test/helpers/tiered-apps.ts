// Express apps (5 and 4) that use tieredSession(), with routes that read and change the session the
// way a login + cart app does.

import type { IncomingMessage } from 'node:http'
import express5 from 'express'
import express4 from 'express4'
import type { TieredSessionOptions } from '../../src/middleware/options.js'
import type { SessionRequestFields } from '../../src/middleware/session-context.js'
import { tieredSession } from '../../src/middleware/tiered-session.js'

/** The Express flavours every middleware behaviour is tested on. */
export const expressVersions = [
  ['Express 5', express5],
  ['Express 4', express4 as unknown as typeof express5],
] as const

/** `req.session` with loose data typing, for tests. */
export function sessionOf(req: unknown): SessionRequestFields['session'] & Record<string, any> {
  return (req as SessionRequestFields).session as SessionRequestFields['session'] & Record<string, any>
}

export function requestFields(req: IncomingMessage | unknown): Partial<SessionRequestFields> {
  return req as Partial<SessionRequestFields>
}

/** An app with tieredSession(options) and a few routes; extra routes can be added by `extend`. */
export function tieredApp(
  express: typeof express5,
  options: TieredSessionOptions,
  extend?: (app: ReturnType<typeof express5>) => void,
) {
  const app = express()
  app.use(express.urlencoded({ extended: false }))
  app.use(tieredSession(options))
  extend?.(app)
  app.get('/views', (req, res) => {
    const s = sessionOf(req)
    s.views = (s.views ?? 0) + 1
    res.json({ views: s.views })
  })
  app.get('/whoami', (req, res) => {
    const s = sessionOf(req)
    res.json({ user: s?.user ?? null, cart: s?.cart ?? [], id: requestFields(req).sessionID ?? null })
  })
  app.post('/cart', (req, res) => {
    const s = sessionOf(req)
    s.cart ??= []
    s.cart.push(String(req.body.item))
    res.redirect('/cart')
  })
  app.get('/cart', (req, res) => {
    res.json({ cart: sessionOf(req).cart ?? [] })
  })
  app.post('/set/:key', (req, res) => {
    sessionOf(req)[req.params.key as string] = req.body.value ?? true
    res.json({ ok: true })
  })
  app.post('/login', async (req, res, next) => {
    try {
      await sessionOf(req).regenerate({ keep: ['cart'] })
      sessionOf(req).user = String(req.body.user)
      sessionOf(req).userId = String(req.body.user)
      res.json({ ok: true, id: requestFields(req).sessionID })
    } catch (err) {
      next(err)
    }
  })
  app.post('/logout', (req, res, next) => {
    sessionOf(req).destroy((err?: unknown) => (err ? next(err) : res.json({ ok: true })))
  })
  app.use((err: Error & { status?: number; code?: string }, _req: unknown, res: any, _next: unknown) => {
    res.status(err.status ?? 500).json({ code: err.code ?? null, status: err.status ?? null })
  })
  return app
}

/** The session id in a Set-Cookie header list, or undefined. */
export function sidFromSetCookie(
  setCookie: string[] | string | undefined,
  name = 'connect.sid',
): string | undefined {
  const header = ([] as string[]).concat(setCookie ?? []).find((c) => c.startsWith(`${name}=`))
  if (header === undefined) return undefined
  const value = decodeURIComponent(header.split(';')[0]?.slice(name.length + 1) ?? '')
  return value.slice(2, value.lastIndexOf('.'))
}
