-- Adds a session to an index (the global one, or its user's), after its
-- hash was stored: an index entry whose hash is missing is therefore a
-- leftover of a session that ended, never one about to appear, and a
-- listing may drop it (see `RedisBackend::create`).
-- KEYS[1]: {prefix}sessions, or {prefix}user:{<uid>}:sessions
-- ARGV: sid, abs, now   (times in Unix ms)
-- Scores are absolute deadlines: members past theirs are dead, drop them.
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', ARGV[3])
redis.call('ZADD', KEYS[1], ARGV[2], ARGV[1])
-- An index lives exactly as long as its longest-lived session can.
local last = redis.call('ZRANGE', KEYS[1], -1, -1, 'WITHSCORES')
redis.call('PEXPIRE', KEYS[1], tonumber(last[2]) - tonumber(ARGV[3]))
return 1
