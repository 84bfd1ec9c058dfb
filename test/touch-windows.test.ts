// A deferred touch waits out a window that grows with the session's life (a minute a day, 1 s to 60 s), counted
// from the session's first touch since its last commit: a session touched all the time costs one durable touch
// per window. The row gets the new cookie from the touch at commit time (the touch holds no payload).

import { afterEach, describe, expect, it, vi } from 'vitest'
import { TouchBatch } from '../src/redis/touch-batch.js'
import type { StoredRecord, TouchInput } from '../src/tiers/tier.js'
import { MAX_TOUCH_WINDOW_MS, TOUCH_COMMIT_MS, touchWindowMs } from '../src/tiers/tier.js'
import { MAX_PENDING_TOUCHES, TouchSchedule } from '../src/tiers/touch-schedule.js'
import { openDiskTier } from './helpers/disk-tiers.js'

const HOUR = 3_600_000
const DAY = 24 * HOUR

/** Lets the promise callbacks queued so far run (a batch sent after another is chained on it). */
async function settle(): Promise<void> {
  for (let i = 0; i < 20; i++) await Promise.resolve()
}

afterEach(() => {
  vi.useRealTimers()
})

describe('the window of a deferred touch', () => {
  it('is a 1,440th of the life the touch leaves, from 1 s to 60 s', () => {
    expect(touchWindowMs(DAY)).toBe(MAX_TOUCH_WINDOW_MS)
    expect(touchWindowMs(30 * DAY)).toBe(60_000)
    expect(touchWindowMs(HOUR)).toBe(2_500)
    expect(touchWindowMs(10 * 60_000)).toBe(TOUCH_COMMIT_MS)
    expect(touchWindowMs(0)).toBe(1_000)
  })
})

describe('the schedule of pending touches', () => {
  it('never waits longer than the window (whole ticks, rounded down), and one tick past MAX_PENDING_TOUCHES', () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const due: string[] = []
    const schedule = new TouchSchedule<number>((ready) => due.push(...ready.keys()))
    schedule.set('w1999', 1, 1_999)
    schedule.set('w2000', 1, 2_000)
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    expect(due).toEqual(['w1999'])
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    expect(due).toEqual(['w1999', 'w2000'])
    for (let i = 0; i < MAX_PENDING_TOUCHES; i++) schedule.set(`long${i}`, i, 60_000)
    schedule.set('over', 1, 60_000)
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    expect(due.at(-1)).toBe('over')
    expect(schedule.size).toBe(MAX_PENDING_TOUCHES)
    expect(schedule.takeAll().size).toBe(MAX_PENDING_TOUCHES)
  })
})

