-- bind: ARGV[4] partitions, ARGV[5] settings. Records the binding on the first call, checks it after.
local stored = redis.call('HMGET', KEYS[1], 'partitions', 'settings')
local now = now_ms()
if not stored[1] then
  redis.call('HSET', KEYS[1], 'partitions', ARGV[4], 'settings', ARGV[5], 'bound_at_ms', now)
elseif stored[1] ~= ARGV[4] then
  return { 'partitions_changed', stored[1] }
elseif stored[2] ~= ARGV[5] then
  return { 'settings_changed', stored[2] or '' }
end
keep_alive(now)
return { 'ok' }
