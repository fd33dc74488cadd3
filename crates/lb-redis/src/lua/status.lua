-- KEYS[1]: the origin index. ARGV: prefix.
-- Returns {now ms, then for each origin: id, record JSON, draining (0/1), streams placed}.
-- Index entries whose record expired are dropped on the way, and so are expired members
-- of the per-origin stream sets (their score is the placement's expiry time).
local prefix = ARGV[1]
local now = now_ms()
local out = {now}
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('GET', prefix .. 'server:' .. id)
  if raw then
    local set = prefix .. 'streams:' .. id
    redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    out[#out + 1] = id
    out[#out + 1] = raw
    out[#out + 1] = redis.call('EXISTS', prefix .. 'drain:' .. id)
    out[#out + 1] = redis.call('ZCARD', set)
  else
    forget(prefix, KEYS[1], id)
  end
end
return out
