// Cookie value signing in express-session's format: `<value>.<HMAC-SHA256, base64, no padding>`,
// verified in constant time against every secret.

import type { KeyObject } from 'node:crypto'
import { createHmac, createSecretKey } from 'node:crypto'

/** Values whose signatures a {@link Signer} remembers, at most (~100 B each). */
const REMEMBERED_VALUES = 10_000

/** What {@link Signer.unsign} found: the value and the index of the secret that verified it. */
export interface Unsigned {
  readonly value: string
  readonly secretIndex: number
}

/** Equal strings, compared without an early exit (both are base64 signatures of the same length). */
function sameSignature(a: string, b: string): boolean {
  if (a.length !== b.length) return false
  let diff = 0
  for (let i = 0; i < a.length; i++) diff |= a.charCodeAt(i) ^ b.charCodeAt(i)
  return diff === 0
}

/**
 * Signs with the first secret and verifies against each in turn. An HMAC is a pure function of secret and
 * value, so the signatures of recently seen values are remembered: a returning visitor's cookie is verified
 * by a constant-time comparison with no HMAC computed (which was most of the middleware's own CPU time).
 */
export class Signer {
  readonly #keys: readonly KeyObject[]
  /** value → its signature under each secret (computed when first needed). */
  readonly #signatures = new Map<string, Array<string | undefined>>()

  constructor(secrets: readonly string[]) {
    this.#keys = secrets.map((secret) => createSecretKey(Buffer.from(secret, 'utf8')))
  }

  #compute(value: string, index: number): string {
    return createHmac('sha256', this.#keys[index] as KeyObject)
      .update(value)
      .digest('base64')
      .replace(/=+$/, '')
  }

  /** Remembers a signature of a value we issued or verified (never of a forgery: they would evict real ones). */
  #remember(value: string, index: number, signature: string): void {
    let known = this.#signatures.get(value)
    if (known === undefined) {
      if (this.#signatures.size >= REMEMBERED_VALUES)
        this.#signatures.delete(this.#signatures.keys().next().value as string)
      known = []
      this.#signatures.set(value, known)
    }
    known[index] = signature
  }

  /** `value` followed by a dot and its HMAC-SHA256 under the first secret (base64 without `=` padding). */
  sign(value: string): string {
    let signature = this.#signatures.get(value)?.[0]
    if (signature === undefined) {
      signature = this.#compute(value, 0)
      this.#remember(value, 0, signature)
    }
    return `${value}.${signature}`
  }

  /** Verifies `signed` against each secret in turn; the value and which secret matched, or undefined. */
  unsign(signed: string): Unsigned | undefined {
    const dot = signed.lastIndexOf('.')
    if (dot <= 0) return undefined
    const value = signed.slice(0, dot)
    const given = signed.slice(dot + 1)
    const known = this.#signatures.get(value)
    for (let i = 0; i < this.#keys.length; i++) {
      const remembered = known?.[i]
      if (remembered !== undefined) {
        if (sameSignature(given, remembered)) return { value, secretIndex: i }
        continue
      }
      const expected = this.#compute(value, i)
      if (sameSignature(given, expected)) {
        this.#remember(value, i, expected)
        return { value, secretIndex: i }
      }
    }
    return undefined
  }
}
