-- KEYS[1]: the origin's record. ARGV: prefix, origin id, '1' to drain or '0' to resume.
-- Returns 0 if the origin is unknown. The flag lives as long as the record does.
local drain = ARGV[1] .. 'drain:' .. ARGV[2]
if redis.call('EXISTS', KEYS[1]) == 0 then
  return 0
end
if ARGV[3] == '1' then
  local ttl = redis.call('PTTL', KEYS[1])
  if ttl > 0 then
    redis.call('SET', drain, '1', 'PX', ttl)
  else
    redis.call('SET', drain, '1')
  end
else
  redis.call('DEL', drain)
end
return 1
