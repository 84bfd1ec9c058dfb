import Database from 'better-sqlite3'
import { describe, expect, it } from 'vitest'
import type { TieredSessionError } from '../src/errors.js'
import { handlesFor, storedKey } from './helpers/handles.js'
import { createStore, sessionFor } from './helpers/stores.js'

const HOUR = 3_600_000

function corrupt(dbPath: string, sid: string, payload: unknown): void {
  const db = new Database(dbPath)
  try {
    db.prepare('UPDATE sessions SET payload = ? WHERE sid = ?').run(payload, storedKey(sid))
  } finally {
    db.close()
  }
}

describe('corrupt rows on disk', () => {
  it.each([
    ['garbage text', '{"cookie": tru'],
    ['JSON that is not an object', '[1,2,3]'],
    ['a blob', Buffer.from([0xff, 0x00, 0xfe])],
  ])(
    '%s is a miss plus an error event and a counted code, and the store keeps working',
    async (_, payload) => {
      const fixture = createStore()
      const { clock, dbPath } = fixture
      await fixture.store.set('bad', sessionFor(clock.now(), HOUR, { v: 1 }))
      await fixture.store.set('good', sessionFor(clock.now(), HOUR, { v: 2 }))
      await fixture.store.close()
      corrupt(dbPath, 'bad', payload)

      const store = fixture.reopen()
      const errors: TieredSessionError[] = []
      store.on('error', (e) => errors.push(e))
      expect(await store.get('bad')).toBeUndefined()
      expect(errors.map((e) => e.code)).toEqual(['TS_DECODE_FAILED'])
      expect(errors[0]?.message).not.toContain('bad')
      expect(store.stats().errors).toEqual({ TS_DECODE_FAILED: 1 })
      expect(store.metrics()).toContain('tiered_session_errors_total{code="TS_DECODE_FAILED"} 1')

      // Listing skips it (and reports it), the good session is served, and a new write replaces the bad row.
      expect(Object.keys(await store.all())).toEqual(handlesFor('good'))
      expect(await store.get('good')).toMatchObject({ v: 2 })
      await store.touch('bad', sessionFor(clock.now(), 2 * HOUR, {}))
      await store.set('bad', sessionFor(clock.now(), HOUR, { v: 3 }))
      expect(await store.get('bad')).toMatchObject({ v: 3 })
      expect(store.stats().errors.TS_DECODE_FAILED).toBe(3)
    },
  )

  it('with no error listener, warns once per code instead of crashing', async () => {
    const fixture = createStore()
    const { clock, dbPath } = fixture
    await fixture.store.set('bad', sessionFor(clock.now(), HOUR, {}))
    await fixture.store.close()
    corrupt(dbPath, 'bad', 'not json')
    const store = fixture.reopen()
    const warnings: Error[] = []
    const onWarning = (w: Error) => warnings.push(w)
    process.on('warning', onWarning)
    try {
      expect(await store.get('bad')).toBeUndefined()
      expect(await store.get('bad')).toBeUndefined()
      await new Promise((resolve) => process.nextTick(resolve))
    } finally {
      process.off('warning', onWarning)
    }
    expect(warnings.map((w) => (w as Error & { code?: string }).code)).toEqual(['TS_DECODE_FAILED'])
    expect(store.stats().errors.TS_DECODE_FAILED).toBe(2)
  })
})