describe('deferred touches in local mode', () => {
  it('keep a row they were acknowledged for alive past its old expiry: a sweep leaves it to them', async () => {
    const { tier, clock } = openDiskTier()
    const rows = ['a', 'b']
    const written = await Promise.all(
      rows.map((sid) =>
        tier.write(sid, { payload: '{"cookie":{},"x":1}', expiresAt: clock.now() + 10_000, userId: null }),
      ),
    )
    written.forEach((record, i) => {
      tier.touchLater(rows[i] as string, {
        version: record.version,
        expiresAt: clock.now() + HOUR,
        cookieText: '{"t":1}',
        userId: null,
        windowMs: 60_000,
      })
    })
    clock.advance(10_000)
    // The rows look expired, but their touches (acknowledged while they were live) are pending: left alone.
    expect(tier.sweep(clock.now(), 100)).toBe(0)
    tier.commitTouches()
    for (const sid of rows) expect(tier.get(sid)).toMatchObject({ expiresAt: clock.now() - 10_000 + HOUR })
    expect(tier.sweep(clock.now(), 100)).toBe(0)
  })

  it('are committed once their window is up, not before; a later touch replaces the first and keeps its due time', async () => {
    const { tier, clock } = openDiskTier()
    const first = await tier.write('s', {
      payload: '{"cookie":{"n":0},"cart":[1,2]}',
      expiresAt: clock.now() + HOUR,
      userId: 'u',
    })
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout', 'setImmediate', 'clearImmediate'] })
    const touch = (n: number): TouchInput => ({
      version: first.version,
      expiresAt: clock.now() + HOUR + n,
      cookieText: `{"n":${n}}`,
      userId: 'u',
      windowMs: 5_000,
    })
    tier.touchLater('s', touch(1))
    vi.advanceTimersByTime(3 * TOUCH_COMMIT_MS)
    tier.touchLater('s', touch(2))
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    // 4 s: still waiting (the row as written).
    expect(tier.get('s')).toMatchObject({
      expiresAt: clock.now() + HOUR,
      payload: '{"cookie":{"n":0},"cart":[1,2]}',
    })
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    vi.runOnlyPendingTimers()
    // 5 s after the first touch: the latest touch is in the row, its cookie in place of the old one.
    expect(tier.get('s')).toMatchObject({
      expiresAt: clock.now() + HOUR + 2,
      payload: '{"cookie":{"n":2},"cart":[1,2]}',
      version: first.version,
    })
  })

  it('commitTouches() commits a touch whose window is not up; a write in between drops the older touch', async () => {
    const { tier, clock } = openDiskTier()
    const a = await tier.write('a', {
      payload: '{"cookie":{},"x":1}',
      expiresAt: clock.now() + HOUR,
      userId: null,
    })
    const b = await tier.write('b', {
      payload: '{"cookie":{},"x":1}',
      expiresAt: clock.now() + HOUR,
      userId: null,
    })
    const later = clock.now() + 2 * HOUR
    tier.touchLater('a', {
      version: a.version,
      expiresAt: later,
      cookieText: '{"t":1}',
      userId: null,
      windowMs: 60_000,
    })
    tier.touchLater('b', {
      version: b.version,
      expiresAt: later,
      cookieText: '{"t":1}',
      userId: null,
      windowMs: 60_000,
    })
    await tier.write('b', { payload: '{"cookie":{},"x":2}', expiresAt: clock.now() + HOUR, userId: null })
    tier.commitTouches()
    expect(tier.get('a')).toMatchObject({ expiresAt: later, payload: '{"cookie":{"t":1},"x":1}' })
    expect(tier.get('b')).toMatchObject({ expiresAt: clock.now() + HOUR, payload: '{"cookie":{},"x":2}' })
  })

  it('a write that replaces the row drops the touch collected before it; an update builds on it', async () => {
    const { tier, clock } = openDiskTier()
    const write = (sid: string) =>
      tier.write(sid, { payload: '{"cookie":{},"x":1}', expiresAt: clock.now() + HOUR, userId: null })
    const touch = (sid: string, version: number) =>
      tier.touchLater(sid, {
        version,
        expiresAt: clock.now() + 2 * HOUR,
        cookieText: '{"t":1}',
        userId: null,
        windowMs: 60_000,
      })
    const [a, b, c] = await Promise.all([write('a'), write('b'), write('c')])
    touch('a', (a as StoredRecord).version)
    touch('b', (b as StoredRecord).version)
    touch('c', (c as StoredRecord).version)
    // A set (the whole row, a shorter life than the touch's) and a destroy: queued alone, the touch dropped.
    const set = tier.write('a', {
      payload: '{"cookie":{},"x":2}',
      expiresAt: clock.now() + HOUR,
      userId: null,
    })
    expect(tier.pendingWrites).toBe(1)
    const destroyed = tier.delete('b')
    expect(tier.pendingWrites).toBe(2)
    // A read-modify-write goes after the touch, and sees its cookie and expiry.
    const updated = tier.update('c', (current) => ({
      ...current,
      payload: current.payload.replace('"x":1', '"x":3'),
    }))
    expect(tier.pendingWrites).toBe(4)
    await Promise.all([set, destroyed, updated])
    tier.commitTouches()
    expect(tier.pendingWrites).toBe(0)
    expect(tier.get('a')).toMatchObject({ expiresAt: clock.now() + HOUR, payload: '{"cookie":{},"x":2}' })
    expect(tier.get('b')).toBeUndefined()
    expect(tier.get('c')).toMatchObject({
      expiresAt: clock.now() + 2 * HOUR,
      payload: '{"cookie":{"t":1},"x":3}',
    })
  })
})

