-- Deletes every session of a user, and the user's index, in one atomic step,
-- so a session created concurrently is either deleted or indexed afresh.
-- KEYS[1]: {prefix}user:{uid}:sessions
-- ARGV: prefix, uid
-- Returns the sids whose session existed.
local deleted = {}
for _, sid in ipairs(redis.call('ZRANGE', KEYS[1], 0, -1)) do
  local key = ARGV[1] .. 'session:' .. sid
  if redis.call('HGET', key, 'uid') == ARGV[2] then
    redis.call('DEL', key)
    table.insert(deleted, sid)
  end
end
redis.call('DEL', KEYS[1])
return deleted
