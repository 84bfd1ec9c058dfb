// Writing the signed session cookie onto the response, and whether the request came over HTTPS.

import type { IncomingMessage, ServerResponse } from 'node:http'
import type { TLSSocket } from 'node:tls'
import { serialize } from 'cookie'
import type { SessionCookie } from './session-cookie.js'
import type { Signer } from './signature.js'

/** Whether the request is HTTPS: the socket, else `X-Forwarded-Proto` (proxy: true), else Express's `req.secure`. */
export function isSecureRequest(req: IncomingMessage, proxy: boolean | undefined): boolean {
  if ((req.socket as TLSSocket).encrypted) return true
  if (proxy === false) return false
  if (proxy === true) {
    const header = req.headers['x-forwarded-proto']
    const first = (Array.isArray(header) ? header[0] : header)?.split(',')[0]?.trim().toLowerCase()
    return first === 'https'
  }
  return (req as IncomingMessage & { secure?: boolean }).secure === true
}

/**
 * Appends `Set-Cookie: <name>=s:<sid>.<signature>` (URL-encoded, as express-session writes it). A secure
 * cookie is not sent over plain HTTP. Returns whether it was set.
 */
export function setSessionCookie(
  req: IncomingMessage,
  res: ServerResponse,
  options: { name: string; signer: Signer; proxy: boolean | undefined },
  sid: string,
  cookie: SessionCookie,
): boolean {
  const secureRequest = isSecureRequest(req, options.proxy)
  const secure = cookie.secure === 'auto' ? secureRequest : cookie.secure === true
  if (secure && !secureRequest) return false
  const header = serialize(options.name, `s:${options.signer.sign(sid)}`, cookie.serializeOptions(secure))
  const previous = res.getHeader('Set-Cookie')
  const list = previous === undefined ? [] : Array.isArray(previous) ? previous : [String(previous)]
  res.setHeader('Set-Cookie', [...list, header])
  return true
}
