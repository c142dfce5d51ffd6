-- save_results: ARGV[4] epoch, ARGV[5] version, ARGV[6] next offset, ARGV[7] snapshot checksum,
-- ARGV[8] snapshot bytes.
local refused = fenced() or results_refused(ARGV[5], ARGV[6])
if refused then
  return refused
end
local now = now_ms()
put_results(now, ARGV[5], ARGV[6], ARGV[7], ARGV[8])
keep_alive(now)
return { 'ok' }
