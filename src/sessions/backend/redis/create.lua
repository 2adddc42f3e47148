-- Stores a new session and indexes it under its user, in one atomic step.
-- KEYS[1]: {prefix}session:{sid}
-- KEYS[2]: {prefix}user:{uid}:sessions (absent for an anonymous session)
-- ARGV: state, uid, created, abs, now, idle_ttl, sid   (times in Unix ms)
-- Returns 1 when stored, 0 when the session was dead on arrival (abs <= now).
local abs = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local ttl = math.min(tonumber(ARGV[6]), abs - now)
redis.call('DEL', KEYS[1])
if ttl <= 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'uid', ARGV[2], 'created', ARGV[3],
  'abs', ARGV[4], 'seen', ARGV[5])
redis.call('PEXPIRE', KEYS[1], ttl)
if KEYS[2] then
  redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', ARGV[5])
  redis.call('ZADD', KEYS[2], ARGV[4], ARGV[7])
  -- The index lives exactly as long as its longest-lived session can.
  local last = redis.call('ZRANGE', KEYS[2], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[2], tonumber(last[2]) - now)
end
return 1
