-- KEYS[1]: the origin index (names the slot on a cluster). ARGV: prefix, placement TTL ms,
-- then stream names. Renews each existing placement and its entry in its origin's set.
local prefix, ttl = ARGV[1], tonumber(ARGV[2])
local expires = now_ms() + ttl
for i = 3, #ARGV do
  local url = prefix .. 'url:' .. ARGV[i]
  local id = redis.call('GET', url)
  if id then
    redis.call('PEXPIRE', url, ttl)
    local set = prefix .. 'streams:' .. id
    redis.call('ZADD', set, expires, ARGV[i])
    redis.call('PEXPIRE', set, ttl)
  end
end
return 1
