// Runs an operation and hands its outcome to an optional Node-style callback, or returns the Promise.

/** A Node-style callback. */
export type Callback<T> = (err: unknown, value?: T) => void

/**
 * With a callback: calls it exactly once with `(null, value)` or `(err)` and returns undefined.
 * Without: returns the Promise. A synchronous throw of `work` becomes a rejection, never a throw.
 */
export function withCallback<T>(
  work: () => T | Promise<T>,
  callback: Callback<T> | undefined,
): Promise<T> | undefined {
  let promise: Promise<T>
  try {
    promise = Promise.resolve(work())
  } catch (error) {
    promise = Promise.reject(error)
  }
  if (callback === undefined) return promise
  // NB: two-argument then(), not then().catch(): a throwing callback must not be called a second time.
  promise.then(
    (value) => callback(null, value),
    (error: unknown) => callback(error),
  )
  return undefined
}
