-- save_checkpoint: ARGV[4..7] as in save_results, then ARGV[8] the checkpoint's next offset and ARGV[9]
-- the state's checksum; the state waits in KEYS[6], the snapshot in KEYS[7]. Checkpoint and results are
-- written together or not at all.
local function refusal()
  local refused = fenced()
  if refused then
    return refused
  end
  local stored = redis.call('HGET', KEYS[3], 'checkpoint_offset')
  if stored and cmp(ARGV[8], stored) < 0 then
    return { 'checkpoint_behind', stored }
  end
  return results_refused(ARGV[5], ARGV[6]) or not_staged(KEYS[6]) or not_staged(KEYS[7])
end
local refused = refusal()
if refused then
  redis.call('UNLINK', KEYS[6], KEYS[7])
  return refused
end
local now = now_ms()
redis.call('RENAME', KEYS[6], KEYS[4])
redis.call('HSET', KEYS[3], 'checkpoint_offset', ARGV[8], 'checkpoint_xxh3', ARGV[9],
  'checkpoint_saved_at_ms', now)
put_results(now, ARGV[5], ARGV[6], ARGV[7])
keep_alive(now)
return { 'ok' }
