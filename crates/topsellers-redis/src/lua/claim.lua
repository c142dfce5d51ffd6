-- claim: takes partition ARGV[3]. Reply: 'ok', the new epoch, the checkpoint's offset and checksum (nil
-- without a checkpoint) and the results mark (nil without results). The state itself is read by the GET
-- queued right after this script in the same MULTI/EXEC.
local partitions = redis.call('HGET', KEYS[1], 'partitions')
if not partitions then
  return { 'not_bound' }
end
if tonumber(ARGV[3]) >= tonumber(partitions) then
  return { 'out_of_range', partitions }
end
local now = now_ms()
-- HINCRBY counts in exact 64-bit integers; the epoch is read back as a string for the same reason.
redis.call('HINCRBY', KEYS[3], 'epoch', 1)
redis.call('HSET', KEYS[3], 'claimed_at_ms', now)
local row = redis.call('HMGET', KEYS[3], 'epoch', 'checkpoint_offset', 'checkpoint_xxh3')
local mark = redis.call('HGET', KEYS[2], ARGV[3])
keep_alive(now)
return { 'ok', row[1], row[2], row[3], mark }
