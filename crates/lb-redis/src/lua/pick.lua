-- KEYS[1]: the stream's placement key. ARGV: prefix, stream name, candidate origin id ('':
-- only look for an origin that keeps the stream), publish ('1') or play ('0'), origin TTL
-- ms, placement TTL ms, tentative TTL ms.
-- Returns {outcome, origin id, origin record JSON, id of the origin the stream left or '',
-- '1' if the placement it left was firm or '0'}:
--   kept     the placed origin keeps the stream (alive; not draining, unless this is a
--            play); the placement is renewed, and made firm by a publish
--   placed   the stream is now on the candidate
--   need     no origin keeps it and no candidate was given
--   refused  the candidate cannot take a new stream now (dead, marked down, draining,
--            at max_streams or max_connections): the
--            proxy's view of it is stale
-- Liveness, draining and capacity are decided here, on Redis's data and clock, so two
-- proxies racing for a stream agree whatever their caches say.
--
-- A publish places firmly: the placement key lives the placement TTL and the stream is a
-- member of its origin's set (`streams:{id}`), which is what counts against max_streams.
-- A play of a stream without a placement places tentatively: the key lives the tentative
-- TTL and the set is not touched, so plays of streams that do not exist reserve nothing.
local prefix, stream, candidate = ARGV[1], ARGV[2], ARGV[3]
local publish = ARGV[4] == '1'
local origin_ttl, placement_ttl = tonumber(ARGV[5]), tonumber(ARGV[6])
-- Never longer than a confirmed placement's.
local tentative_ttl = math.min(tonumber(ARGV[7]), placement_ttl)
local now = now_ms()

-- The per-origin set scores each stream by its placement's expiry, so counting what is
-- live needs no scan of the placement keys.
local function hold(id, ttl)
  local set = prefix .. 'streams:' .. id
  redis.call('ZADD', set, now + ttl, stream)
  if redis.call('PTTL', set) < placement_ttl then redis.call('PEXPIRE', set, placement_ttl) end
end

-- A placement a live publisher confirmed (touch.lua) lives placement_ttl; until then
-- every placement lives tentative_ttl, so one whose publisher the origin refused holds
-- its slot only that long. A confirmed placement is told by its remaining life.
local function confirmed()
  return redis.call('PTTL', KEYS[1]) > tentative_ttl
end

local current = redis.call('GET', KEYS[1])
if current then
  local raw, rec = load_record(prefix, current)
  if rec and is_alive(prefix, current, rec, now, origin_ttl)
    and not (publish and is_draining(prefix, current)) then
    if publish or is_firm(prefix, current, stream, now) then
      local ttl = tentative_ttl
      if confirmed() then ttl = placement_ttl end
      redis.call('PEXPIRE', KEYS[1], ttl)
      hold(current, ttl)
    else
      redis.call('PEXPIRE', KEYS[1], tentative_ttl)
    end
    return {'kept', current, raw, '', '0'}
  end
end
if candidate == '' then
  return {'need', '', '', '', '0'}
end

local raw, rec = load_record(prefix, candidate)
if not rec or not is_alive(prefix, candidate, rec, now, origin_ttl) or is_draining(prefix, candidate) then
  return {'refused', candidate, '', '', '0'}
end
local max = rec.origin.max_streams
if type(max) == 'number' then
  local placed = redis.call('ZCOUNT', prefix .. 'streams:' .. candidate, '(' .. now, '+inf')
  if placed >= max then
    return {'refused', candidate, '', '', '0'}
  end
end
local max_conns = rec.origin.max_connections
if type(max_conns) == 'number' then
  if connections_to(connection_reports(prefix), candidate) >= max_conns then
    return {'refused', candidate, '', '', '0'}
  end
end

local left, left_firm = '', '0'
if current then
  if is_firm(prefix, current, stream, now) then left_firm = '1' end
  redis.call('ZREM', prefix .. 'streams:' .. current, stream)
  if current ~= candidate then left = current end
end
if publish then
  redis.call('SET', KEYS[1], candidate, 'PX', tentative_ttl)
  hold(candidate, tentative_ttl)
else
  redis.call('SET', KEYS[1], candidate, 'PX', tentative_ttl)
  -- A set entry left from a lost placement would read as firm.
  redis.call('ZREM', prefix .. 'streams:' .. candidate, stream)
end
return {'placed', candidate, raw, left, left_firm}
