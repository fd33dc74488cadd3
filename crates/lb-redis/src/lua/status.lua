-- KEYS[1]: the origin index. ARGV: prefix.
-- Returns {now ms, then for each origin: id, record JSON, draining (0/1), streams placed,
-- down reason ('' when not marked down), connections summed over the proxies' reports}.
-- Index entries whose record expired are dropped on the way, and so are expired members
-- of the per-origin stream sets (their score is the placement's expiry time).
local prefix = ARGV[1]
local now = now_ms()
local out = {now}
local reports = connection_reports(prefix)
for _, id in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  local raw = redis.call('GET', prefix .. 'server:' .. id)
  if raw then
    local set = prefix .. 'streams:' .. id
    redis.call('ZREMRANGEBYSCORE', set, '-inf', now)
    out[#out + 1] = id
    out[#out + 1] = raw
    out[#out + 1] = redis.call('EXISTS', prefix .. 'drain:' .. id)
    out[#out + 1] = redis.call('ZCARD', set)
    -- An empty reason still holds the origin down: it must not read as "not down".
    local down = redis.call('GET', prefix .. 'down:' .. id)
    if down == '' then down = 'down' end
    out[#out + 1] = down or ''
    out[#out + 1] = connections_to(reports, id)
  else
    forget(prefix, KEYS[1], id)
  end
end
return out
