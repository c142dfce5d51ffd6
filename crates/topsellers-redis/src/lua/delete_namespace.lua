-- delete_namespace: unlinks every key of the namespace (UNLINK frees big values off the main thread).
-- Partitions are those below the binding's count, and any with a results mark.
local count = tonumber(redis.call('HGET', KEYS[1], 'partitions') or '0')
for _, field in ipairs(redis.call('HKEYS', KEYS[2])) do
  local p = tonumber(field)
  if p and p + 1 > count then
    count = p + 1
  end
end
local removed = redis.call('UNLINK', KEYS[1], KEYS[2])
for p = 0, count - 1 do
  removed = removed + redis.call('UNLINK', ARGV[1] .. ':partition:' .. p, ARGV[1] .. ':checkpoint:' .. p,
    ARGV[1] .. ':results:' .. p, ARGV[1] .. ':incoming-checkpoint:' .. p, ARGV[1] .. ':incoming-results:' .. p)
end
return { 'ok', tostring(removed) }
