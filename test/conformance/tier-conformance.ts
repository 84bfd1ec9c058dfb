// The conformance suite of the Tier contract (src/tiers/tier.ts), run on every tier and client: reads, writes
// with their versions and commit hooks, read-modify-write updates (including onto a stale base), deletes,
// listings, per-user rows, the expiry sweep, large values, odd ids, clear and close. A tier's own extra cases
// come in through `extras`, which gets the same `open()`.

import { describe, expect, it, onTestFinished } from 'vitest'
import type { RecordInput, StoredRecord, Tier } from '../../src/tiers/tier.js'
import type { ManualClock } from '../helpers/manual-clock.js'

export interface TierFixture<T extends Tier = Tier> {
  tier: T
  clock: ManualClock
  close(): Promise<void> | void
}

export interface ConformanceOptions<T extends Tier> {
  /** False for a tier that expires records on its own (Redis): its sweep removes nothing. */
  sweeps?: boolean
  /** The tier's own extra cases, registered inside its describe block. */
  extras?: (open: () => Promise<TierFixture<T>>) => void
}

const HOUR = 3_600_000

/** Collects what `onCorrupt` hears. */
function corruptions(): { errors: Error[]; onCorrupt: (error: Error) => void } {
  const errors: Error[] = []
  return { errors, onCorrupt: (error) => errors.push(error) }
}

