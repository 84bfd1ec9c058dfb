// Lifecycle events of sessions (created, destroyed, expired): their payloads and their counts. A payload carries
// the user and the reason at most: never a session id, never session data.

/** Why a session was destroyed: `destroy()`, `destroyByUser()` ("log out everywhere"), or a regenerate. */
export type DestroyReason = 'destroy' | 'logout' | 'regenerate'
/** How an expired session was found: by a read (local mode), or removed by the sweep. */
export type ExpiredReason = 'read' | 'sweep'

/** Payload of the `created` event. */
export interface CreatedEvent {
  /** The session's user (the `userId` option), or null. */
  readonly userId: string | null
}

/** Payload of the `destroyed` event. */
export interface DestroyedEvent {
  readonly userId: string | null
  readonly reason: DestroyReason
}

/** Payload of the `expired` event. */
export interface ExpiredEvent {
  readonly userId: string | null
  readonly reason: ExpiredReason
}

/** One lifecycle step, as the engine reports it to the store. */
export type LifecycleStep =
  | ({ readonly type: 'created' } & CreatedEvent)
  | ({ readonly type: 'destroyed' } & DestroyedEvent)
  | ({ readonly type: 'expired' } & ExpiredEvent)

/** Lifecycle steps this instance made, by event and reason (part of `stats()`). */
export interface LifecycleCounts {
  created: number
  destroyed: Record<DestroyReason, number>
  expired: Record<ExpiredReason, number>
}

/** Fresh zero counts. */
export function emptyLifecycleCounts(): LifecycleCounts {
  return { created: 0, destroyed: { destroy: 0, logout: 0, regenerate: 0 }, expired: { read: 0, sweep: 0 } }
}

/** Counts a step. */
export function countStep(counts: LifecycleCounts, step: LifecycleStep): void {
  if (step.type === 'created') counts.created++
  else if (step.type === 'destroyed') counts.destroyed[step.reason]++
  else counts.expired[step.reason]++
}
