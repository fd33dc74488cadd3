-- KEYS[1]: the origin index. ARGV: prefix.
-- Returns {stream, origin id, ...} for every live placement on a known origin, read from
-- the per-origin sets and checked against the placement keys.
local prefix = ARGV[1]
local now = now_ms()
local out = {}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  for _, stream in ipairs(redis.call('ZRANGEBYSCORE', prefix .. 'streams:' .. id, '(' .. now, '+inf')) do
    if redis.call('GET', prefix .. 'url:' .. stream) == id then
      out[#out + 1] = stream
      out[#out + 1] = id
    end
  end
end
return out
