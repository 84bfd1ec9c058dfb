// Lua scripts of the Redis tier. Each touches one key (so it runs on Redis Cluster), keeps the version
// monotonic, and publishes the invalidation in the same atomic step as the write.
//
// A session is a hash: p = payload (JSON text), v = version, e = expiresAt (ms), u = userId ('' for none);
// a touch adds c = the newer cookie (JSON text) and t = the version it belongs to (a later write makes it stale);
// with `maxLifetime`, a = when the session was created (ms; the last ARGV of each write, '' for none).
// A destroyed session leaves a tombstone { v, d = 1 } until its old expiry, so that an outbox write made
// before the destroy (by an instance that was cut off) can never bring it back; where writes of it wait in the
// outbox file (another process's, maybe being replayed), until the latest of their expiries, even with no key.
// Invalidation messages: "I|<origin>|<version>|<sid>" (sid last: it may contain '|').
// With `migrate.dualWrite`, KEYS[2] is connect-redis's key of the session: every write mirrors the payload there
// (a string with the same PEXPIREAT), a touch its expiry, a destroy deletes it; a compare-and-set also requires
// that key still to hold what we last mirrored (else an old instance changed or destroyed the session).
// The set and the compare-and-set also add the session to its user's index in the same step, when asked to (not
// on Cluster, where the index key is on another slot): their ARGV[10], '' for none, is then the index's expiry
// and the LAST of KEYS is the index key (after connect-redis's key with dualWrite).
// NB: versions are up to 16 digits; Lua would print them as %.14g (losing digits), so every number that
// goes back into Redis is formatted with %d. A key that is not a hash (garbage) is deleted, never an error.

/** Shared prologue: read the version (0 when absent or not a number); a non-hash value at KEYS[1] (WRONGTYPE)
 * is dropped. pcall rather than a TYPE check first: one command fewer on every write. Any other error (OOM, a
 * read-only replica) is returned as it is, before anything was written. */
const DROP_NOT_A_HASH = `redis.call('DEL', KEYS[1])
  old = {false, false, false, false}`
const PROLOGUE = `
local old = redis.pcall('HMGET', KEYS[1], 'v', 'u', 'd', 'e', 'a')
if old.err then
  if not string.find(old.err, 'WRONGTYPE', 1, true) then return redis.error_reply(old.err) end
  ${DROP_NOT_A_HASH}
end
local oldv = tonumber(old[1]) or 0
local dead = old[3] == '1'
`

/** Client tracking: a write of our own connection ends its tracking of the key (Redis forgets every tracker of
 * a key it invalidates, NOLOOP only skips telling us); we keep a copy, so the script reads the key again last. */
const TRACK = `redis.call('HGET', KEYS[1], 'v')`

/** dualWrite: the payload (ARGV[1]) and expiry (ARGV[2]) written to connect-redis's key (`legacy`) too. */
const MIRROR = (legacy = 'KEYS[2]') => `if ${legacy} then
  redis.call('SET', ${legacy}, ARGV[1])
  redis.call('PEXPIREAT', ${legacy}, ARGV[2])
end`

/** The keys of a script that may add to the user index: ARGV[n] ~= '' says the last of KEYS is the index key;
 * connect-redis's key (dualWrite) is KEYS[2] when it is not that one. Sets locals `indexKey` and `legacyKey`. */
const KEY_LAYOUT = (n: number) => `
local indexKey = false
if ARGV[${n}] and ARGV[${n}] ~= '' then indexKey = KEYS[#KEYS] end
local legacyKey = false
if #KEYS - (indexKey and 1 or 0) >= 2 then legacyKey = KEYS[2] end
`

/** Makes `key` (which exists) live at least until the Lua number `at` (ms) on Redis's clock: a key with no expiry
 * gets this one, a sooner one moves out to it, a later one stays. Redis 7 (REDIS_VERSION_NUM ≥ 0x070000):
 * PEXPIREAT NX, else GT; older servers: PTTL and TIME. */
