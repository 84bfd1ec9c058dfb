// A TCP proxy that delays every chunk by `delayMs` in each direction, like a Redis one network hop away.
// It runs in its own process (forked by startProxy): `node bench/lib/proxy.js <upstreamPort> <delayMs>`.
// One setTimeout per chunk; Node fires equal-delay timers in insertion order, and a sequence number per
// direction checks it (chunks out of order are counted and reported). The proxy is a Node process too: it
// shares the machine's cores with everything else.

import { fork } from 'node:child_process'
import net from 'node:net'
import { fileURLToPath } from 'node:url'
import { track, withTimeout } from './procs.js'

const SELF = fileURLToPath(import.meta.url)

function runProxy(upstreamPort, delayMs) {
  let outOfOrder = 0
  let chunks = 0
  const pipe = (from, to) => {
    let sent = 0
    let delivered = 0
    from.on('data', (chunk) => {
      const seq = sent++
      chunks++
      setTimeout(() => {
        if (seq !== delivered++) outOfOrder++
        if (!to.destroyed) to.write(chunk)
      }, delayMs)
    })
    from.on('end', () => setTimeout(() => to.end(), delayMs))
    from.on('error', () => to.destroy())
    from.on('close', () => setTimeout(() => to.destroy(), delayMs + 1))
  }
  const server = net.createServer((client) => {
    client.setNoDelay(true)
    const upstream = net.connect(upstreamPort, '127.0.0.1')
    upstream.setNoDelay(true)
    upstream.on('error', () => client.destroy())
    client.on('error', () => upstream.destroy())
    pipe(client, upstream)
    pipe(upstream, client)
  })
  server.listen(0, '127.0.0.1', () => process.send({ type: 'listening', port: server.address().port }))
  process.on('message', (m) => {
    if (m === 'stats') process.send({ type: 'stats', outOfOrder, chunks, cpu: process.cpuUsage() })
  })
  process.on('disconnect', () => process.exit(0))
}

/** Starts the proxy in front of 127.0.0.1:`upstreamPort`; resolves to { port, url, stats(), stop() }. */
export async function startProxy(upstreamPort, delayMs) {
  const child = track(fork(SELF, [String(upstreamPort), String(delayMs)], { stdio: 'inherit' }))
  const { port } = await withTimeout(
    new Promise((resolve, reject) => {
      child.once('message', resolve)
      child.once('exit', (code) => reject(new Error(`proxy exited (${code})`)))
    }),
    5000,
    'proxy start',
  )
  return {
    port,
    pid: child.pid,
    url: `redis://127.0.0.1:${port}`,
    delayMs,
    async stats() {
      const reply = new Promise((resolve) => {
        const on = (m) => {
          if (m?.type !== 'stats') return
          child.off('message', on)
          resolve(m)
        }
        child.on('message', on)
      })
      child.send('stats')
      return withTimeout(reply, 2000, 'proxy stats')
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return
      const exited = new Promise((resolve) => child.once('exit', resolve))
      child.disconnect()
      await withTimeout(exited, 3000, 'proxy exit').catch(() => process.kill(child.pid, 'SIGKILL'))
    },
  }
}

if (process.argv[1] === SELF) runProxy(Number(process.argv[2]), Number(process.argv[3]))
