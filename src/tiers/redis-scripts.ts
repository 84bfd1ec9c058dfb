// Lua scripts of the Redis tier. Each touches one session key (so it runs on Redis Cluster), keeps the
// version monotonic, and publishes the invalidation in the same atomic step as the write.
//
// A session is a hash: p = payload (JSON text), v = version, e = expiresAt (ms), u = userId ('' for none).
// Invalidation messages: "I|<origin>|<version>|<sid>" (sid last: it may contain '|').
// NB: versions are up to 16 digits; Lua would print them as %.14g (losing digits), so every number that
// goes back into Redis is formatted with %d.

/** Unconditional write. KEYS: key. ARGV: payload, expiresAt, userId, proposedVersion, channel, origin, sid.
 * Version = max(old + 1, proposed). Returns { version, previous userId }. */
export const SET_SCRIPT = `
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
local old = redis.call('HMGET', KEYS[1], 'v', 'u')
local v = string.format('%d', math.max((tonumber(old[1]) or 0) + 1, tonumber(ARGV[4])))
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', v, 'e', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], 'I|' .. ARGV[6] .. '|' .. v .. '|' .. ARGV[7])
return {v, old[2] or ''}
`

/** Compare-and-set: writes only if the stored version is still ARGV[4] (merge and touch retry on a miss).
 * KEYS: key. ARGV: payload, expiresAt, userId, expectedVersion, proposedVersion, channel, origin, sid.
 * Returns { 1, version } on success, { 0, currentVersion } on a conflict, { -1 } when the key is gone. */
export const CAS_SCRIPT = `
local cur = redis.call('HGET', KEYS[1], 'v')
if not cur then return {-1} end
if cur ~= ARGV[4] then return {0, cur} end
local v = string.format('%d', math.max(tonumber(cur) + 1, tonumber(ARGV[5])))
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', v, 'e', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[6], 'I|' .. ARGV[7] .. '|' .. v .. '|' .. ARGV[8])
return {1, v}
`

/** Replays an outbox write: stores it only if Redis has nothing newer. KEYS: key.
 * ARGV: payload, expiresAt, userId, version, channel, origin, sid. Returns 1 if written, 0 if skipped. */
export const SET_IF_NEWER_SCRIPT = `
local t = redis.call('TYPE', KEYS[1]).ok
if t ~= 'hash' and t ~= 'none' then redis.call('DEL', KEYS[1]) end
local cur = tonumber(redis.call('HGET', KEYS[1], 'v') or '0')
if cur >= tonumber(ARGV[4]) then return 0 end
redis.call('HSET', KEYS[1], 'p', ARGV[1], 'v', ARGV[4], 'e', ARGV[2], 'u', ARGV[3])
redis.call('PEXPIREAT', KEYS[1], ARGV[2])
redis.call('PUBLISH', ARGV[5], 'I|' .. ARGV[6] .. '|' .. ARGV[4] .. '|' .. ARGV[7])
return 1
`

/** Destroy. KEYS: key. ARGV: version of the destroy (delete only what is not newer; 'inf' always), channel, origin, sid.
 * Returns { deleted (0/1), userId of what was deleted }. */
export const DELETE_SCRIPT = `
local old = redis.call('HMGET', KEYS[1], 'v', 'u')
if not old[1] then return {0, ''} end
if ARGV[1] ~= 'inf' and tonumber(old[1]) > tonumber(ARGV[1]) then return {0, ''} end
redis.call('DEL', KEYS[1])
redis.call('PUBLISH', ARGV[2], 'I|' .. ARGV[3] .. '|' .. string.format('%d', tonumber(old[1]) + 1) .. '|' .. ARGV[4])
return {1, old[2] or ''}
`
