-- The user store: users, roles, permissions and who holds what.
-- Ids are TEXT holding lowercase hyphenated UUIDs on both backends (as
-- vaultwarden does): one binary serves PostgreSQL and SQLite through diesel's
-- MultiConnection, which only carries SQL types both backends share.
-- Timestamps are TIMESTAMP without zone and always UTC.

CREATE TABLE users (
    id            TEXT PRIMARY KEY NOT NULL,
    username      TEXT NOT NULL UNIQUE,
    -- argon2id PHC string
    password_hash TEXT NOT NULL,
    disabled      BOOLEAN NOT NULL DEFAULT FALSE,
    created_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    updated_at    TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP
);

CREATE TABLE roles (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT
);

CREATE TABLE permissions (
    name        TEXT PRIMARY KEY NOT NULL,
    description TEXT
);

CREATE TABLE role_permissions (
    role       TEXT NOT NULL REFERENCES roles (name) ON DELETE CASCADE,
    permission TEXT NOT NULL REFERENCES permissions (name) ON DELETE CASCADE,
    PRIMARY KEY (role, permission)
);

CREATE TABLE user_roles (
    user_id TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    role    TEXT NOT NULL REFERENCES roles (name),
    PRIMARY KEY (user_id, role)
);

-- "Who holds this role" without scanning the whole table.
CREATE INDEX user_roles_role ON user_roles (role);

-- Permissions are names the server knows (src/domain/permission.rs); roles
-- are named bundles of them. Adding a permission means a new migration here
-- and in the other backend's set.
INSERT INTO permissions (name, description) VALUES
    ('read:admin-messages', 'Read messages addressed to administrators'),
    ('chat:read', 'Read chat messages'),
    ('chat:write', 'Send chat messages'),
    ('admin:users', 'Create, disable and re-role users'),
    ('admin:sessions', 'List and revoke sessions');

INSERT INTO roles (name, description) VALUES
    ('admin', 'Everything'),
    ('user', 'Chat'),
    ('messages-admin', 'Reads messages addressed to administrators');

INSERT INTO role_permissions (role, permission)
    SELECT 'admin', name FROM permissions;
INSERT INTO role_permissions (role, permission) VALUES
    ('user', 'chat:read'),
    ('user', 'chat:write'),
    ('messages-admin', 'read:admin-messages');

