-- The audit trail: security events (sign-ins, sign-outs, revocations, user
-- changes, refused sockets), written in batches by src/audit/writer.rs and
-- pruned after TETHER_AUDIT_RETENTION_DAYS. Ids only grow, so they order
-- events that share a timestamp. Times are UTC; ids of users are the
-- users table's (no foreign key: the trail outlives a deleted user).
CREATE TABLE audit_events (
    id                INTEGER PRIMARY KEY AUTOINCREMENT,
    at                TIMESTAMP NOT NULL,
    -- login.success, session.revoked, … (src/audit/action.rs)
    action            TEXT NOT NULL,
    -- user, cli, system or anonymous; a user actor has a user id and the
    -- public id of the session they acted through
    actor             TEXT NOT NULL,
    actor_user_id     TEXT,
    actor_session_id  TEXT,
    target_user_id    TEXT,
    target_session_id TEXT,
    client_ip         TEXT,
    user_agent        TEXT,
    -- a JSON object
    details           TEXT NOT NULL
);

-- The listing is newest first, filtered by user, action or time.
CREATE INDEX audit_events_at ON audit_events (at);
CREATE INDEX audit_events_action ON audit_events (action, at);
CREATE INDEX audit_events_target_user ON audit_events (target_user_id, at);
CREATE INDEX audit_events_actor_user ON audit_events (actor_user_id, at);

INSERT INTO permissions (name, description) VALUES
    ('admin:audit', 'Read the audit trail');
INSERT INTO role_permissions (role, permission) VALUES
    ('admin', 'admin:audit');
