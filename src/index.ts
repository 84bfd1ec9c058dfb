// Public exports only.

export type { Callback } from './callback.js'
export type { Clock } from './clock.js'
export type { ErrorCode } from './errors.js'
export { ErrorCodes, isTieredSessionError, TieredSessionError } from './errors.js'
export type { DiskOptions, MemoryOptions, TieredStoreOptions } from './options.js'
export { defaults } from './options.js'
export { MAX_SID_LENGTH } from './session-fields.js'
export type { SpillResult } from './spiller.js'
export type { StoreStats } from './stats.js'
export type { DestroyByUserOptions, StorableSession } from './store.js'
export { TieredStore } from './store.js'
export type { UserSession } from './tier-manager.js'
