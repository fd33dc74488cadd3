-- KEYS[1]: the proxy index. ARGV: prefix, proxy id, report JSON ({origin id: count}), TTL
-- ms. Replaces the proxy's report; it counts until the TTL passes.
redis.call('SET', ARGV[1] .. 'conns:' .. ARGV[2], ARGV[3], 'PX', ARGV[4])
redis.call('SADD', KEYS[1], ARGV[2])
return 1
