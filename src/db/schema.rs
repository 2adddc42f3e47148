//! Diesel table definitions, shared by both backends (see `diesel.toml`).
//!
//! Ids are `Text` rather than `Uuid` because SQLite has no UUID type and
//! `MultiConnection` only carries SQL types both backends support.

// Keep in step with migrations/{postgres,sqlite}.

diesel::table! {
    audit_events (id) {
        id -> BigInt,
        at -> Timestamp,
        action -> Text,
        actor -> Text,
        actor_user_id -> Nullable<Text>,
        actor_session_id -> Nullable<Text>,
        target_user_id -> Nullable<Text>,
        target_session_id -> Nullable<Text>,
        client_ip -> Nullable<Text>,
        user_agent -> Nullable<Text>,
        details -> Text,
    }
}

diesel::table! {
    permissions (name) {
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    role_permissions (role, permission) {
        role -> Text,
        permission -> Text,
    }
}

diesel::table! {
    roles (name) {
        name -> Text,
        description -> Nullable<Text>,
    }
}

diesel::table! {
    user_roles (user_id, role) {
        user_id -> Text,
        role -> Text,
    }
}

diesel::table! {
    user_identities (issuer, subject) {
        issuer -> Text,
        subject -> Text,
        user_id -> Text,
        provider -> Text,
        created_at -> Timestamp,
    }
}

diesel::table! {
    users (id) {
        id -> Text,
        username -> Text,
        password_hash -> Text,
        disabled -> Bool,
        created_at -> Timestamp,
        updated_at -> Timestamp,
    }
}

diesel::joinable!(role_permissions -> permissions (permission));
diesel::joinable!(role_permissions -> roles (role));
diesel::joinable!(user_roles -> roles (role));
diesel::joinable!(user_roles -> users (user_id));
diesel::joinable!(user_identities -> users (user_id));

diesel::allow_tables_to_appear_in_same_query!(
    audit_events,
    permissions,
    role_permissions,
    roles,
    user_identities,
    user_roles,
    users,
);
