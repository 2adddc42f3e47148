-- Deletes every session of a user, and the user's index, in one atomic step,
-- so a session created concurrently is either deleted or indexed afresh.
-- Each deleted session leaves a tombstone saying why (see delete.lua).
-- KEYS[1]: {prefix}user:{uid}:sessions
-- KEYS[2]: {prefix}sessions
-- ARGV: prefix, uid, reason, tombstone_ttl (ms)
-- Returns the sids whose session existed.
local deleted = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'session:' .. sid
  local uid = redis.call('HGET', key, 'uid')
  if uid == ARGV[2] then
    redis.call('SET', ARGV[1] .. 'ended:' .. sid, ARGV[3], 'PX', ARGV[4])
    redis.call('DEL', key)
    table.insert(deleted, sid)
  end
  -- Gone already, or just deleted: either way out of the global index. (A
  -- hash with another uid cannot come from this store; leave it alone.)
  if not uid or uid == ARGV[2] then
    redis.call('ZREM', KEYS[2], sid)
  end
end
redis.call('DEL', KEYS[1])
return deleted
