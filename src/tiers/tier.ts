// The record every tier stores and the small interface every tier implements (and the conformance suite runs).

/** A session as a tier stores it: the serialized payload plus the metadata the manager needs. */
export interface StoredRecord {
  /** Serialized session (JSON text). */
  readonly payload: string
  /** Absolute expiry, milliseconds since the epoch. The record is dead at `now >= expiresAt`. */
  readonly expiresAt: number
  /** Write counter of this session; every write makes it larger. */
  readonly version: number
  /** The user the session belongs to, or null. */
  readonly userId: string | null
}

/** What a caller hands a tier to store; the tier may assign the version. */
export type RecordInput = Omit<StoredRecord, 'version'> & { readonly version?: number }

/** A value, or a promise of it: memory and disk reads are synchronous, writes may not be. */
export type MaybePromise<T> = T | Promise<T>

/** The interface every tier implements. Reads never return an expired record. */
export interface Tier {
  readonly kind: 'memory' | 'disk' | 'redis'
  /** The live record of `sid`, or undefined. */
  get(sid: string): MaybePromise<StoredRecord | undefined>
  /** Stores `record` under `sid`, replacing what was there; resolves to the stored record. */
  set(sid: string, record: RecordInput): MaybePromise<StoredRecord>
  /** Removes `sid`; resolves to whether it was there. */
  delete(sid: string): MaybePromise<boolean>
  /** Removes every record. */
  clear(): MaybePromise<void>
  /** Releases resources; the tier is unusable afterwards. */
  close(): MaybePromise<void>
}
