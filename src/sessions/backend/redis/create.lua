-- Stores a new session and indexes it, globally and under its user, in one
-- atomic step.
-- KEYS[1]: {prefix}session:{sid}
-- KEYS[2]: {prefix}sessions
-- KEYS[3]: {prefix}user:{uid}:sessions (absent for an anonymous session)
-- ARGV: state, uid, created, abs, now, idle_ttl, sid, ip, ua   (times in Unix ms)
-- Returns 1 when stored, 0 when the session was dead on arrival (abs <= now).
local abs = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local ttl = math.min(tonumber(ARGV[6]), abs - now)
redis.call('DEL', KEYS[1])
if ttl <= 0 then
  for i = 2, #KEYS do
    redis.call('ZREM', KEYS[i], ARGV[7])
  end
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'uid', ARGV[2], 'created', ARGV[3],
  'abs', ARGV[4], 'seen', ARGV[5], 'exp', string.format('%d', now + ttl), 'ip', ARGV[8], 'ua', ARGV[9])
redis.call('PEXPIRE', KEYS[1], ttl)
for i = 2, #KEYS do
  -- Scores are absolute deadlines: members past theirs are dead, drop them.
  redis.call('ZREMRANGEBYSCORE', KEYS[i], '-inf', ARGV[5])
  redis.call('ZADD', KEYS[i], ARGV[4], ARGV[7])
  -- An index lives exactly as long as its longest-lived session can.
  local last = redis.call('ZRANGE', KEYS[i], -1, -1, 'WITHSCORES')
  redis.call('PEXPIRE', KEYS[i], tonumber(last[2]) - now)
end
return 1
