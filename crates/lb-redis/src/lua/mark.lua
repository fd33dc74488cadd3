-- KEYS[1]: the origin's record. ARGV: prefix, origin id, duration in ms ('0': clear the
-- mark), reason. Returns 0 if the origin is unknown. The mark expires by itself; a later
-- one replaces it, reason and end alike.
local down = ARGV[1] .. 'down:' .. ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
local ms = tonumber(ARGV[3])
if ms and ms > 0 then
  redis.call('SET', down, ARGV[4], 'PX', ms)
else
  redis.call('DEL', down)
end
return 1
