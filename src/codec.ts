// Serialization of sessions: JSON text, its exact UTF-8 size, and safe decoding (a decoded payload is a plain object or nothing).

import { ErrorCodes, TieredSessionError } from './errors.js'

/** A session as stored: any JSON-serializable object (express-session adds `cookie`). */
export type SessionObject = Record<string, unknown>

/** A serialized session and its exact size in bytes (UTF-8). */
export interface Encoded {
  readonly payload: string
  readonly bytes: number
}

/** Serializes a session. Throws TS_ENCODE_FAILED for cycles, BigInts and non-objects. */
export function encodeSession(session: unknown): Encoded {
  if (session === null || typeof session !== 'object' || Array.isArray(session)) {
    throw new TieredSessionError(ErrorCodes.ENCODE_FAILED, 'a session must be a plain object')
  }
  let payload: string
  try {
    payload = JSON.stringify(session)
  } catch (cause) {
    throw new TieredSessionError(ErrorCodes.ENCODE_FAILED, 'the session could not be serialized to JSON', {
      cause,
    })
  }
  return { payload, bytes: Buffer.byteLength(payload, 'utf8') }
}

/** Decodes a stored payload. Throws TS_DECODE_FAILED unless it is JSON text of a plain object. */
export function decodeSession(payload: unknown): SessionObject {
  if (typeof payload !== 'string') {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not text')
  }
  let value: unknown
  try {
    value = JSON.parse(payload)
  } catch (cause) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not valid JSON', {
      cause,
    })
  }
  if (value === null || typeof value !== 'object' || Array.isArray(value)) {
    throw new TieredSessionError(ErrorCodes.DECODE_FAILED, 'a stored session payload is not an object')
  }
  return value as SessionObject
}

/** The exact size in bytes of a payload as the memory tier counts it. */
export function payloadBytes(payload: string): number {
  return Buffer.byteLength(payload, 'utf8')
}
