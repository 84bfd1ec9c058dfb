// At-rest encryption of session payloads (`encryption`): AES-256-GCM with a random 96-bit IV per write, the id
// of the key in the envelope (the first key seals, every key opens), and the stored key as additional
// authenticated data, so a payload copied under another session does not open. Memory holds plaintext.

import { createCipheriv, createDecipheriv, createHash, randomFillSync } from 'node:crypto'
import { ErrorCodes, TieredSessionError } from '../errors.js'

/** Marks an envelope: `ts1.<key id>.<base64url of iv | tag | ciphertext>`. A JSON payload starts with `{`. */
const ENVELOPE = 'ts1.'
const IV_BYTES = 12
const TAG_BYTES = 16
/** IVs drawn from the CSPRNG at a time (one randomFillSync per this many writes instead of one per write). */
const IV_POOL = 256

/** Random 96-bit IVs, drawn in bulk. */
class IvPool {
  readonly #pool = Buffer.allocUnsafe(IV_BYTES * IV_POOL)
  #next = IV_POOL

  /** A fresh random IV (a view into the pool: use it before the next call). */
  take(): Buffer {
    if (this.#next === IV_POOL) {
      randomFillSync(this.#pool)
      this.#next = 0
    }
    const at = this.#next++ * IV_BYTES
    return this.#pool.subarray(at, at + IV_BYTES)
  }
}

/** Seals and opens stored payloads; the identity when encryption is off. */
export interface PayloadSealer {
  /** True when payloads are encrypted at rest. */
  readonly encrypting: boolean
  /** The text to store for `payload` under `key`. */
  seal(key: string, payload: string): string
  /**
   * The payload stored under `key`; throws TS_DECODE_FAILED for an envelope that does not authenticate (wrong
   * key, a flipped byte, moved from another session). Plain JSON (written before encryption was on) is accepted.
   */
  open(key: string, stored: string): string
}

/** No encryption: payloads are stored as they are. */
export const plainPayloads: PayloadSealer = {
  encrypting: false,
  seal: (_key, payload) => payload,
  open: (_key, stored) => stored,
}

/** The id of a key in envelopes: 8 hex characters of SHA-256 of the key (it reveals nothing of the key). */
function keyIdOf(key: Buffer): string {
  return createHash('sha256').update('tiered-session key id\0').update(key).digest('hex').slice(0, 8)
}

function notOpened(reason: string, cause?: unknown): TieredSessionError {
  return new TieredSessionError(ErrorCodes.DECODE_FAILED, `a stored session payload ${reason}`, { cause })
}

/** AES-256-GCM with key rotation: `keys[0]` seals, every key opens. Keys are 32-byte Buffers. */
export class AesGcmSealer implements PayloadSealer {
  readonly encrypting = true
  readonly #sealKey: Buffer
  readonly #sealId: string
  readonly #keys: ReadonlyMap<string, Buffer>
  readonly #ivs = new IvPool()

  constructor(keys: readonly Buffer[]) {
    const first = keys[0]
    if (first === undefined) throw new Error('AesGcmSealer needs a key')
    this.#sealKey = first
    this.#sealId = keyIdOf(first)
    this.#keys = new Map(keys.map((key) => [keyIdOf(key), key] as const))
  }

  seal(key: string, payload: string): string {
    const iv = this.#ivs.take()
    const cipher = createCipheriv('aes-256-gcm', this.#sealKey, iv)
    cipher.setAAD(Buffer.from(key, 'utf8'))
    const body = cipher.update(payload, 'utf8')
    // NB: GCM is a stream mode: final() adds no bytes, it computes the tag.
    cipher.final()
    const sealed = Buffer.concat([iv, cipher.getAuthTag(), body])
    return `${ENVELOPE}${this.#sealId}.${sealed.toString('base64url')}`
  }

  open(key: string, stored: string): string {
    if (!stored.startsWith(ENVELOPE)) {
      // NB: written before encryption was turned on: served, and sealed by its next write.
      if (stored.startsWith('{')) return stored
      throw notOpened('is neither JSON nor an envelope of ours')
    }
    const dot = stored.indexOf('.', ENVELOPE.length)
    const secret = dot < 0 ? undefined : this.#keys.get(stored.slice(ENVELOPE.length, dot))
    if (secret === undefined) throw notOpened('was sealed with a key that is not configured')
    const sealed = Buffer.from(stored.slice(dot + 1), 'base64url')
    if (sealed.length < IV_BYTES + TAG_BYTES) throw notOpened('envelope is truncated')
    try {
      const decipher = createDecipheriv('aes-256-gcm', secret, sealed.subarray(0, IV_BYTES))
      decipher.setAAD(Buffer.from(key, 'utf8'))
      decipher.setAuthTag(sealed.subarray(IV_BYTES, IV_BYTES + TAG_BYTES))
      const body = sealed.subarray(IV_BYTES + TAG_BYTES)
      return Buffer.concat([decipher.update(body), decipher.final()]).toString('utf8')
    } catch (cause) {
      throw notOpened('does not authenticate (wrong key, altered, or moved from another session)', cause)
    }
  }
}
