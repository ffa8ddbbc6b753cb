/**
 * The Redis engine's Lua scripts. Each runs atomically, so what a script appends and what it
 * publishes are in one order: a stream's channel delivers its frames in offset order.
 *
 * Every script touches the keys of one hash slot, so that they run on Redis Cluster as on one
 * Redis: a stream's keys and its channel share the stream's name as hash tag
 * (`<prefix>:m:{<stream>}`), and a user's keys that of the user's stream (`{user:<user>}`).
 *
 * Keys: `<prefix>:m:{<stream>}` a hash with the stream's epoch `e`, its last offset `n`, and `r`,
 * the run id of the Redis process that last checked the epoch; `<prefix>:s:{<stream>}` its
 * history, a Redis Stream whose entry ids are `<offset>-0`. The epoch is made by the first script
 * that finds the hash missing (first use, expired, or Redis lost it), and made again by the first
 * append after a restart of a Redis whose persistence may have lost the last writes (anything but
 * `appendfsync always`): offsets may then be handed out again, so every position from before it
 * must resync rather than skip the new frames as repeats. The run id is read where the script runs,
 * so on a cluster a restart of one master renews the epochs of its streams only.
 */

/** The run id of the Redis process the script runs on (INFO costs Redis several µs: only where needed). */
const RUN = `local function run() return string.match(redis.call('INFO', 'server'), 'run_id:(%w+)') end
`

/**
 * What every stream script starts with. KEYS[1]: the stream's meta; ARGV: new epoch, ttl ms (0:
 * none), '1' if Redis loses nothing on a restart. `fresh` is true when the stream starts here
 * (its history, if any was left, is dropped); `e` is the epoch.
 */
const EPOCH = `${RUN}
local fresh = redis.call('HSETNX', KEYS[1], 'e', ARGV[1]) == 1
if fresh then
  redis.call('HSET', KEYS[1], 'r', run())
  if ARGV[2] ~= '0' then redis.call('PEXPIRE', KEYS[1], ARGV[2]) end
end
local e = redis.call('HGET', KEYS[1], 'e')
`

/**
 * The restart check, before an append (after EPOCH): a stream last checked by another Redis
 * process, one that may have lost writes, gets a new epoch before it hands out an offset again.
 * Reads answer with the epoch as it stands: a position read before the check meets the new epoch
 * at the next frame and resumes, then resyncs, so it never skips an offset handed out again.
 */
const RESTARTED = `
if not fresh then
  local now = run()
  if redis.call('HGET', KEYS[1], 'r') ~= now then
    if ARGV[3] ~= '1' then
      redis.call('HSET', KEYS[1], 'e', ARGV[1])
      e = ARGV[1]
    end
    redis.call('HSET', KEYS[1], 'r', now)
  end
end
`

/**
 * KEYS: meta, history. ARGV: new epoch, ttl ms, durable, history bound, publish command
 * (PUBLISH or SPUBLISH), channel, frame (JSON). Publishes `f <offset> <epoch>\n<frame>`.
 */
export const APPEND = `${EPOCH}${RESTARTED}
if fresh then redis.call('DEL', KEYS[2]) end
local n = redis.call('HINCRBY', KEYS[1], 'n', 1)
redis.call('XADD', KEYS[2], 'MAXLEN', ARGV[4], n .. '-0', 'f', ARGV[7])
if ARGV[2] ~= '0' then
  redis.call('PEXPIRE', KEYS[1], ARGV[2])
  redis.call('PEXPIRE', KEYS[2], ARGV[2])
end
redis.call(ARGV[5], ARGV[6], 'f ' .. n .. ' ' .. e .. '\\n' .. ARGV[7])
return {n, e}
`

/** KEYS: meta. ARGV: new epoch, ttl ms, durable. Returns {offset, epoch}. */
export const TIP = `${EPOCH}
return {tonumber(redis.call('HGET', KEYS[1], 'n') or '0'), e}
`

