-- Shared by every script (prepended to each). Keys are built as keys.rs builds them.

-- TIME before a write is refused by Redis 3.2 to 4 unless effects are replicated (the
-- default, and the only mode, from Redis 5 on, where this is a no-op).
if redis.replicate_commands then redis.replicate_commands() end

-- Redis's clock, not the proxy's: proxies with skewed clocks then agree on who is alive.
local function now_ms()
  local t = redis.call('TIME')
  return tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
end

-- An origin's record as stored (raw JSON) and decoded; a record this proxy cannot read
-- (another program's, a corrupt one) counts as no origin at all.
local function load_record(prefix, id)
  local raw = redis.call('GET', prefix .. 'server:' .. id)
  if not raw then return nil, nil end
  local ok, rec = pcall(cjson.decode, raw)
  if not ok or type(rec) ~= 'table' or type(rec.origin) ~= 'table' then return raw, nil end
  return raw, rec
end

-- The same rule as lb_core::is_alive_and_up: fresh heartbeat (or static), and no health
-- mark (`down:{id}`, which expires by itself) holding it down.
local function is_alive(prefix, id, rec, now, origin_ttl)
  if redis.call('EXISTS', prefix .. 'down:' .. id) == 1 then return false end
  if rec.origin.source == 'static' then return true end
  return type(rec.heartbeat_ms) == 'number' and now - rec.heartbeat_ms < origin_ttl
end

-- Every proxy's current connection report, decoded ({origin id = count}); members of the
-- proxy index whose report expired are dropped on the way. An unreadable report counts
-- as none.
local function connection_reports(prefix)
  local index = prefix .. 'proxies'
  local reports = {}
  for _, proxy in ipairs(redis.call('SMEMBERS', index)) do
    local raw = redis.call('GET', prefix .. 'conns:' .. proxy)
    if raw then
      local ok, counts = pcall(cjson.decode, raw)
      if ok and type(counts) == 'table' then reports[#reports + 1] = counts end
    else
      redis.call('SREM', index, proxy)
    end
  end
  return reports
end

-- Connections to one origin, summed over the proxies' reports.
local function connections_to(reports, id)
  local total = 0
  for _, counts in ipairs(reports) do
    local n = counts[id]
    if type(n) == 'number' and n > 0 then total = total + n end
  end
  return total
end

local function is_draining(prefix, id)
  return redis.call('EXISTS', prefix .. 'drain:' .. id) == 1
end

-- Drops an origin and what hangs on it; placements naming it are replaced at their next pick.
local function forget(prefix, index, id)
  redis.call('SREM', index, id)
  redis.call('DEL', prefix .. 'server:' .. id, prefix .. 'drain:' .. id, prefix .. 'streams:' .. id,
    prefix .. 'down:' .. id)
end

-- Whether a stream's placement on an origin is firm: the stream is in the origin's set with
-- a score (its expiry) still ahead. Tentative placements are a placement key alone.
local function is_firm(prefix, id, stream, now)
  local score = redis.call('ZSCORE', prefix .. 'streams:' .. id, stream)
  return score ~= false and score ~= nil and tonumber(score) > now
end
