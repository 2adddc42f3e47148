-- Users linked to an OpenID Connect provider's account: (issuer, sub) is
-- the provider's stable name for the person, and the only thing a sign-in
-- through a provider is matched by (never the e-mail address alone).
-- `provider` is the configured id the link was made through (shown by
-- `tether users list`). A linked user created at first sign-in has an empty
-- password_hash: password sign-in refuses it.
CREATE TABLE user_identities (
    issuer     TEXT NOT NULL,
    subject    TEXT NOT NULL,
    user_id    TEXT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    provider   TEXT NOT NULL,
    created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
    PRIMARY KEY (issuer, subject)
);

CREATE INDEX user_identities_user ON user_identities (user_id);
