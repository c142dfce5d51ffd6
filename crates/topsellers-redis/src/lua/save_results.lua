-- save_results: ARGV[4] epoch, ARGV[5] version, ARGV[6] next offset, ARGV[7] snapshot checksum; the
-- snapshot waits in KEYS[7].
local refused = fenced() or results_refused(ARGV[5], ARGV[6]) or not_staged(KEYS[7])
if refused then
  redis.call('UNLINK', KEYS[7])
  return refused
end
local now = now_ms()
put_results(now, ARGV[5], ARGV[6], ARGV[7])
keep_alive(now)
return { 'ok' }
