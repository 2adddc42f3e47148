-- Deletes a session and its index entries; if it existed, leaves a
-- tombstone saying why, so an instance that learns of the deletion from a
-- keyspace notification can tell the session's sockets the reason.
-- KEYS[1]: {prefix}session:{sid}
-- KEYS[2]: {prefix}sessions
-- KEYS[3]: {prefix}ended:{sid}
-- ARGV: prefix, sid, reason, tombstone_ttl (ms)
-- Returns 1 if the session existed, else 0.
local existed = redis.call('EXISTS', KEYS[1])
local uid = redis.call('HGET', KEYS[1], 'uid')
if existed == 1 then
  redis.call('SET', KEYS[3], ARGV[3], 'PX', ARGV[4])
  redis.call('DEL', KEYS[1])
end
redis.call('ZREM', KEYS[2], ARGV[2])
if uid and uid ~= '' then
  redis.call('ZREM', ARGV[1] .. 'user:' .. uid .. ':sessions', ARGV[2])
end
return existed
