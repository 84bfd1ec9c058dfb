// node:diagnostics_channel tracing of the session operations: one TracingChannel per operation, named
// `tiered-session:<op>`, for APM tools and OpenTelemetry. With no subscriber an operation costs one check.

import type { TracingChannel } from 'node:diagnostics_channel'
import diagnosticsChannel from 'node:diagnostics_channel'
import type { TimedOp } from './histogram.js'

/**
 * The context object a trace publishes (`start`, `end`, `asyncStart`, `asyncEnd`, `error`). Never a session id
 * or session data: `operation` and `mode` say what ran, `hit` (get) whether a live session was found,
 * `error` (a TieredSessionError) what failed.
 */
export interface TraceContext {
  readonly operation: TimedOp
  readonly mode: 'local' | 'shared'
  /** get: whether a live session was found (set once the result is known). */
  hit?: boolean
  error?: unknown
}

type Channel = TracingChannel<unknown, TraceContext & object>

/** The tracing channel of each operation: `tiered-session:get`, `:set`, `:merge`, `:touch`, `:destroy`. */
export const tracingChannels: Readonly<Record<TimedOp, Channel>> = {
  get: diagnosticsChannel.tracingChannel('tiered-session:get'),
  set: diagnosticsChannel.tracingChannel('tiered-session:set'),
  merge: diagnosticsChannel.tracingChannel('tiered-session:merge'),
  touch: diagnosticsChannel.tracingChannel('tiered-session:touch'),
  destroy: diagnosticsChannel.tracingChannel('tiered-session:destroy'),
}

/**
 * Runs `fn` (an operation answering now or with a promise) inside a trace of `operation`: `start` and `end`
 * around the call; for a promise, `asyncStart` and `asyncEnd` when it settles; `error` when it fails.
 */
export function traced<T>(
  operation: TimedOp,
  mode: 'local' | 'shared',
  fn: () => T | Promise<T>,
): T | Promise<T> {
  const channel = tracingChannels[operation]
  // NB: the whole cost without a subscriber.
  if (!channel.hasSubscribers) return fn()
  const context: TraceContext = { operation, mode }
  return channel.start.runStores(context, () => {
    try {
      const value = fn()
      if (!(value instanceof Promise)) {
        if (operation === 'get') context.hit = value !== undefined
        return value
      }
      return value.then(
        (result) => {
          if (operation === 'get') context.hit = result !== undefined
          channel.asyncStart.publish(context)
          channel.asyncEnd.publish(context)
          return result
        },
        (error: unknown) => {
          context.error = error
          channel.error.publish(context)
          channel.asyncStart.publish(context)
          channel.asyncEnd.publish(context)
          throw error
        },
      )
    } catch (error) {
      context.error = error
      channel.error.publish(context)
      throw error
    } finally {
      channel.end.publish(context)
    }
  })
}
