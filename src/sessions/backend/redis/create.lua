-- Stores a new session's hash. Its index entries are written afterwards,
-- outside this script (on a Cluster they live in other hash slots): see
-- index.lua and `RedisBackend::create`.
-- KEYS[1]: {prefix}session:{<sid>}
-- ARGV: state, uid, created, abs, now, idle_ttl, ip, ua   (times in Unix ms)
-- Returns 1 when stored, 0 when the session was dead on arrival (abs <= now).
local abs = tonumber(ARGV[4])
local now = tonumber(ARGV[5])
local ttl = math.min(tonumber(ARGV[6]), abs - now)
redis.call('DEL', KEYS[1])
if ttl <= 0 then
  return 0
end
redis.call('HSET', KEYS[1], 'state', ARGV[1], 'uid', ARGV[2], 'created', ARGV[3],
  'abs', ARGV[4], 'seen', ARGV[5], 'exp', string.format('%d', now + ttl), 'ip', ARGV[7], 'ua', ARGV[8])
redis.call('PEXPIRE', KEYS[1], ttl)
return 1
