/**
 * The Redis engine's Lua scripts. Each runs atomically, so what a script appends and what it
 * publishes are in one order for every node: the fan-out channel delivers a stream's frames in
 * offset order, and a membership change before or after a publication, never in between.
 *
 * Keys: `<prefix>:m:<stream>` a hash with the stream's epoch `e` and last offset `n`;
 * `<prefix>:s:<stream>` its history, a Redis Stream whose entry ids are `<offset>-0`. The epoch is
 * made by the first script that finds the hash missing (first use, expired, or Redis lost it).
 * The epoch a client sees is that one and `<prefix>:gen`, the count of Redis restarts that may
 * have lost recent writes (BOOT): after such a restart offsets may be handed out again, so
 * every position from before it must resync rather than skip the new frames as repeats.
 */

/**
 * KEYS: boot (the run id of the Redis process the epochs were made under), gen. ARGV: this
 * process's run id, '1' if its persistence loses nothing (appendfsync always). Returns gen.
 */
export const BOOT = `
local b = redis.call('GET', KEYS[1])
if b ~= ARGV[1] then
  redis.call('SET', KEYS[1], ARGV[1])
  if b and ARGV[2] ~= '1' then redis.call('INCR', KEYS[2]) end
end
return redis.call('GET', KEYS[2]) or '0'
`

/** KEYS: meta, history, gen. ARGV: new epoch, history bound, ttl ms (0: none), channel, stream name (JSON), frame (JSON). */
export const APPEND = `
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1 then redis.call('DEL', KEYS[2]) end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
local e = redis.call('HGET', KEYS[1], 'e') .. '.' .. (redis.call('GET', KEYS[3]) or '0')
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[2], n .. '-0', 'f', ARGV[6])
if ARGV[3] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[3])
  redis.call('PEXPIRE', KEYS[2], ARGV[3])
end
redis.call('PUBLISH', ARGV[4], 'f ' .. n .. ' ' .. e .. ' ' .. ARGV[5] .. '\\n' .. ARGV[6])
return {n, e}
`

/** KEYS: meta, gen. ARGV: new epoch, ttl ms. Returns {offset, epoch}. */
export const TIP = `
if redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1 and ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
local e = redis.call('HGET', KEYS[1], 'e') .. '.' .. (redis.call('GET', KEYS[2]) or '0')
return {tonumber(redis.call('HGET', KEYS[1], 'n') or '0'), e}
`

/**
 * KEYS: meta, history, gen. ARGV: from offset, from epoch, new epoch, ttl ms. Returns the frames after
 * `from`, or nil when the history does not cover them all (another epoch, ahead of the tip,
 * trimmed, or entries missing): a gap is never answered as if it were none.
 */
export const SINCE = `
if redis.call('HSETNX', KEYS[1], 'e', ARGV[3]) == 1 and ARGV[4] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[4]) end
local e = redis.call('HGET', KEYS[1], 'e') .. '.' .. (redis.call('GET', KEYS[3]) or '0')
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local from = tonumber(ARGV[1])
if e ~= ARGV[2] or from > n then return false end
if from == n then return {} end
local entries = redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+')
if #entries ~= n - from then return false end
local out = {}
for i = 1, #entries do out[i] = entries[i][2][2] end
return out
`

/**
 * KEYS: the user's rooms, the room's members, the user's join positions (a hash: room -> `<offset>
 * <epoch>`), the room stream's meta, gen. ARGV: room, user, channel, message, new epoch, ttl ms.
 * The room stream's position is kept with the membership, in the same step: a login with no
 * position for the room resumes from it. A second join keeps the first one's.
 */
