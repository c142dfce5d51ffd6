-- load_results (writes nothing): the mark, checksum and snapshot bytes of partition ARGV[3], read in one
-- step so that they belong to the same save. Reply: 'none', or 'ok' and the three.
local mark = redis.call('HGET', KEYS[2], ARGV[3])
if not mark then
  return { 'none' }
end
return { 'ok', mark, redis.call('HGET', KEYS[3], 'results_xxh3'), redis.call('GET', KEYS[5]) }
