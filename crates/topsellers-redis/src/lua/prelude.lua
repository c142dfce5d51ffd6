-- Shared by every script of the Redis partition store: put in front of each (see src/scripts.rs).
--
-- KEYS are the same seven in every script, all of one namespace and so under one hash tag, one slot:
--   KEYS[1] <tag>:binding          KEYS[2] <tag>:marks
--   KEYS[3] <tag>:partition:<p>    KEYS[4] <tag>:checkpoint:<p>    KEYS[5] <tag>:results:<p>
--   KEYS[6] <tag>:incoming-checkpoint:<p>    KEYS[7] <tag>:incoming-results:<p>
-- ARGV[1] is <tag>, ARGV[2] the key TTL in ms ('0': keys never expire), ARGV[3] the partition <p>; the rest
-- depends on the script.
--
-- Big values never pass through Lua: a Lua string is a copy, and a script holds up every other client
-- of the server while it runs (20 MB took 40 to 85 ms through a script, 2 ms for a plain SET here). A
-- save therefore sends the checkpoint state and the snapshot with plain SETs to the incoming keys, and
-- its script, queued behind them in the same MULTI/EXEC, checks and then RENAMEs them into place (or
-- deletes them on a refusal); a claim's GET of the checkpoint is queued right after its script. Integers travel as canonical decimal strings (what Rust prints: no leading zeros,
-- '-' for negatives) and are compared as strings by cmp below, never through tonumber(): Lua numbers are
-- doubles, inexact above 2^53. Only partition numbers (u32) and millisecond times are ever made numbers.
--
-- Every script reads and checks everything before its first write, so a refusal changes nothing.
-- Replies are arrays whose first element says what happened ('ok' or why not); Rust turns them into
-- StoreErrors.

-- -1, 0 or 1 as the integer a is below, equal to or above b.
local function cmp(a, b)
  if a == b then
    return 0
  end
  local neg_a, neg_b = a:byte(1) == 45, b:byte(1) == 45
  if neg_a ~= neg_b then
    return neg_a and -1 or 1
  end
  local r = 0
  if #a ~= #b then
    r = #a < #b and -1 or 1
  else
    for i = 1, #a do
      local x, y = a:byte(i), b:byte(i)
      if x ~= y then
        r = x < y and -1 or 1
        break
      end
    end
  end
  if neg_a then
    return -r
  end
  return r
end

-- The server's clock in ms, as a string. Scripts are replicated by their effects (the default since
-- Redis 5), so reading the clock before writing is allowed.
local function now_ms()
  local t = redis.call('TIME')
  return t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
end

-- Keeps the namespace alive for ARGV[2] ms more, or for ever with '0'.
--
-- The namespace expires as a whole, never in parts: a quiet partition's checkpoint must not vanish while
-- the rest lives on (its next owner would start it from nothing, and its items would leave the merged
-- lists). So every key of the namespace, whichever partition is written, gets the TTL again at least
-- every TTL/64 (about 2.6 hours for 7 days), and always when the TTL setting changed; in between, only the
-- keys of the partition this call wrote, which keeps a write O(1) in the partition count. The other
-- partitions' keys are named here rather than passed in KEYS: they carry the same hash tag, so they live
-- in the same slot, on the same node, and a script may touch them in Redis Cluster too.
local function keep_alive(now)
  local ttl = ARGV[2]
  local function apply(key)
    if ttl == '0' then
      redis.call('PERSIST', key)
    else
      redis.call('PEXPIRE', key, ttl)
    end
  end
  local b = redis.call('HMGET', KEYS[1], 'partitions', 'ttl_ms', 'ttl_refreshed_at_ms')
  local full = b[2] ~= ttl or not b[3]
    or (ttl ~= '0' and tonumber(now) - tonumber(b[3]) >= tonumber(ttl) / 64)
  if full then
    redis.call('HSET', KEYS[1], 'ttl_ms', ttl, 'ttl_refreshed_at_ms', now)
    for p = 0, tonumber(b[1] or '0') - 1 do
      apply(ARGV[1] .. ':partition:' .. p)
      apply(ARGV[1] .. ':checkpoint:' .. p)
      apply(ARGV[1] .. ':results:' .. p)
    end
  else
    -- The keys just written need it again even between full refreshes: RENAME brings along the incoming
    -- key's own short TTL.
    apply(KEYS[3])
    apply(KEYS[4])
    apply(KEYS[5])
  end
  apply(KEYS[1])
  apply(KEYS[2])
end

-- The epoch check of every save: nil when ARGV[4] is the partition's current epoch, else the refusal.
-- A partition never claimed has no epoch, reported as '0', which no claim hands out.
local function fenced()
  local epoch = redis.call('HGET', KEYS[3], 'epoch')
  if epoch ~= ARGV[4] then
    return { 'fenced', epoch or '0' }
  end
  return nil
end

-- The results rule (ResultsMark::may_be_replaced_by): nil when results at (version, offset) may replace
-- the stored ones, i.e. they move forward (higher version, offset not lower) or repeat them exactly.
local function results_refused(version, offset)
  local stored = redis.call('HGET', KEYS[2], ARGV[3])
  if not stored then
    return nil
  end
  local sv, so = stored:match('^(%-?%d+) (%-?%d+)$')
  if not sv then
    return { 'corrupt', 'results mark', stored }
  end
  local v, o = cmp(version, sv), cmp(offset, so)
  if (v > 0 and o >= 0) or (v == 0 and o == 0) then
    return nil
  end
  return { 'results_behind', sv, so }
end

-- nil when the incoming key `key` is there, else the refusal (it would be a bug: the same MULTI/EXEC
-- wrote it just before).
local function not_staged(key)
  if redis.call('EXISTS', key) == 0 then
    return { 'not_staged', key }
  end
  return nil
end

-- Writes the results of partition ARGV[3]: the snapshot waiting in KEYS[7], its checksum, and the mark
-- that result_versions lists.
local function put_results(now, version, offset, xxh3)
  redis.call('RENAME', KEYS[7], KEYS[5])
  redis.call('HSET', KEYS[3], 'results_xxh3', xxh3, 'results_saved_at_ms', now)
  redis.call('HSET', KEYS[2], ARGV[3], version .. ' ' .. offset)
end
