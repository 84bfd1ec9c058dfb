// A TCP proxy in front of a test Redis that lets a test hold a reply, cut pub/sub connections, or stall new
// connections — to stage the races of client-side caching with real sockets.

import { once } from 'node:events'
import type { AddressInfo } from 'node:net'
import { connect, createServer, type Socket } from 'node:net'
import { onTestFinished } from 'vitest'

interface Link {
  readonly client: Socket
  readonly upstream: Socket
  /** True once the client sent SUBSCRIBE on this connection. */
  subscriber: boolean
  held: Buffer[] | undefined
  onHeld: (() => void) | undefined
  /** True once blackholed: nothing passes either way, and nothing is closed (a half-open connection). */
  dead: boolean
  /** Set by holdRepliesAfter: the client's bytes that start holding this connection's replies. */
  holdAfter: RegExp | undefined
}

export interface Proxy {
  readonly port: number
  readonly url: string
  /** Holds the next reply on every non-subscriber connection until `release()`; `held` resolves once one is held. */
  holdNextReply(): { held: Promise<void>; release(): void }
  /**
   * On every non-subscriber connection, holds every reply from the moment the client sends bytes matching
   * `command` (say, /WAIT/: the replies to it and to anything sent with or after it) until `release()`; `held`
   * resolves once a reply is held.
   */
  holdRepliesAfter(command: RegExp): { held: Promise<void>; release(): void }
  /** Every pub/sub connection stops passing anything either way, without closing (a half-open connection). */
  blackholeSubscribers(): void
  /** Closes every pub/sub connection (as a network blip would). */
  dropSubscribers(): void
  /** Closes every connection. */
  dropAll(): void
  /** Every later reply on a non-subscriber connection reaches the client `ms` late (a slow Redis); 0 ends it. */
  delayReplies(ms: number): void
  /** New connections wait (unanswered) until `release()`. */
  stallNewConnections(): { release(): void }
  close(): Promise<void>
}

/** Starts a proxy to 127.0.0.1:`targetPort`; it closes when the test ends. */
export async function startProxy(targetPort: number): Promise<Proxy> {
  const links = new Set<Link>()
  let delayMs = 0
  let stalled: Array<() => void> | undefined
  const server = createServer((client) => {
    const start = () => {
      const upstream = connect(targetPort, '127.0.0.1')
      const link: Link = {
        client,
        upstream,
        subscriber: false,
        held: undefined,
        onHeld: undefined,
        dead: false,
        holdAfter: undefined,
      }
      links.add(link)
      client.on('data', (chunk) => {
        if (link.dead) return
        const text = chunk.toString('latin1')
        if (/subscribe/i.test(text)) link.subscriber = true
        if (link.holdAfter?.test(text)) {
          link.holdAfter = undefined
          link.held = []
        }
        upstream.write(chunk)
      })
      upstream.on('data', (chunk) => {
        if (link.dead) return
        if (link.held !== undefined) {
          link.held.push(chunk)
          link.onHeld?.()
        } else if (delayMs > 0 && !link.subscriber) {
          // NB: timers of one delay fire in the order they were set: replies keep their order.
          setTimeout(() => client.write(chunk), delayMs)
        } else client.write(chunk)
      })
      const end = () => {
        links.delete(link)
        client.destroy()
        upstream.destroy()
      }
      client.on('close', end)
      upstream.on('close', end)
      client.on('error', end)
      upstream.on('error', end)
    }
    if (stalled !== undefined) {
      client.pause()
      stalled.push(() => {
        client.resume()
        start()
      })
    } else start()
  })
  server.listen(0, '127.0.0.1')
  await once(server, 'listening')
  const { port } = server.address() as AddressInfo
  /** Starts holding replies on every non-subscriber connection (`arm` says from when); see holdNextReply. */
  const holdOn = (arm: (link: Link) => void) => {
    let resolveHeld: () => void = () => undefined
    const held = new Promise<void>((resolve) => {
      resolveHeld = resolve
    })
    const targets = [...links].filter((l) => !l.subscriber)
    for (const link of targets) {
      arm(link)
      link.onHeld = () => {
        link.onHeld = undefined
        resolveHeld()
      }
    }
    return {
      held,
      release() {
        for (const link of targets) {
          link.holdAfter = undefined
          const chunks = link.held ?? []
          link.held = undefined
          for (const chunk of chunks) link.client.write(chunk)
        }
      },
    }
  }
  const proxy: Proxy = {
    port,
    url: `redis://127.0.0.1:${port}`,
    holdNextReply() {
      return holdOn((link) => {
        link.held = []
      })
    },
    holdRepliesAfter(command) {
      return holdOn((link) => {
        link.holdAfter = command
      })
    },
    delayReplies(ms) {
      delayMs = ms
    },
    blackholeSubscribers() {
      for (const link of links) if (link.subscriber) link.dead = true
    },
    dropSubscribers() {
      for (const link of links) {
        if (link.subscriber) {
          link.client.destroy()
          link.upstream.destroy()
        }
      }
    },
    dropAll() {
      for (const link of links) {
        link.client.destroy()
        link.upstream.destroy()
      }
    },
    stallNewConnections() {
      stalled = []
      return {
        release() {
          const waiting = stalled ?? []
          stalled = undefined
          for (const go of waiting) go()
        },
      }
    },
    async close() {
      for (const link of links) {
        link.client.destroy()
        link.upstream.destroy()
      }
      server.close()
    },
  }
  onTestFinished(() => proxy.close())
  return proxy
}