/**
 * Sets `frames` to what the history (KEYS[2]) has after `from` (offset) of epoch `fromEpoch`, or
 * false when it does not cover them all (another epoch, ahead of the tip, trimmed, or entries
 * missing): a gap is never answered as if it were none. After EPOCH.
 */
const READ = `
local n = tonumber(redis.call('HGET', KEYS[1], 'n') or '0')
local function read(from, fromEpoch)
  if e ~= fromEpoch or from > n then return false end
  if from == n then return {} end
  local entries = redis.call('XRANGE', KEYS[2], (from + 1) .. '-0', '+')
  if #entries ~= n - from then return false end
  local out = {}
  for i = 1, #entries do out[i] = entries[i][2][2] end
  return out
end
`

/** A user's rooms, each with its join position (`<offset> <epoch>`) or false. */
const JOINED_OF = `
local function joinedOf(roomsKey, joinsKey)
  local rooms = redis.call('SMEMBERS', roomsKey)
  local out = {}
  for i = 1, #rooms do out[i] = {rooms[i], redis.call('HGET', joinsKey, rooms[i]) or false} end
  return out
end
`

/** KEYS: meta, history. ARGV: new epoch, ttl ms, durable, from offset, from epoch. Returns the frames after `from`, or nil (READ). */
export const SINCE = `${EPOCH}${READ}
return read(tonumber(ARGV[4]), ARGV[5])
`

/**
 * What a login reads of its user in one step. KEYS: the user's stream's meta and history, the
 * user's rooms, the user's join positions. ARGV: new epoch, ttl ms, durable, from offset ('' for
 * none), from epoch. Returns {rooms (as JOINED), the stream's offset, its epoch, the frames after
 * `from` (nil when not covered, or when no `from`)}.
 */
export const LOGIN = `${EPOCH}${READ}${JOINED_OF}
local joined = joinedOf(KEYS[3], KEYS[4])
local frames = false
if ARGV[4] ~= '' then frames = read(tonumber(ARGV[4]), ARGV[5]) end
return {joined, n, e, frames}
`

/**
 * A join's first half, in the room's slot. KEYS: the room stream's meta, the room's members.
 * ARGV: new epoch, ttl ms, durable, user. Returns the room stream's position: the user reads the
 * room from there.
 */
export const JOIN_ROOM = `${EPOCH}
redis.call('SADD', KEYS[2], ARGV[4])
return {tonumber(redis.call('HGET', KEYS[1], 'n') or '0'), e}
`

/**
 * A join's second half, in the user's slot. KEYS: the user's rooms, the user's join positions (a
 * hash: room -> `<offset> <epoch>`). ARGV: room, position, publish command, the user's channel,
 * user (JSON). A second join keeps the first one's position; the nodes where the user is connected
 * hear `j [user, room, offset, epoch]` with the position kept.
 */
export const JOIN_USER = `
redis.call('HSETNX', KEYS[2], ARGV[1], ARGV[2])
redis.call('SADD', KEYS[1], ARGV[1])
local at = redis.call('HGET', KEYS[2], ARGV[1])
local space = string.find(at, ' ', 1, true)
redis.call(ARGV[3], ARGV[4], 'j [' .. ARGV[5] .. ',' .. cjson.encode(ARGV[1]) .. ',' .. string.sub(at, 1, space - 1) .. ',' .. cjson.encode(string.sub(at, space + 1)) .. ']')
`

/**
 * A leave's first half, in the user's slot (the room's members set follows). KEYS: the user's
 * rooms, the user's join positions. ARGV: room, publish command, the user's channel, message.
 */
export const LEAVE_USER = `
redis.call('SREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call(ARGV[2], ARGV[3], ARGV[4])
`

/** KEYS: the user's rooms, the user's join positions. Returns {room, position or false} for each room, in one read. */
export const JOINED = `${JOINED_OF}
return joinedOf(KEYS[1], KEYS[2])
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
