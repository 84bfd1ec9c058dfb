// Type test against the *built* package (run by `npm run check:types` after the build): users type their
// session data by declaration merging and opt Express's Request into the session fields.

import express from 'express'
import type { SessionRequestFields, TieredSessionError } from 'tiered-session'
import { ErrorCodes, TieredStore, tieredSession } from 'tiered-session'

declare module 'tiered-session' {
  interface SessionData {
    cart: Array<{ sku: string; qty: number }>
    userId: string
  }
}

declare global {
  namespace Express {
    interface Request extends SessionRequestFields {}
  }
}

const store = new TieredStore({
  memory: { maxBytes: 1024 * 1024 },
  ttl: (sess) => (sess.remember ? 30 : 1) * 86_400,
})
const app = express()
app.use(tieredSession({ secret: ['new', 'old'], store, cookie: { maxAge: 86_400_000, sameSite: 'strict' } }))

app.post('/cart', async (req, res) => {
  req.session.cart ??= []
  req.session.cart.push({ sku: 'A1', qty: 1 })
  // @ts-expect-error qty is a number
  req.session.cart.push({ sku: 'A1', qty: 'one' })
  await req.session.regenerate({ keep: ['cart'] })
  await req.session.save()
  const mine: string = req.sessionID
  const sessions = await req.sessionStore.listByUser(req.session.userId ?? '')
  res.json({ mine, n: sessions.length, expires: req.session.cookie.expires?.toISOString() ?? null })
})

function onError(err: TieredSessionError): string {
  return err.code === ErrorCodes.SESSION_TOO_LARGE ? 'too large' : err.code
}
store.on('error', onError)
