-- KEYS[1]: the stream's placement key. ARGV: prefix, stream name, candidate origin id ('':
-- only look for an origin that keeps the stream), publish ('1') or play ('0'), origin TTL
-- ms, placement TTL ms.
-- Returns {outcome, origin id, origin record JSON, id of the origin the stream left or ''}:
--   kept     the placed origin keeps the stream (alive; not draining, unless this is a
--            play); the placement is renewed
--   placed   the stream is now on the candidate
--   need     no origin keeps it and no candidate was given
--   refused  the candidate cannot take a new stream now (dead, marked down, draining,
--            at max_streams or max_connections): the
--            proxy's view of it is stale
-- Liveness, draining and capacity are decided here, on Redis's data and clock, so two
-- proxies racing for a stream agree whatever their caches say.
local prefix, stream, candidate = ARGV[1], ARGV[2], ARGV[3]
local publish = ARGV[4] == '1'
local origin_ttl, placement_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
local now = now_ms()

-- The per-origin set scores each stream by its placement's expiry, so counting what is
-- live needs no scan of the placement keys.
local function hold(id)
  local set = prefix .. 'streams:' .. id
  redis.call('ZADD', set, now + placement_ttl, stream)
  redis.call('PEXPIRE', set, placement_ttl)
end

local current = redis.call('GET', KEYS[1])
if current then
  local raw, rec = load_record(prefix, current)
  if rec and is_alive(prefix, current, rec, now, origin_ttl)
    and not (publish and is_draining(prefix, current)) then
    redis.call('PEXPIRE', KEYS[1], placement_ttl)
    hold(current)
    return {'kept', current, raw, ''}
  end
end
if candidate == '' then
  return {'need', '', '', ''}
end

local raw, rec = load_record(prefix, candidate)
if not rec or not is_alive(prefix, candidate, rec, now, origin_ttl) or is_draining(prefix, candidate) then
  return {'refused', candidate, '', ''}
end
local max = rec.origin.max_streams
if type(max) == 'number' then
  local placed = redis.call('ZCOUNT', prefix .. 'streams:' .. candidate, '(' .. now, '+inf')
  if placed >= max then
    return {'refused', candidate, '', ''}
  end
end
local max_conns = rec.origin.max_connections
if type(max_conns) == 'number' then
  if connections_to(connection_reports(prefix), candidate) >= max_conns then
    return {'refused', candidate, '', ''}
  end
end

redis.call('SET', KEYS[1], candidate, 'PX', placement_ttl)
local left = ''
if current and current ~= candidate then
  redis.call('ZREM', prefix .. 'streams:' .. current, stream)
  left = current
end
hold(candidate)
return {'placed', candidate, raw, left}
