// Save-before-flush: holds back a response's head and body until an async step (the session commit)
// has finished, so nothing reaches the client before the session is durable (express-session #167).

import type { ServerResponse } from 'node:http'

type Call = readonly ['writeHead' | 'write' | 'end', unknown[]]

/**
 * From the first `writeHead`, `write` or `end` on, queues those calls, runs `beforeFlush` once, then
 * replays them in order. If `beforeFlush` fails before anything was sent, the queued response is dropped
 * and `onError` gets the error (to send an error response instead); if the head was already out, the
 * response is completed and `onError` still hears of it.
 */
export function holdResponse(
  res: ServerResponse,
  beforeFlush: () => Promise<void>,
  onError: (error: unknown) => void,
): void {
  const original = { writeHead: res.writeHead, write: res.write, end: res.end }
  const queue: Call[] = []
  let started = false

  const restore = () => {
    res.writeHead = original.writeHead
    res.write = original.write
    res.end = original.end
  }
  const replay = () => {
    for (const [method, args] of queue) (original[method] as (...a: unknown[]) => unknown).apply(res, args)
    queue.length = 0
  }
  const hold = (method: Call[0]) =>
    function held(this: ServerResponse, ...args: unknown[]): unknown {
      queue.push([method, args])
      if (!started) {
        started = true
        beforeFlush().then(
          () => {
            restore()
            replay()
          },
          (error: unknown) => {
            restore()
            if (res.headersSent) replay()
            else queue.length = 0
            onError(error)
          },
        )
      }
      return method === 'write' ? true : res
    }

  res.writeHead = hold('writeHead') as typeof res.writeHead
  res.write = hold('write') as typeof res.write
  res.end = hold('end') as typeof res.end
}
