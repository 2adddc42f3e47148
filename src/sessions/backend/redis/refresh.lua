-- Renews a session's idle TTL (clamped to its absolute deadline) and, when
-- ARGV[3] is given, replaces its state. Writes only if the session still
-- exists: a session deleted while a request was in flight stays deleted.
-- KEYS[1]: {prefix}session:{sid}
-- ARGV: now, idle_ttl, [state]   (times in Unix ms)
-- Returns the new expiry (ms), -1 when the session is gone, -2 when the
-- record has no readable absolute deadline.
if redis.call('EXISTS', KEYS[1]) == 0 then
  return -1
end
local abs = tonumber(redis.call('HGET', KEYS[1], 'abs'))
if not abs then
  return -2
end
local now = tonumber(ARGV[1])
local ttl = math.min(tonumber(ARGV[2]), abs - now)
if ttl <= 0 then
  redis.call('DEL', KEYS[1])
  return -1
end
if ARGV[3] then
  redis.call('HSET', KEYS[1], 'state', ARGV[3])
end
redis.call('HSET', KEYS[1], 'seen', ARGV[1], 'exp', string.format('%d', now + ttl))
redis.call('PEXPIRE', KEYS[1], ttl)
return now + ttl
