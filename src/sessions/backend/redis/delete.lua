-- Deletes a session; if it existed, leaves a tombstone saying why, so an
-- instance that learns of the deletion from a keyspace notification can
-- tell the session's sockets the reason. Both keys share the sid's hash
-- slot. Index entries are removed by the caller, outside this script.
-- KEYS[1]: {prefix}session:{<sid>}
-- KEYS[2]: {prefix}ended:{<sid>}
-- ARGV: reason, tombstone_ttl (ms), [uid]: with a uid, only a session of
-- that user is deleted (a hash with another uid cannot come from this
-- store; it is left alone).
-- Returns {1 if the session was deleted else 0, its uid or ''}.
local uid = redis.call('HGET', KEYS[1], 'uid')
if not uid then
  return {0, ''}
end
if ARGV[3] and uid ~= ARGV[3] then
  return {0, uid}
end
redis.call('SET', KEYS[2], ARGV[1], 'PX', ARGV[2])
redis.call('DEL', KEYS[1])
return {1, uid}