const EXPIRE_AT_LEAST = (key: string, at: string) => `if (redis.REDIS_VERSION_NUM or 0) >= 458752 then
    local atText = string.format('%d', ${at})
    if redis.call('PEXPIREAT', ${key}, atText, 'NX') == 0 then redis.call('PEXPIREAT', ${key}, atText, 'GT') end
  else
    local ttl = redis.call('PTTL', ${key})
    local now = redis.call('TIME')
    if ttl < 0 or tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000) + ttl < ${at} then
      redis.call('PEXPIREAT', ${key}, string.format('%d', ${at}))
    end
  end`

/** Adds ARGV[sid] to the set at `key` and makes it live at least until ARGV[until] (ms), on Redis's own clock
 * (the one PEXPIREAT uses: a writer whose clock runs ahead must not believe the index outlives the session).
 * Runs before anything else is written: an error it returns (OOM, READONLY) leaves nothing changed.
 * Redis 7 (REDIS_VERSION_NUM ≥ 0x070000): PEXPIREAT NX (a key with no expiry gets this one), else GT (a sooner
 * one moves out to it): one command for a new index key instead of three, and no read of it. (Redis 7 tracks,
 * for a connection with client tracking, every key a script declares once the script reads any key: the SET and
 * CAS scripts, which read the session, leave the index key tracked all the same; INDEX_ADD_SCRIPT alone no
 * longer does.) Older servers: PTTL and TIME. */
const INDEX_ADD = (key: string, sid: number, until: number) => `do
  local added = redis.pcall('SADD', ${key}, ARGV[${sid}])
  if type(added) == 'table' and added.err then
    -- NB: only a value of the wrong type is replaced; an OOM or READONLY error must not cost the index its members.
    if not string.find(added.err, 'WRONGTYPE', 1, true) then return redis.error_reply(added.err) end
    redis.call('DEL', ${key})
    redis.call('SADD', ${key}, ARGV[${sid}])
  end
  local at = tonumber(ARGV[${until}]) or 0
  ${EXPIRE_AT_LEAST(key, 'at')}
end`

/** Creation time: ARGV[n] ('' for none) into field a. */
const CREATED = (n: number) =>
  `if ARGV[${n}] and ARGV[${n}] ~= '' then redis.call('HSET', KEYS[1], 'a', ARGV[${n}]) end`

/** Unconditional write. KEYS: key [, connect-redis's key] [, index key]. ARGV: payload, expiresAt, userId,
 * proposedVersion, channel, origin, sid, createdAt, maxLifetimeMs ('' for none: `maxLifetime`), index expiry
 * ('' or absent: no index add; else sid joins the set at the last key first). Version = max(old + 1, proposed);
 * overwrites a tombstone. A live session keeps its creation time, and the expiry is capped at creation + maxLifetimeMs.
 * Returns { version, previous userId, created (1 when no live session was there), expiresAt, createdAt }. */
export const SET_SCRIPT = `${PROLOGUE}${KEY_LAYOUT(10)}
if indexKey then ${INDEX_ADD('indexKey', 7, 10)} end
local v = string.format('%d', math.max(oldv + 1, tonumber(ARGV[4]) or 0))
local a = ARGV[8] or ''
if a ~= '' and not dead and old[5] and old[5] ~= '' then a = old[5] end
local e = ARGV[2]
if a ~= '' and ARGV[9] and ARGV[9] ~= '' then
  e = string.format('%d', math.min(tonumber(ARGV[2]), tonumber(a) + tonumber(ARGV[9])))
end
if dead then redis.call('HDEL', KEYS[1], 'd') end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', v, 'e', e, 'u', ARGV[3])
if a ~= '' then redis.call('HSET', KEYS[1], 'a', a) end
redis.call('PEXPIREAT', KEYS[1], e)
${MIRROR('legacyKey')}
redis.call('PUBLISH', ARGV[5], 'I|' .. ARGV[6] .. '|' .. v .. '|' .. ARGV[7])
${TRACK}
if dead or old[1] == false then return {v, '', 1, e, a} end
return {v, old[2] or '', 0, e, a}
`

