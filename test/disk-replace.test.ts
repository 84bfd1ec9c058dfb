// A write of a session that is already on file replaces its data and expiry with an UPDATE that leaves the user
// index alone; a write that changes the user or the creation time (or of a new session) is the upsert. Either
// way the row, its version and the user index end up as the upsert alone would leave them. A write hinted
// `fresh` (the caller holds no copy: probably a new session) runs the upsert first: the same outcome.

import { describe, expect, it } from 'vitest'
import type { RecordInput, WriteOptions } from '../src/tiers/tier.js'
import { openDiskTier } from './helpers/disk-tiers.js'

const HOUR = 3_600_000
const noCorrupt = () => {
  throw new Error('no row here is corrupt')
}

describe.each([{ fresh: false }, { fresh: true }])(
  'a write of a session already on file (hinted fresh: $fresh)',
  ({ fresh }) => {
    /** The tier's write, with the hint. */
    const writer =
      (tier: ReturnType<typeof openDiskTier>['tier']) =>
      (sid: string, record: RecordInput, options: WriteOptions = {}) =>
        tier.write(sid, record, { ...options, fresh })

    it('keeps the row, its version and the user index right when the user stays, changes or goes', async () => {
      const { tier: opened, clock } = openDiskTier()
      const tier = { write: writer(opened), get: (sid: string) => opened.get(sid) }
      const at = clock.now() + HOUR
      const sidsOf = (user: string) => opened.rowsOfUser(user, noCorrupt).map((row) => row.sid)

      expect((await tier.write('s', { payload: '{"a":1}', expiresAt: at, userId: 'u1' })).version).toBe(1)
      const same = await tier.write('s', { payload: '{"a":2}', expiresAt: at + 1, userId: 'u1' })
      expect(same.version).toBe(2)
      expect(tier.get('s')).toMatchObject({ payload: '{"a":2}', expiresAt: at + 1, version: 2, userId: 'u1' })
      expect(sidsOf('u1')).toEqual(['s'])

      const moved = await tier.write('s', { payload: '{"a":3}', expiresAt: at + 2, userId: 'u2' })
      expect(moved.version).toBe(3)
      expect(sidsOf('u1')).toEqual([])
      expect(sidsOf('u2')).toEqual(['s'])

      await tier.write('s', { payload: '{"a":4}', expiresAt: at + 3, userId: null })
      expect(sidsOf('u2')).toEqual([])
      expect(tier.get('s')).toMatchObject({ payload: '{"a":4}', version: 4, userId: null })
      // From no user to no user: the same user, replaced in place.
      await tier.write('s', { payload: '{"a":5}', expiresAt: at + 4, userId: null })
      expect(tier.get('s')).toMatchObject({ payload: '{"a":5}', expiresAt: at + 4, version: 5, userId: null })
    })

    it('keeps the creation time it is given, and the version rules (exact, or above `after`)', async () => {
      const { tier: opened, clock } = openDiskTier()
      const tier = { write: writer(opened), get: (sid: string) => opened.get(sid) }
      const at = clock.now() + HOUR
      await tier.write('s', { payload: '{}', expiresAt: at, userId: 'u', createdAt: 100 })
      await tier.write('s', { payload: '{"b":1}', expiresAt: at, userId: 'u', createdAt: 200 })
      expect(tier.get('s')).toMatchObject({ payload: '{"b":1}', createdAt: 200, version: 2 })
      await tier.write('s', { payload: '{"b":2}', expiresAt: at, userId: 'u' })
      expect(tier.get('s')?.createdAt).toBeUndefined()

      // An exact version is stored as it is, even below the row's.
      await tier.write('s', { payload: '{"b":3}', expiresAt: at, userId: 'u', version: 40 })
      expect(tier.get('s')?.version).toBe(40)
      // `after`: one more than both the row's version and the one the caller knows of.
      expect(
        (await tier.write('s', { payload: '{"b":4}', expiresAt: at, userId: 'u' }, { after: 90 })).version,
      ).toBe(91)
      expect(
        (await tier.write('s', { payload: '{"b":5}', expiresAt: at, userId: 'u' }, { after: 10 })).version,
      ).toBe(92)
      expect(
        (await tier.write('t', { payload: '{}', expiresAt: at, userId: 'u' }, { after: 7 })).version,
      ).toBe(8)
    })
  },
)
