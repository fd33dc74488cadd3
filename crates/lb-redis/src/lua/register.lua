-- KEYS[1]: the origin index. ARGV: prefix, origin id, its `server`, origin JSON, record TTL
-- in ms ('0': no expiry, for static origins). Adds the origin or renews its heartbeat, and
-- drops any other process of the same `server` (a restart replaces the old one at once) as
-- well as index entries whose record has expired.
local prefix, id, server, origin, ttl = ARGV[1], ARGV[2], ARGV[3], ARGV[4], tonumber(ARGV[5])
for _, other in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if other ~= id then
    local raw, rec = load_record(prefix, other)
    if not raw or (rec and rec.origin.server == server) then
      forget(prefix, KEYS[1], other)
    end
  end
end
-- Built from TIME's own digits, so no float formatting can round the milliseconds.
local t = redis.call('TIME')
local heartbeat = t[1] .. string.format('%03d', math.floor(tonumber(t[2]) / 1000))
local record = '{"heartbeat_ms":' .. heartbeat .. ',"origin":' .. origin .. '}'
local key, drain = prefix .. 'server:' .. id, prefix .. 'drain:' .. id
if ttl > 0 then
  redis.call('SET', key, record, 'PX', ttl)
  redis.call('PEXPIRE', drain, ttl)
else
  redis.call('SET', key, record)
  redis.call('PERSIST', drain)
end
redis.call('SADD', KEYS[1], id)
return 1