/** Compare-and-set: writes only if the stored version is still ARGV[4] (merge and touch retry on a miss).
 * KEYS: key [, connect-redis's key] [, index key]. ARGV: payload, expiresAt, userId, expectedVersion,
 * proposedVersion, channel, origin, sid, createdAt, index expiry ('' or absent: no index add; else, once the
 * compare succeeded, sid joins the set at the last key before the write).
 * Returns { 1, version } on success, { 0, currentVersion } on a conflict, { -1 } when the session is gone. */
export const CAS_SCRIPT = `${PROLOGUE}${KEY_LAYOUT(10)}
if old[1] == false or dead then return {-1} end
if old[1] ~= ARGV[4] then return {0, old[1]} end
if legacyKey then
  local legacy = redis.call('GET', legacyKey)
  if legacy == false then return {-1} end
  if legacy ~= redis.call('HGET', KEYS[1], 'p') then return {0, '0'} end
end
if indexKey then ${INDEX_ADD('indexKey', 8, 10)} end
local v = string.format('%d', math.max(oldv + 1, tonumber(ARGV[5]) or 0))
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', v, 'e', ARGV[2], 'u', ARGV[3])
${CREATED(9)}
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
${MIRROR('legacyKey')}
redis.call('PUBLISH', ARGV[6], 'I|' .. ARGV[7] .. '|' .. v .. '|' .. ARGV[8])
${TRACK}
return {1, v}
`

/** Touch: moves the expiry forward and keeps the new cookie beside the payload (no payload, no version change,
 * no invalidation: a copy elsewhere that looks expired is re-read). Only the version it was made on, only
 * forward; never creates or revives. KEYS: key. ARGV: version, expiresAt, cookie. Returns 1 if applied. */
export const TOUCH_SCRIPT = `${PROLOGUE}
if old[1] == false or dead or old[1] ~= ARGV[1] then return 0 end
if (tonumber(old[4]) or 0) >= (tonumber(ARGV[2]) or 0) then return 0 end
redis.call('HSET', KEYS[1], 'e', ARGV[2], 'c', ARGV[3], 't', ARGV[1])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
-- NB: dualWrite: connect-redis's key gets the expiry only while it holds our payload (an old instance's newer
-- value keeps its own, and is adopted by our next read).
if KEYS[2] and redis.call('GET', KEYS[2]) == redis.call('HGET', KEYS[1], 'p') then
  redis.call('PEXPIREAT', KEYS[2], ARGV[2])
end
${TRACK}
return 1
`

/** Replays an outbox write: stored only if Redis holds nothing newer and no tombstone. KEYS: key.
 * ARGV: payload, expiresAt, userId, version, channel, origin, sid, createdAt. Returns 1 if written, 2 if Redis holds this
 * very write already (a replay of a write that did arrive), 0 if skipped. */
export const SET_IF_NEWER_SCRIPT = `${PROLOGUE}
if not dead and oldv == (tonumber(ARGV[4]) or 0) and redis.call('HGET', KEYS[1], 'p') == ARGV[1] then return 2 end
if dead or oldv >= (tonumber(ARGV[4]) or 0) then return 0 end
-- NB: dualWrite: an old instance changed or destroyed the session since we last mirrored it: its value is newer.
if KEYS[2] and old[1] ~= false and redis.call('GET', KEYS[2]) ~= redis.call('HGET', KEYS[1], 'p') then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', ARGV[4], 'e', ARGV[2], 'u', ARGV[3])
${CREATED(8)}
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
${MIRROR()}
redis.call('PUBLISH', ARGV[5], 'I|' .. ARGV[6] .. '|' .. ARGV[4] .. '|' .. ARGV[7])
${TRACK}
return 1
`

