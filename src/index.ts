// Public exports only.

export type { Callback } from './callback.js'
export type { Clock } from './clock.js'
export type { ErrorCode } from './errors.js'
export { ErrorCodes, isTieredSessionError, TieredSessionError } from './errors.js'
export type { StoreHealth } from './health.js'
export type { TimedOp, TimedTier } from './histogram.js'
export type {
  CreatedEvent,
  DestroyedEvent,
  DestroyReason,
  ExpiredEvent,
  ExpiredReason,
  LifecycleCounts,
} from './lifecycle.js'
export type { SessionPatch, UserSession } from './manager/engine.js'
export type { TieredSessionOptions } from './middleware/options.js'
export type { RegenerateOptions } from './middleware/session.js'
export { Session } from './middleware/session.js'
export type { SessionRequestFields } from './middleware/session-context.js'
export type { CookieOptions } from './middleware/session-cookie.js'
export { SessionCookie } from './middleware/session-cookie.js'
export type { SessionMiddleware } from './middleware/tiered-session.js'
export { tieredSession } from './middleware/tiered-session.js'
export type { MigrateOptions } from './migrate/migrate-options.js'
export type { DiskOptions, MemoryOptions, TieredStoreOptions } from './options.js'
export { defaults } from './options.js'
export type { SessionData, StoredCookie, StoredSession } from './session-data.js'
export { MAX_SID_LENGTH } from './session-fields.js'
export type { SpillResult } from './spiller.js'
export type { StoreStats } from './stats.js'
export type { DestroyByUserOptions, StorableSession } from './store.js'
export { TieredStore } from './store.js'
export type { BackupProgress } from './tiers/sqlite-backup.js'
export type { TraceContext } from './tracing.js'
