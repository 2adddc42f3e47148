//! Who a verified provider login is in tether: the user linked to (issuer,
//! `sub`), created at the first sign-in. Never matched by e-mail address:
//! an address can change hands or be unverified, an (issuer, `sub`) cannot.
//! With a roles claim configured, the user's roles follow it at every sign-in.

use uuid::Uuid;

use super::provider::{OidcProvider, VerifiedLogin};
use crate::{
    db::{DbError, LinkedIdentity},
    domain::{RoleName, Username},
    state::AppState,
    users::{self, UserError},
};

/// How many `name-2`, `name-3`, … are tried before giving up on a name.
const NAME_ATTEMPTS: u32 = 50;

/// The user `login` is, created if it is the first sign-in, with its roles
/// brought in line with the roles claim.
pub async fn user_for(
    state: &AppState,
    provider: &OidcProvider,
    login: &VerifiedLogin,
) -> Result<Uuid, UserError> {
    let issuer = &provider.config.issuer;
    let claimed = match &login.roles {
        Some(names) => Some(known_roles(state, names).await?),
        None => None,
    };
    if let Some(id) = state.db.find_linked_user(issuer, &login.subject).await? {
        if let Some(roles) = claimed {
            apply_roles(state, id, &roles).await?;
        }
        return Ok(id);
    }
    let roles = claimed.unwrap_or_else(|| provider.config.default_roles.clone());
    let base = base_username(login);
    for attempt in 1..=NAME_ATTEMPTS {
        let name = candidate(&base, attempt);
        let identity = LinkedIdentity {
            provider: provider.config.id.to_string(),
            issuer: issuer.clone(),
            subject: login.subject.clone(),
        };
        match state.db.create_linked_user(&name, &roles, identity).await {
            Ok(user) => {
                log::info!(
                    "event=user_created user_id={} username={name} provider={}",
                    user.id,
                    provider.config.id
                );
                return Ok(user.id);
            }
            Err(DbError::UsernameTaken) => continue,
            // A sign-in of the same person finished first: use its user.
            Err(DbError::IdentityTaken) => {
                if let Some(id) = state.db.find_linked_user(issuer, &login.subject).await? {
                    return Ok(id);
                }
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(UserError::Other(anyhow::anyhow!(
        "no free username from {base:?} after {NAME_ATTEMPTS} attempts"
    )))
}

/// The names the store knows, in the claim's order; others are ignored.
async fn known_roles(state: &AppState, names: &[String]) -> Result<Vec<RoleName>, UserError> {
    let known = state.db.role_names().await?;
    Ok(names
        .iter()
        .filter(|n| known.contains(n))
        .filter_map(|n| RoleName::parse(n).ok())
        .collect())
}

/// Sets the user's roles to `roles` if they differ (then every socket of
/// theirs gets `permissions.changed`). Taking `admin:users` from the last
/// administrator is refused as anywhere else: the sign-in goes on with the
/// roles the user has.
async fn apply_roles(state: &AppState, id: Uuid, roles: &[RoleName]) -> Result<(), UserError> {
    let mut wanted: Vec<&str> = roles.iter().map(RoleName::as_str).collect();
    wanted.sort_unstable();
    wanted.dedup();
    let current = state.db.find_user(id).await?;
    if current.is_some_and(|u| {
        u.roles
            .iter()
            .map(String::as_str)
            .eq(wanted.iter().copied())
    }) {
        return Ok(());
    }
    match users::set_roles_by_id(&state.db, &state.sessions, id, roles).await {
        Ok(_) => Ok(()),
        Err(UserError::Db(DbError::LastAdministrator)) => {
            log::warn!("event=oidc_roles_not_applied user_id={id} reason=last_administrator");
            Ok(())
        }
        Err(e) => Err(e),
    }
}

/// `preferred_username`, else the e-mail's local part, else `user`; cut to
/// the characters and length a username allows.
fn base_username(login: &VerifiedLogin) -> String {
    let raw = login
        .preferred_username
        .clone()
        .or_else(|| {
            login
                .email
                .as_ref()
                .and_then(|e| e.split('@').next().map(str::to_owned))
        })
        .unwrap_or_default();
    let cleaned: String = raw
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '-'
            }
        })
        .take(Username::MAX_LEN - 4)
        .collect();
    let cleaned = cleaned.trim_matches('-').to_owned();
    if cleaned.is_empty() {
        "user".into()
    } else {
        cleaned
    }
}

fn candidate(base: &str, attempt: u32) -> Username {
    let name = if attempt == 1 {
        base.to_owned()
    } else {
        format!("{base}-{attempt}")
    };
    Username::parse(&name).unwrap_or_else(|_| Username::parse("user").expect("a valid name"))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn login(preferred: Option<&str>, email: Option<&str>) -> VerifiedLogin {
        VerifiedLogin {
            subject: "s".into(),
            sid: None,
            preferred_username: preferred.map(str::to_owned),
            email: email.map(str::to_owned),
            roles: None,
        }
    }

    #[test]
    fn the_name_comes_from_preferred_username_then_email() {
        assert_eq!(
            base_username(&login(Some("Ann.Lee"), Some("x@y"))),
            "Ann.Lee"
        );
        assert_eq!(
            base_username(&login(None, Some("bob+1@corp.example"))),
            "bob-1"
        );
        assert_eq!(base_username(&login(Some("Émile Zola"), None)), "mile-Zola");
        assert_eq!(base_username(&login(None, None)), "user");
        assert_eq!(candidate("bob", 3).as_str(), "bob-3");
        assert!(base_username(&login(Some(&"a".repeat(200)), None)).len() <= 60);
    }
}
