-- Deletes a session and its entry in its user's index.
-- KEYS[1]: {prefix}session:{sid}
-- ARGV: prefix, sid
-- Returns 1 if the session existed, else 0.
local uid = redis.call('HGET', KEYS[1], 'uid')
local existed = redis.call('DEL', KEYS[1])
if uid and uid ~= '' then
  redis.call('ZREM', ARGV[1] .. 'user:' .. uid .. ':sessions', ARGV[2])
end
return existed
