-- KEYS[1]: the origin index (names the slot on a cluster). ARGV: prefix, placement TTL ms,
-- tentative TTL ms, then triples (stream name, origin id of the proxy's live sessions,
-- '1' if one of them publishes or '0').
-- For each stream: a placement naming that origin is renewed (firm: the key and its entry
-- in the origin's set; tentative: the key alone, or made firm if a session publishes); a
-- missing placement is created naming that origin (firm if a session publishes), only if
-- none exists, so that a Redis that restarted empty does not split a live stream; a
-- placement naming another origin is left alone. Returns the number of placements created.
local prefix = ARGV[1]
local placement_ttl, tentative_ttl = tonumber(ARGV[2]), tonumber(ARGV[3])
local now = now_ms()
local created = 0
for i = 4, #ARGV - 2, 3 do
  local stream, id, publishing = ARGV[i], ARGV[i + 1], ARGV[i + 2] == '1'
  local url = prefix .. 'url:' .. stream
  local current = redis.call('GET', url)
  local firm = false
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
    firm = publishing or is_firm(prefix, id, stream, now)
    if firm then
      redis.call('PEXPIRE', url, placement_ttl)
    else
      redis.call('PEXPIRE', url, tentative_ttl)
    end
  end
  if firm then
    local set = prefix .. 'streams:' .. id
    redis.call('ZADD', set, now + placement_ttl, stream)
    redis.call('PEXPIRE', set, placement_ttl)
  end
end
return created
