import { describe, expect, it } from 'vitest'
import { TieredStore } from '../src/store.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

describe('errors on the write path', () => {
  it('are typed, counted and emitted: a cycle, a bad id, a throwing userId option', async () => {
    const { store, clock } = createStore({
      userId: (sess) => {
        if (sess.explode) throw new Error('user code failed')
        return undefined
      },
    })
    const events: string[] = []
    store.on('error', (e) => events.push(e.code))
    const cyclic: Record<string, unknown> = sessionFor(clock.now(), HOUR)
    cyclic.self = cyclic
    await expect(store.set('a', cyclic)).rejects.toMatchObject({ code: 'TS_ENCODE_FAILED' })
    await expect(store.set('bad id', sessionFor(clock.now(), HOUR))).rejects.toMatchObject({
      code: 'TS_INVALID_SID',
    })
    await expect(store.set('b', sessionFor(clock.now(), HOUR, { explode: true }))).rejects.toMatchObject({
      code: 'TS_INVALID_OPTION',
    })
    expect(store.stats().errors).toEqual({ TS_ENCODE_FAILED: 1, TS_INVALID_SID: 1, TS_INVALID_OPTION: 1 })
    expect(events).toEqual(['TS_ENCODE_FAILED', 'TS_INVALID_SID', 'TS_INVALID_OPTION'])
  })

  it('rejects timer intervals Node cannot honour, naming the option', () => {
    expect.assertions(2)
    for (const option of ['spillIntervalMs', 'sweepIntervalMs']) {
      try {
        new TieredStore({ [option]: 30 * 24 * HOUR })
      } catch (error) {
        expect((error as Error).message).toContain(`"${option}"`)
      }
    }
  })
})
