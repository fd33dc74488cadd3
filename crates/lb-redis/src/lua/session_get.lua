-- KEYS[1]: a session key. ARGV: session TTL ms. Reads the session and renews it in one
-- round trip (GETEX does the same, but only from Redis 6.2 on).
local value = redis.call('GET', KEYS[1])
if value then
  redis.call('PEXPIRE', KEYS[1], ARGV[1])
end
return value