/** Destroy: leaves a tombstone until the old expiry. KEYS: key. ARGV: version of the destroy ('inf' for a
 * live destroy; a replayed one deletes only what is not newer), channel, origin, sid, and until when (ms) to
 * leave a tombstone where there is no session ('' for never: an outbox entry of it may be on its way).
 * Returns { deleted (0/1), userId of what was deleted }. */
export const DELETE_SCRIPT = `${PROLOGUE}
local replayed = ARGV[1] ~= 'inf'
if KEYS[2] and not replayed then redis.call('DEL', KEYS[2]) end
-- NB: a replay of an outage write made before this destroy, already sent by another process, must not bring
-- the session back: the tombstone lasts at least until that write's expiry (ARGV[5]), where there is none too.
local keep = tonumber(ARGV[5] or '')
if old[1] == false or dead then
  -- NB: dualWrite, replayed: without ours, connect-redis's key is the session.
  if KEYS[2] then redis.call('DEL', KEYS[2]) end
  if keep and keep > 0 then
    if dead then
      ${EXPIRE_AT_LEAST('KEYS[1]', 'keep')}
    else
      redis.call('HSET', KEYS[1], 'v', '1', 'd', '1')
      redis.call('PEXPIREAT', KEYS[1], string.format('%d', keep))
    end
  end
  return {0, ''}
end
if replayed and oldv > (tonumber(ARGV[1]) or 0) then return {0, ''} end
if KEYS[2] then redis.call('DEL', KEYS[2]) end
-- NB: never tonumber('inf'): Lua's strtod reads it as infinity.
local v = string.format('%d', math.max(oldv + 1, replayed and (tonumber(ARGV[1]) or 0) or 0))
local e = tonumber(old[4])
if keep and keep > (e or 0) then e = keep end
redis.call('DEL', KEYS[1])
if e and e > 0 then
  redis.call('HSET', KEYS[1], 'v', v, 'd', '1')
  redis.call('PEXPIREAT', KEYS[1], string.format('%d', e))
end
redis.call('PUBLISH', ARGV[2], 'I|' .. ARGV[3] .. '|' .. v .. '|' .. ARGV[4])
return {1, old[2] or ''}
`

/** Adds a sid to a user's index and makes the index live at least until ARGV[2] (works on Redis 6 too).
 * KEYS: index key. ARGV: sid, expiresAt (ms). The write scripts do the same in their own step where they can. */
export const INDEX_ADD_SCRIPT = `
${INDEX_ADD('KEYS[1]', 1, 2)}
return 1
`

/** Converts a connect-redis session (a JSON string) into ours, only if its text is still ARGV[1] (the one read,
 * so nothing an old instance wrote meanwhile is lost). KEYS[1]: our key; KEYS[2] (mode 'move'): the legacy key.
 * ARGV: legacyText, payload, expiresAt, userId, proposedVersion, channel, origin, sid, mode, expectedVersion, createdAt:
 * 'dual' (dualWrite: KEYS[2] is connect-redis's key and stays, ours must still be at expectedVersion),
 * 'same' (the legacy value is at KEYS[1] itself), 'move' (at KEYS[2], deleted in the same step), 'create' (at
 * another key on another Cluster slot: ours is created only if absent; the caller drops the legacy key after).
 * Returns { 1, version } when converted, { 0, version } when the key changed (retry on a fresh read), { -1 }
 * when the session is gone (destroyed or expired). */
