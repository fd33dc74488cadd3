-- KEYS[1]: the stream's placement key. ARGV: prefix, stream name, origin id.
-- Deletes the placement if, and only if, it names that origin and is tentative (the stream
-- is not in the origin's set with a live score). Returns 1 if it was deleted, else 0.
local prefix, stream, id = ARGV[1], ARGV[2], ARGV[3]
if redis.call('GET', KEYS[1]) ~= id then
  return 0
end
if is_firm(prefix, id, stream, now_ms()) then
  return 0
end
redis.call('DEL', KEYS[1])
return 1
