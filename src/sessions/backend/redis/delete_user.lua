-- The first step of deleting every session of a user: takes the user's
-- index (and deletes it) in one atomic step. The caller then deletes each
-- listed session with delete.lua. A session indexed before this step is in
-- the list; one indexed after it is a session created after the revoke
-- began, in a fresh index, so the next revoke finds it: a session's hash is
-- stored before its index entry, so none can exist unlisted (see
-- `RedisBackend::create`).
-- KEYS[1]: {prefix}user:{<uid>}:sessions
-- Returns the sids the index held.
local sids = redis.call('ZRANGE', KEYS[1], 0, -1)
redis.call('DEL', KEYS[1])
return sids