export const JOIN = `
if redis.call('HSETNX', KEYS[4], 'e', ARGV[5]) == 1 and ARGV[6] ~= '0' then redis.call('PEXPIRE', KEYS[4], ARGV[6]) end
local e = redis.call('HGET', KEYS[4], 'e') .. '.' .. (redis.call('GET', KEYS[5]) or '0')
redis.call('HSETNX', KEYS[3], ARGV[1], (redis.call('HGET', KEYS[4], 'n') or '0') .. ' ' .. e)
redis.call('SADD', KEYS[1], ARGV[1])
redis.call('SADD', KEYS[2], ARGV[2])
redis.call('PUBLISH', ARGV[3], ARGV[4])
`

/** KEYS: the user's rooms, the room's members, the user's join positions. ARGV: room, user, channel, message. */
export const LEAVE = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('SREM', KEYS[2], ARGV[2])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('PUBLISH', ARGV[3], ARGV[4])
`

/** KEYS: the user's rooms, the user's join positions. Returns {room, position or false} for each room, in one read. */
export const JOINED = `
local rooms = redis.call('SMEMBERS', KEYS[1])
local out = {}
for i = 1, #rooms do out[i] = {rooms[i], redis.call('HGET', KEYS[2], rooms[i]) or false} end
return out
`

/**
 * The duplicate window of one user: KEYS a hash (id: `d` handled, or the ms its claim expires at)
 * and a sorted set (id by the ms it was last claimed or marked), so the window is bounded by
 * count per user as well as by time. Redis's clock (TIME) times claims, so that nodes whose
 * clocks differ agree. Every script below starts with NOW and SWEEP: the ids older than the
 * dedup ttl go, a hundred at a time.
 */
const NOW = `
if redis.replicate_commands then redis.replicate_commands() end
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
local function ms(x) return string.format('%.0f', x) end
`

/** ARGV[3]: dedup ttl ms (0: forever). */
const SWEEP = `
local ttl = tonumber(ARGV[3])
if ttl > 0 then
  local old = redis.call('ZRANGEBYSCORE', KEYS[2], '-inf', ms(now - ttl), 'LIMIT', 0, 100)
  if #old > 0 then
    redis.call('HDEL', KEYS[1], unpack(old))
    redis.call('ZREM', KEYS[2], unpack(old))
  end
end
`

/** After a write: the oldest ids past ARGV[4] (the limit per user) go, and the window lives ttl more. */
const BOUND = `
local over = redis.call('ZCARD', KEYS[2]) - tonumber(ARGV[4])
if over > 0 then
  local popped = redis.call('ZPOPMIN', KEYS[2], over)
  for i = 1, #popped, 2 do redis.call('HDEL', KEYS[1], popped[i]) end
end
if ttl > 0 then
  redis.call('PEXPIRE', KEYS[1], ttl)
  redis.call('PEXPIRE', KEYS[2], ttl)
end
`

/**
 * ARGV: id, claim ttl ms, dedup ttl ms, limit. 1: claimed now (handle it); 0: handled already
 * (ack again); 2: claimed by a handler still running, here or on another node.
 */
export const CLAIM = `${NOW}${SWEEP}
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v == 'd' then return 0 end
if v and tonumber(v) > now then return 2 end
redis.call('HSET', KEYS[1], ARGV[1], ms(now + tonumber(ARGV[2])))
redis.call('ZADD', KEYS[2], ms(now), ARGV[1])
${BOUND}
return 1
`

/** ARGV: id, unused, dedup ttl ms, limit. Marks the id handled. */
export const HANDLED = `${NOW}${SWEEP}
redis.call('HSET', KEYS[1], ARGV[1], 'd')
redis.call('ZADD', KEYS[2], ms(now), ARGV[1])
${BOUND}
return 0
`

/**
 * ARGV: id. Takes back a claim (its handler failed), never a handled mark: a handler that outlived
 * its claim and then failed must not make another node's work undone.
 */
export const FORGET = `
local v = redis.call('HGET', KEYS[1], ARGV[1])
if v and v ~= 'd' then
  redis.call('HDEL', KEYS[1], ARGV[1])
  redis.call('ZREM', KEYS[2], ARGV[1])
end
return 0
`