/** Registers the conformance tests for the tier built by `create`. */
export function runTierConformance<T extends Tier>(
  name: string,
  create: () => TierFixture<T> | Promise<TierFixture<T>>,
  options: ConformanceOptions<T> = {},
): void {
  async function open(): Promise<TierFixture<T>> {
    const fixture = await create()
    onTestFinished(() => fixture.close())
    return fixture
  }

  const record = (clock: ManualClock, data: unknown, extra: Partial<RecordInput> = {}): RecordInput => ({
    payload: JSON.stringify(data),
    expiresAt: clock.now() + HOUR,
    userId: null,
    ...extra,
  })

  describe(`${name} tier conformance`, () => {
    describe('get and write', () => {
      it('misses an id it never stored', async () => {
        const { tier } = await open()
        expect(await tier.get('never-stored')).toBeUndefined()
      })

      it('returns what was written, byte for byte, and resolves to the stored record', async () => {
        const { tier, clock } = await open()
        const payload = JSON.stringify({ cart: [{ sku: 'A1', qty: 2 }], name: 'Zoë ✓ 🍕' })
        const stored = await tier.write('s1', { payload, expiresAt: clock.now() + HOUR, userId: 'u1' })
        expect(stored).toMatchObject({ payload, expiresAt: clock.now() + HOUR, userId: 'u1' })
        expect(stored.version).toBeGreaterThanOrEqual(1)
        expect(await tier.get('s1')).toEqual(stored)
      })

      it('replaces on overwrite and raises the version', async () => {
        const { tier, clock } = await open()
        const first = await tier.write('s1', record(clock, { n: 1 }))
        const second = await tier.write(
          's1',
          record(clock, { n: 2 }, { expiresAt: clock.now() + 2 * HOUR, userId: 'u2' }),
        )
        expect(second.version).toBeGreaterThan(first.version)
        expect(await tier.get('s1')).toMatchObject({
          payload: '{"n":2}',
          expiresAt: clock.now() + 2 * HOUR,
          userId: 'u2',
        })
      })

      it('orders a write after the version the caller names (`after`)', async () => {
        const { tier, clock } = await open()
        const first = await tier.write('s1', record(clock, { n: 1 }))
        const known = first.version + 1_000_000
        const second = await tier.write('s1', record(clock, { n: 2 }), { after: known })
        expect(second.version).toBeGreaterThan(known)
        expect((await tier.get('s1'))?.version).toBe(second.version)
      })

      it('gives a new record exactly the version it was handed', async () => {
        const { tier, clock } = await open()
        const stored = await tier.write('s1', { ...record(clock, {}), version: 4242 })
        expect(stored.version).toBe(4242)
        expect((await tier.get('s1'))?.version).toBe(4242)
      })

      it('calls onCommit once with the stored record, before the write resolves', async () => {
        const { tier, clock } = await open()
        const seen: StoredRecord[] = []
        const stored = await tier.write('s1', record(clock, { n: 1 }), { onCommit: (r) => seen.push(r) })
        expect(seen).toEqual([stored])
      })

      it('never returns a record at or after its expiry, to the millisecond', async () => {
        const { tier, clock } = await open()
        await tier.write('s1', record(clock, {}, { expiresAt: clock.now() + 5 }))
        clock.advance(4)
        expect(await tier.get('s1')).toBeDefined()
        clock.advance(1)
        expect(await tier.get('s1')).toBeUndefined()
      })

      it('stores a large value intact', async () => {
        const { tier, clock } = await open()
        const payload = JSON.stringify({ blob: 'x'.repeat(512 * 1024), tail: 'end' })
        await tier.write('big', { payload, expiresAt: clock.now() + HOUR, userId: null })
        expect((await tier.get('big'))?.payload).toBe(payload)
      })

      it('keeps ids apart, including odd but valid ones', async () => {
        const { tier, clock } = await open()
        const ids = [
          'a',
          'A',
          'a ',
          "o'neil",
          'x;DROP TABLE sessions;--',
          '../../etc/passwd',
          '%00',
          '*',
          'a?[b]',
        ]
        for (const [i, id] of ids.entries()) await tier.write(id, record(clock, { i }))
        for (const [i, id] of ids.entries()) expect((await tier.get(id))?.payload).toBe(JSON.stringify({ i }))
        expect((await tier.ids()).sort()).toEqual([...ids].sort())
      })
    })

    describe('update', () => {
      it('applies a change to the latest record and resolves to what it wrote', async () => {
        const { tier, clock } = await open()
        const first = await tier.write('s1', record(clock, { n: 1 }, { userId: 'u1' }))
        const seen: StoredRecord[] = []
        const result = await tier.update(
          's1',
          (current) => ({ ...current, payload: JSON.stringify({ n: JSON.parse(current.payload).n + 1 }) }),
          { onCommit: (r) => seen.push(r) },
        )
        expect(result.status).toBe('written')
        if (result.status !== 'written') return
        expect(result.record).toMatchObject({ payload: '{"n":2}', userId: 'u1' })
        expect(result.record.version).toBeGreaterThan(first.version)
        expect(seen).toEqual([result.record])
        expect(await tier.get('s1')).toEqual(result.record)
      })

      it('never undoes a write made after the caller read its base copy', async () => {
        const { tier, clock } = await open()
        const base = await tier.write('s1', record(clock, { a: 1 }))
        await tier.write('s1', record(clock, { a: 1, b: 2 }))
        const result = await tier.update(
          's1',
          (current) => ({ ...current, payload: JSON.stringify({ ...JSON.parse(current.payload), c: 3 }) }),
          { base, unverifiedBase: true },
        )
        expect(result.status).toBe('written')
        expect(JSON.parse((await tier.get('s1'))?.payload ?? '{}')).toEqual({ a: 1, b: 2, c: 3 })
      })

      it('checks a change that writes nothing on an unverified base against the stored copy', async () => {
        const { tier, clock } = await open()
        const base = await tier.write('s1', record(clock, {}, { expiresAt: clock.now() + HOUR }))
        await tier.write('s1', record(clock, {}, { expiresAt: clock.now() + 10 * HOUR }))
        const calls: number[] = []
        const result = await tier.update(
          's1',
          (current) => {
            calls.push(current.expiresAt)
            // A touch to +5 h extends the stale base but not the stored copy.
            return current.expiresAt >= clock.now() + 5 * HOUR
              ? undefined
              : { ...current, expiresAt: clock.now() + 5 * HOUR }
          },
          { base, unverifiedBase: true },
        )
        expect(result.status).toBe('unchanged')
        expect(calls.at(-1)).toBe(clock.now() + 10 * HOUR)
        expect((await tier.get('s1'))?.expiresAt).toBe(clock.now() + 10 * HOUR)
      })

      it('writes nothing when the change returns undefined', async () => {
        const { tier, clock } = await open()
        const stored = await tier.write('s1', record(clock, { n: 1 }))
        const seen: StoredRecord[] = []
        expect(await tier.update('s1', () => undefined, { onCommit: (r) => seen.push(r) })).toEqual({
          status: 'unchanged',
        })
        expect(seen).toEqual([])
        expect(await tier.get('s1')).toEqual(stored)
      })

      it('leaves a missing or expired session missing: nothing is created', async () => {
        const { tier, clock } = await open()
        const change = (current: StoredRecord) => ({ ...current, payload: '{"revived":true}' })
        expect(await tier.update('never-stored', change)).toEqual({ status: 'missing' })
        expect(await tier.get('never-stored')).toBeUndefined()
        await tier.write('old', record(clock, {}, { expiresAt: clock.now() + 10 }))
        clock.advance(10)
        expect(await tier.update('old', change)).toEqual({ status: 'missing' })
        expect(await tier.get('old')).toBeUndefined()
        await tier.write('gone', record(clock, {}))
        await tier.delete('gone')
        expect(await tier.update('gone', change)).toEqual({ status: 'missing' })
        expect(await tier.get('gone')).toBeUndefined()
      })

      it('moves a session to another user', async () => {
        const { tier, clock } = await open()
        await tier.write('s1', record(clock, {}, { userId: 'alice' }))
        await tier.update('s1', (current) => ({ ...current, userId: 'bob' }))
        expect((await tier.rowsOfUser('alice', () => undefined)).map((r) => r.sid)).toEqual([])
        expect((await tier.rowsOfUser('bob', () => undefined)).map((r) => r.sid)).toEqual(['s1'])
      })
    })

    describe('delete', () => {
      it('deletes, says whether the id was there, and tells onCommit', async () => {
        const { tier, clock } = await open()
        await tier.write('s1', record(clock, {}))
        const seen: boolean[] = []
        expect(await tier.delete('s1', { onCommit: (existed) => seen.push(existed) })).toBe(true)
        expect(await tier.get('s1')).toBeUndefined()
        expect(await tier.delete('s1', { onCommit: (existed) => seen.push(existed) })).toBe(false)
        expect(seen).toEqual([true, false])
      })

      it('with upToVersion, deletes only a record that is not newer', async () => {
        const { tier, clock } = await open()
        const stored = await tier.write('s1', record(clock, {}))
        expect(await tier.delete('s1', { upToVersion: stored.version - 1 })).toBe(false)
        expect(await tier.get('s1')).toBeDefined()
        expect(await tier.delete('s1', { upToVersion: stored.version })).toBe(true)
        expect(await tier.get('s1')).toBeUndefined()
      })
    })

    describe('listings', () => {
      it('lists, counts and names only live records', async () => {
        const { tier, clock } = await open()
        await tier.write('live1', record(clock, { n: 1 }, { userId: 'u1' }))
        await tier.write('live2', record(clock, { n: 2 }))
        await tier.write('dying', record(clock, { n: 3 }, { expiresAt: clock.now() + 10 }))
        clock.advance(10)
        const { errors, onCorrupt } = corruptions()
        const rows = await tier.rows(onCorrupt)
        expect(rows.map((r) => r.sid).sort()).toEqual(['live1', 'live2'])
        expect(rows.find((r) => r.sid === 'live1')).toMatchObject({ payload: '{"n":1}', userId: 'u1' })
        expect((await tier.ids()).sort()).toEqual(['live1', 'live2'])
        expect(await tier.countLive()).toBe(2)
        expect(errors).toEqual([])
      })

      it("lists one user's live sessions", async () => {
        const { tier, clock } = await open()
        await tier.write('a1', record(clock, {}, { userId: 'alice' }))
        await tier.write('a2', record(clock, {}, { userId: 'alice' }))
        await tier.write('b1', record(clock, {}, { userId: 'bob' }))
        await tier.write('a3', record(clock, {}, { userId: 'alice', expiresAt: clock.now() + 10 }))
        await tier.write('n1', record(clock, {}))
        clock.advance(10)
        const alice = await tier.rowsOfUser('alice', () => undefined)
        expect(alice.map((r) => r.sid).sort()).toEqual(['a1', 'a2'])
        expect(alice.every((r) => r.userId === 'alice')).toBe(true)
        await tier.delete('a1')
        expect((await tier.rowsOfUser('alice', () => undefined)).map((r) => r.sid)).toEqual(['a2'])
        expect(await tier.rowsOfUser('nobody', () => undefined)).toEqual([])
      })
    })

    describe('sweep, clear and close', () => {
      it(
        options.sweeps === false
          ? 'sweeps nothing itself (the tier expires its own records) and never serves an expired one'
          : 'sweeps expired records in batches of at most `limit`, keeping live ones',
        async () => {
          const { tier, clock } = await open()
          for (let i = 0; i < 5; i++)
            await tier.write(`old${i}`, record(clock, {}, { expiresAt: clock.now() + 10 }))
          await tier.write('live', record(clock, {}))
          clock.advance(10)
          if (options.sweeps === false) {
            expect(await tier.sweep(clock.now(), 2)).toBe(0)
          } else {
            expect(await tier.sweep(clock.now(), 2)).toBe(2)
            expect(await tier.sweep(clock.now(), 10)).toBe(3)
            expect(await tier.sweep(clock.now(), 10)).toBe(0)
          }
          for (let i = 0; i < 5; i++) expect(await tier.get(`old${i}`)).toBeUndefined()
          expect(await tier.get('live')).toBeDefined()
        },
      )

      it('clears everything', async () => {
        const { tier, clock } = await open()
        for (let i = 0; i < 10; i++)
          await tier.write(`s${i}`, record(clock, {}, { userId: i % 2 ? 'u' : null }))
        await tier.clear()
        for (let i = 0; i < 10; i++) expect(await tier.get(`s${i}`)).toBeUndefined()
        expect(await tier.countLive()).toBe(0)
        expect(await tier.rowsOfUser('u', () => undefined)).toEqual([])
      })

      it('commits a write queued before close, and closes idempotently', async () => {
        const { tier, clock } = await open()
        const queued = Promise.resolve(tier.write('s1', record(clock, { queued: true })))
        await tier.close()
        await expect(queued).resolves.toMatchObject({ payload: '{"queued":true}' })
        await expect(Promise.resolve(tier.close())).resolves.toBeUndefined()
      })
    })

    options.extras?.(open)
  })
}
