//! Why a session ended, and the one rule that decides it when nobody said.

use serde::{Deserialize, Serialize};

/// Why a session ended; sent to its sockets in `session.revoked` and kept
/// in the store's tombstone for a while after a delete.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum EndReason {
    Logout,
    Expired,
    Admin,
    PasswordChanged,
    Disabled,
    Deleted,
}

/// How a session was seen to be gone, for [`EndReason::decide`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Disappearance {
    /// Redis reported the key expired, or the session was missing when its
    /// socket checked it at its own idle deadline.
    Expired,
    /// Redis reported the key deleted (`DEL` by tether or by an operator).
    Deleted,
    /// Found missing by the periodic sweep, with no deadline to go by. An
    /// expiry is normally noticed first (keyspace event or the socket's own
    /// deadline), so what the sweep finds is reported as deleted.
    FoundMissing,
}

impl EndReason {
    pub const ALL: [EndReason; 6] = [
        EndReason::Logout,
        EndReason::Expired,
        EndReason::Admin,
        EndReason::PasswordChanged,
        EndReason::Disabled,
        EndReason::Deleted,
    ];

    pub fn parse(raw: &str) -> Option<EndReason> {
        Self::ALL.into_iter().find(|r| r.as_str() == raw)
    }

    pub const fn as_str(self) -> &'static str {
        match self {
            EndReason::Logout => "logout",
            EndReason::Expired => "expired",
            EndReason::Admin => "admin",
            EndReason::PasswordChanged => "password_changed",
            EndReason::Disabled => "disabled",
            EndReason::Deleted => "deleted",
        }
    }

    /// Why a session that is gone ended: the reason whoever ended it wrote
    /// down (the store's tombstone), else what the way it vanished implies.
    /// Every path that finds a session gone (keyspace events, the sweep, a
    /// socket's deadline check) asks this one function.
    pub fn decide(tombstone: Option<EndReason>, seen: Disappearance) -> EndReason {
        tombstone.unwrap_or(match seen {
            Disappearance::Expired => EndReason::Expired,
            Disappearance::Deleted | Disappearance::FoundMissing => EndReason::Deleted,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_match_the_json() {
        for r in EndReason::ALL {
            assert_eq!(EndReason::parse(r.as_str()), Some(r));
            assert_eq!(serde_json::to_value(r).unwrap(), r.as_str());
        }
        assert_eq!(EndReason::parse("nope"), None);
    }

    #[test]
    fn a_tombstone_wins_over_how_the_session_vanished() {
        use Disappearance::*;
        assert_eq!(
            EndReason::decide(Some(EndReason::Admin), Expired),
            EndReason::Admin
        );
        assert_eq!(EndReason::decide(None, Expired), EndReason::Expired);
        assert_eq!(EndReason::decide(None, Deleted), EndReason::Deleted);
        assert_eq!(EndReason::decide(None, FoundMissing), EndReason::Deleted);
    }
}