export const LEGACY_CONVERT_SCRIPT = `
local mode = ARGV[9]
if mode == 'dual' then
  -- dualWrite: ours (absent: version '0') must still be at ARGV[10], connect-redis's key still hold ARGV[1];
  -- ours then takes the change, and connect-redis's key the new payload.
  local s = redis.call('HMGET', KEYS[1], 'v', 'd')
  if s[2] == '1' then return {-1} end
  if (s[1] or '0') ~= ARGV[10] then return {0, s[1] or '0'} end
  local legacy = redis.call('GET', KEYS[2])
  if legacy == false then return {-1} end
  if legacy ~= ARGV[1] then return {0, '0'} end
  local v = string.format('%d', math.max((tonumber(s[1]) or 0) + 1, tonumber(ARGV[5]) or 1))
  redis.call('HSET', KEYS[1], 'p', ARGV[2], 'v', v, 'e', ARGV[3], 'u', ARGV[4])
  ${CREATED(11)}
  redis.call('HDEL', KEYS[1], 'c', 't')
  redis.call('PEXPIREAT', KEYS[1], ARGV[3])
  redis.call('SET', KEYS[2], ARGV[2])
  redis.call('PEXPIREAT', KEYS[2], ARGV[3])
  redis.call('PUBLISH', ARGV[6], 'I|' .. ARGV[7] .. '|' .. v .. '|' .. ARGV[8])
  ${TRACK}
  return {1, v}
end
local t = redis.call('TYPE', KEYS[1]).ok
if t == 'hash' then
  local s = redis.call('HMGET', KEYS[1], 'v', 'd')
  if s[2] == '1' then return {-1} end
  return {0, s[1] or '0'}
end
if mode == 'same' then
  if t ~= 'string' then return {-1} end
  if redis.call('GET', KEYS[1]) ~= ARGV[1] then return {0, '0'} end
  redis.call('DEL', KEYS[1])
elseif t ~= 'none' then
  return {-1}
elseif mode == 'move' then
  local legacy = redis.pcall('GET', KEYS[2])
  if type(legacy) == 'table' or legacy == false then return {-1} end
  if legacy ~= ARGV[1] then return {0, '0'} end
  redis.call('DEL', KEYS[2])
end
local v = string.format('%d', tonumber(ARGV[5]) or 1)
redis.call('HSET', KEYS[1], 'p', ARGV[2], 'v', v, 'e', ARGV[3], 'u', ARGV[4])
${CREATED(11)}
redis.call('PEXPIREAT', KEYS[1], ARGV[3])
redis.call('PUBLISH', ARGV[6], 'I|' .. ARGV[7] .. '|' .. v .. '|' .. ARGV[8])
${TRACK}
return {1, v}
`

/** Deletes a connect-redis key only if it still holds ARGV[1] (after a 'create' conversion). KEYS: legacy key. */
export const LEGACY_DROP_SCRIPT = `
local legacy = redis.pcall('GET', KEYS[1])
if type(legacy) == 'string' and legacy == ARGV[1] then redis.call('DEL', KEYS[1]) return 1 end
return 0
`

/** dualWrite's read: our hash and connect-redis's key of one session, in one atomic step. KEYS: ours, legacy.
 * Returns { p, v, e, u, d, c, t, a (as HMGET), legacy value, legacy PTTL }. */
export const DUAL_READ_SCRIPT = `
local ours = redis.call('HMGET', KEYS[1], 'p', 'v', 'e', 'u', 'd', 'c', 't', 'a')
local legacy = redis.pcall('GET', KEYS[2])
if type(legacy) == 'table' then legacy = false end
ours[9] = legacy
ours[10] = redis.call('PTTL', KEYS[2])
return ours
`

/** `migrate` on our own prefix: a string at our key is connect-redis's session (an old instance may still
 * write one), not garbage: a compare-and-set (a conflict: read it again, as a legacy session), a touch and a
 * replay (not applied) leave it in place. A set and a destroy replace it, as they would any value. */
export const LEGACY_SAFE = {
  cas: CAS_SCRIPT.replace(DROP_NOT_A_HASH, "return {0, '0'}"),
  touch: TOUCH_SCRIPT.replace(DROP_NOT_A_HASH, 'return 0'),
  setIfNewer: SET_IF_NEWER_SCRIPT.replace(DROP_NOT_A_HASH, 'return 0'),
}
