// Cookie value signing in express-session's format: `<value>.<HMAC-SHA256, base64, no padding>`,
// verified in constant time against every secret.

import { createHmac, timingSafeEqual } from 'node:crypto'

/** `value` followed by a dot and its HMAC-SHA256 under `secret` (base64 without `=` padding). */
export function sign(value: string, secret: string): string {
  return `${value}.${createHmac('sha256', secret).update(value).digest('base64').replace(/=+$/, '')}`
}

/** What {@link unsign} found: the value and the index of the secret that verified it. */
export interface Unsigned {
  readonly value: string
  readonly secretIndex: number
}

/**
 * Verifies `signed` against each secret in turn; returns the value and which secret matched, or undefined.
 * Comparison is constant-time: an HMAC-SHA256 in base64 always has the same length, so only equal-length
 * candidates reach `timingSafeEqual`, and the length says nothing about the secret.
 */
export function unsign(signed: string, secrets: readonly string[]): Unsigned | undefined {
  const dot = signed.lastIndexOf('.')
  if (dot <= 0) return undefined
  const value = signed.slice(0, dot)
  const given = Buffer.from(signed.slice(dot + 1))
  for (let i = 0; i < secrets.length; i++) {
    const expected = Buffer.from(
      createHmac('sha256', secrets[i] as string)
        .update(value)
        .digest('base64')
        .replace(/=+$/, ''),
    )
    if (given.length === expected.length && timingSafeEqual(given, expected)) return { value, secretIndex: i }
  }
  return undefined
}