describe('a touch dropped for a write that replaces the row (local mode)', () => {
  it('keeps the sweeper off the row until that write commits; a touch after the write is committed', async () => {
    const { tier, clock } = openDiskTier()
    const write = (sid: string, x: number, ms: number) =>
      tier.write(sid, { payload: `{"cookie":{},"x":${x}}`, expiresAt: clock.now() + ms, userId: null })
    const touch = (sid: string, version: number, ms: number) =>
      tier.touchLater(sid, {
        version,
        expiresAt: clock.now() + ms,
        cookieText: '{"t":1}',
        userId: null,
        windowMs: 60_000,
      })
    const s = await write('s', 1, 10_000)
    const d = await write('d', 1, 10_000)
    touch('s', s.version, HOUR)
    touch('d', d.version, HOUR)
    // Both rows look expired on disk; memory (touched) has them live. A set and a destroy are queued, and a
    // sweep runs before they commit: it must leave the rows alone.
    clock.advance(20_000)
    const set = write('s', 2, HOUR)
    const destroyed = tier.delete('d')
    // A touch of the version the set will make, while the set waits: a touch of its own, not lost in the dropped one.
    touch('s', s.version + 1, 2 * HOUR)
    expect(tier.sweep(clock.now(), 100)).toBe(0)
    expect((await set).version).toBe(s.version + 1)
    expect(await destroyed).toBe(true)
    tier.commitTouches()
    expect(tier.get('s')).toMatchObject({ expiresAt: clock.now() + 2 * HOUR, version: s.version + 1 })
    // Once the writes are done nothing guards the rows any more: an expired one is swept.
    clock.advance(3 * HOUR)
    expect(tier.sweep(clock.now(), 100)).toBe(1)
  })

  it('stops guarding the row once the write is done, with no touch after it', async () => {
    const { tier, clock } = openDiskTier()
    const first = await tier.write('s', {
      payload: '{"cookie":{},"x":1}',
      expiresAt: clock.now() + 10_000,
      userId: null,
    })
    tier.touchLater('s', {
      version: first.version,
      expiresAt: clock.now() + HOUR,
      cookieText: '{"t":1}',
      userId: null,
      windowMs: 60_000,
    })
    clock.advance(20_000)
    await tier.write('s', { payload: '{"cookie":{},"x":2}', expiresAt: clock.now() + 1_000, userId: null })
    clock.advance(2_000)
    expect(tier.sweep(clock.now(), 100)).toBe(1)
    expect(tier.get('s')).toBeUndefined()
  })
})

describe('deferred touches in shared mode', () => {
  it('are sent once their window is up, the latest of each session, and at once on commit()', async () => {
    vi.useFakeTimers({ toFake: ['setTimeout', 'clearTimeout'] })
    const sent: Array<[string, string]> = []
    const batch = new TouchBatch(async (sid, touch) => {
      sent.push([sid, touch.cookieText])
    })
    const touch = (n: number, windowMs: number): TouchInput => ({
      version: 1,
      expiresAt: n,
      cookieText: String(n),
      userId: null,
      windowMs,
    })
    batch.add('short', touch(1, 1_000))
    batch.add('long', touch(1, 3_000))
    batch.add('rest', touch(1, 60_000))
    vi.advanceTimersByTime(TOUCH_COMMIT_MS)
    await settle()
    expect(sent).toEqual([['short', '1']])
    batch.add('long', touch(2, 3_000))
    // The same version with an earlier expiry does not replace it.
    batch.add('long', { ...touch(3, 3_000), expiresAt: 0 })
    vi.advanceTimersByTime(2 * TOUCH_COMMIT_MS)
    await settle()
    expect(sent).toEqual([
      ['short', '1'],
      ['long', '2'],
    ])
    await batch.commit()
    expect(sent.map(([sid]) => sid)).toEqual(['short', 'long', 'rest'])
  })

  it('a touch made on a version older than a write since is dropped; a newer one is kept', async () => {
    const sent: string[] = []
    const batch = new TouchBatch(async (sid) => {
      sent.push(sid)
    })
    const touch = (version: number): TouchInput => ({
      version,
      expiresAt: 1,
      cookieText: '{}',
      userId: null,
      windowMs: 60_000,
    })
    batch.add('stale', touch(3))
    batch.add('current', touch(4))
    batch.add('destroyed', touch(9))
    // A write made version 4 of each, and a destroy left a tombstone.
    batch.dropOlder('stale', 4)
    batch.dropOlder('current', 4)
    batch.dropOlder('destroyed', Number.POSITIVE_INFINITY)
    await batch.commit()
    expect(sent).toEqual(['current'])
  })
})
