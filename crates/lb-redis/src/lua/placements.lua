-- KEYS[1]: the origin index. ARGV: prefix, most set members to examine.
-- Returns {stream, origin id, ...} for the firm placements on known origins, read from the
-- per-origin sets and checked against the placement keys; it stops after examining the
-- given number of members, so a huge fleet cannot hold Redis in one call. Tentative
-- placements are in no set, hence never listed.
local prefix = ARGV[1]
local budget = tonumber(ARGV[2])
local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if budget <= 0 then break end
  local streams = redis.call('ZRANGEBYSCORE', prefix .. 'streams:' .. id, '(' .. now, '+inf',
    'LIMIT', 0, budget)
  budget = budget - #streams
  for _, stream in ipairs(streams) do
    if redis.call('GET', prefix .. 'url:' .. stream) == id then
      out[#out + 1] = stream
      out[#out + 1] = id
    end
  end
end
return out
