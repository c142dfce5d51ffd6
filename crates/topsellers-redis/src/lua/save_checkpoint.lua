-- save_checkpoint: ARGV[4..8] as in save_results, then ARGV[9] the checkpoint's next offset, ARGV[10] the
-- state's checksum, ARGV[11] the state. Checkpoint and results are written together or not at all.
local refused = fenced()
if refused then
  return refused
end
local stored = redis.call('HGET', KEYS[3], 'checkpoint_offset')
if stored and cmp(ARGV[9], stored) < 0 then
  return { 'checkpoint_behind', stored }
end
refused = results_refused(ARGV[5], ARGV[6])
if refused then
  return refused
end
local now = now_ms()
redis.call('SET', KEYS[4], ARGV[11])
redis.call('HSET', KEYS[3], 'checkpoint_offset', ARGV[9], 'checkpoint_xxh3', ARGV[10],
  'checkpoint_saved_at_ms', now)
put_results(now, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
keep_alive(now)
return { 'ok' }
