-- KEYS[1]: the origin index (names the slot on a cluster). ARGV: prefix, placement TTL ms,
-- tentative TTL ms, then triples (stream name, origin id of the proxy's live sessions,
-- '1' if one of them publishes or '0').
-- For each stream: a placement naming that origin is renewed (firm: the key and its entry
-- in the origin's set; tentative: the key alone, or made firm if a session publishes); a
-- live publisher confirms it (placement_ttl; until then it lives tentative_ttl); a
-- missing placement is created naming that origin (firm if a session publishes), only if
-- none exists, so that a Redis that restarted empty does not split a live stream; a
-- placement naming another origin is left alone. Returns the number of placements created.
local prefix = ARGV[1]
local placement_ttl = tonumber(ARGV[2])
-- Never longer than a confirmed placement's.
local tentative_ttl = math.min(tonumber(ARGV[3]), placement_ttl)
local now = now_ms()
local created = 0
for i = 4, #ARGV - 2, 3 do
  local stream, id, publishing = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1'
  local url = prefix .. 'url:' .. stream
  local current = redis.call('GET', url)
  local firm, ttl = false, placement_ttl
  if not current then
    -- NX although the script is atomic: the rule is "never overwrite", say so.
    if publishing then
      redis.call('SET', url, id, 'PX', placement_ttl, 'NX')
    else
      redis.call('SET', url, id, 'PX', tentative_ttl, 'NX')
      -- A set entry left from a lost placement would read as firm.
      redis.call('ZREM', prefix .. 'streams:' .. id, stream)
    end
    created = created + 1
    firm = publishing
  elseif current == id then
    -- A live publisher confirms a placement (placement_ttl); players renew what it is.
    firm = publishing or is_firm(prefix, id, stream, now)
    if not firm or (not publishing and redis.call('PTTL', url) <= tentative_ttl) then
      ttl = tentative_ttl
    end
    redis.call('PEXPIRE', url, ttl)
  end
  if firm then
    local set = prefix .. 'streams:' .. id
    redis.call('ZADD', set, now + ttl, stream)
    if redis.call('PTTL', set) < placement_ttl then redis.call('PEXPIRE', set, placement_ttl) end
  end
end
return created
