//! `Permission` and `PermissionSet`: what a user may do.
//!
//! The set is a bitmask so the per-message check on the WebSocket is one AND,
//! with no allocation and no lookup.

use super::ParseError;

/// Every permission the server knows. Adding one is adding a variant here (the
/// exhaustive matches below make the compiler list every place to update) and
/// seeding it in the migrations.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Permission {
    ReadAdminMessages,
    ChatRead,
    ChatWrite,
    AdminUsers,
    AdminSessions,
    AdminAudit,
}

impl Permission {
    pub const ALL: [Permission; 6] = [
        Permission::ReadAdminMessages,
        Permission::ChatRead,
        Permission::ChatWrite,
        Permission::AdminUsers,
        Permission::AdminSessions,
        Permission::AdminAudit,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Permission::ReadAdminMessages => "read:admin-messages",
            Permission::ChatRead => "chat:read",
            Permission::ChatWrite => "chat:write",
            Permission::AdminUsers => "admin:users",
            Permission::AdminSessions => "admin:sessions",
            Permission::AdminAudit => "admin:audit",
        }
    }

    pub fn parse(raw: &str) -> Result<Self, ParseError> {
        Self::ALL
            .into_iter()
            .find(|p| p.as_str() == raw)
            .ok_or_else(|| ParseError(format!("unknown permission {raw:?}")))
    }

    fn bit(self) -> u32 {
        1 << (self as u32)
    }
}

impl std::fmt::Display for Permission {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

impl serde::Serialize for Permission {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.serialize_str(self.as_str())
    }
}

/// A set of permissions. Serialises as a sorted list of names.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub struct PermissionSet(u32);

impl PermissionSet {
    pub const EMPTY: PermissionSet = PermissionSet(0);

    pub fn contains(self, p: Permission) -> bool {
        self.0 & p.bit() != 0
    }

    pub fn insert(&mut self, p: Permission) {
        self.0 |= p.bit();
    }

    pub fn iter(self) -> impl Iterator<Item = Permission> {
        Permission::ALL
            .into_iter()
            .filter(move |p| self.contains(*p))
    }

    pub fn names(self) -> Vec<&'static str> {
        self.iter().map(Permission::as_str).collect()
    }
}

impl FromIterator<Permission> for PermissionSet {
    fn from_iter<I: IntoIterator<Item = Permission>>(iter: I) -> Self {
        let mut set = PermissionSet::EMPTY;
        for p in iter {
            set.insert(p);
        }
        set
    }
}

impl serde::Serialize for PermissionSet {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_seq(self.iter())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_sets_contain_what_was_inserted() {
        for p in Permission::ALL {
            assert_eq!(Permission::parse(p.as_str()), Ok(p));
        }
        assert!(Permission::parse("chat:delete").is_err());
        let set: PermissionSet = [Permission::ChatRead, Permission::AdminUsers]
            .into_iter()
            .collect();
        assert!(set.contains(Permission::ChatRead));
        assert!(!set.contains(Permission::ChatWrite));
        assert_eq!(set.names(), vec!["chat:read", "admin:users"]);
    }
}
