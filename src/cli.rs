//! The command line: `serve` (default), `migrate`, and user management. The
//! commands use the same configuration as the server and work while it runs:
//! changes go through the same service functions and reach live sockets.

use std::io::{IsTerminal as _, Read as _};

use clap::{Parser, Subcommand};

use crate::{
    audit::{query, Action, Actor, Audit, AuditEvent, RevokedBy},
    config::Config,
    db::Db,
    domain::EndReason,
    domain::{Password, RoleName, Username},
    startup::{open_sessions, open_user_store},
    users,
};

#[derive(Debug, Parser)]
#[command(
    name = "tether",
    version,
    about = "Sessions and a WebSocket as trustworthy as the login"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Option<Command>,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (the default).
    Serve,
    /// Apply pending database migrations and exit.
    Migrate,
    /// Manage users.
    #[command(subcommand)]
    Users(UsersCommand),
    /// List and end sessions (needs REDIS_URL: the CLI reads the shared store).
    #[command(subcommand)]
    Sessions(SessionsCommand),
    /// Read the audit trail.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// List audit events, newest first.
    List {
        /// Only events where this user is the actor or the target.
        #[arg(long)]
        user: Option<String>,
        /// Only this action (login.success, session.revoked, …).
        #[arg(long)]
        action: Option<String>,
        /// Only events since this time: RFC 3339, a date (YYYY-MM-DD) or a
        /// span back from now (30m, 12h, 7d).
        #[arg(long)]
        since: Option<String>,
        /// At most this many events.
        #[arg(long, default_value_t = 100)]
        limit: usize,
    },
}

#[derive(Debug, Subcommand)]
pub enum SessionsCommand {
    /// List live sessions, newest first.
    List {
        /// Only this user's sessions.
        #[arg(long)]
        user: Option<String>,
    },
    /// End one session (by its public id), or every session of a user.
    Revoke {
        /// The session's public id, as listed.
        #[arg(required_unless_present = "user", conflicts_with = "user")]
        id: Option<String>,
        /// End every session of this user instead.
        #[arg(long)]
        user: Option<String>,
    },
}

#[derive(Debug, Subcommand)]
pub enum UsersCommand {
    /// Create a user.
    Add {
        name: String,
        /// Role to grant (repeatable).
        #[arg(long = "role", required = true)]
        roles: Vec<String>,
        /// Read the password from standard input instead of prompting.
        #[arg(long)]
        password_stdin: bool,
    },
    /// List users with their roles.
    List,
    /// Replace a user's roles.
    SetRoles {
        name: String,
        #[arg(required = true)]
        roles: Vec<String>,
    },
    /// Disable a user and end all their sessions.
    Disable { name: String },
}

fn parse_roles(raw: &[String]) -> anyhow::Result<Vec<RoleName>> {
    raw.iter()
        .map(|r| RoleName::parse(r).map_err(|e| anyhow::anyhow!(e)))
        .collect()
}

fn parse_name(raw: &str) -> anyhow::Result<Username> {
    Username::parse(raw).map_err(|e| anyhow::anyhow!(e))
}

fn read_password(from_stdin: bool) -> anyhow::Result<Password> {
    let raw = if from_stdin {
        let mut buf = String::new();
        std::io::stdin().read_to_string(&mut buf)?;
        buf.trim_end_matches(['\r', '\n']).to_owned()
    } else {
        if !std::io::stdin().is_terminal() {
            anyhow::bail!("no terminal to prompt for the password; use --password-stdin");
        }
        let first = rpassword::prompt_password("Password: ")?;
        let again = rpassword::prompt_password("Repeat password: ")?;
        if first != again {
            anyhow::bail!("the passwords do not match");
        }
        first
    };
    Password::parse_new(raw).map_err(|e| anyhow::anyhow!(e))
}

/// Runs a non-server command.
pub async fn run(command: Command, config: Config) -> anyhow::Result<()> {
    match command {
        Command::Serve => unreachable!("serve is handled by main"),
        Command::Migrate => {
            open_user_store(&config).await?;
            println!("migrations are up to date");
        }
        Command::Users(cmd) => run_users(cmd, config).await?,
        Command::Sessions(cmd) => run_sessions(cmd, config).await?,
        Command::Audit(cmd) => run_audit(cmd, config).await?,
    }
    Ok(())
}

/// An audit event of `action` by the command line.
fn by_cli(action: Action) -> AuditEvent {
    AuditEvent::new(action, Actor::Cli)
}

async fn run_sessions(cmd: SessionsCommand, config: Config) -> anyhow::Result<()> {
    if config.redis.is_none() {
        anyhow::bail!(
            "REDIS_URL is unset: sessions live in the server's memory, out of the CLI's reach; \
             use the admin API (/api/admin/sessions) instead"
        );
    }
    let db = open_user_store(&config).await?;
    let sessions = open_sessions(&config).await?;
    let audit = Audit::start_writer_only(db.clone());
    let user_id = |name: Option<String>| user_id_of(&db, name);
    match cmd {
        SessionsCommand::List { user } => {
            let user_id = user_id(user).await?;
            let names = usernames(&db).await?;
            println!(
                "{:<32}  {:<16}  {:<20}  {:<20}  {:<20}  {:<15}  {:>7}  AGENT",
                "ID", "USER", "CREATED", "LAST SEEN", "EXPIRES", "IP", "SOCKETS"
            );
            let mut offset = 0;
            loop {
                let (total, page) = sessions.list_page(user_id, offset, 200).await?;
                for s in &page {
                    let user = s
                        .user_id
                        .and_then(|id| names.get(&id))
                        .map_or("-", String::as_str);
                    println!(
                        "{:<32}  {:<16}  {:<20}  {:<20}  {:<20}  {:<15}  {:>7}  {}",
                        s.id,
                        user,
                        s.created_at,
                        s.last_seen_at,
                        s.expires_at,
                        s.client_ip.as_deref().unwrap_or("-"),
                        s.sockets,
                        s.user_agent.as_deref().unwrap_or("-")
                    );
                }
                offset += page.len();
                if page.is_empty() || offset >= total {
                    break;
                }
            }
        }
        SessionsCommand::Revoke { id: Some(id), .. } => {
            let owner = sessions.load(&id).await?.and_then(|s| s.user_id);
            if !sessions.revoke(&id, EndReason::Admin).await? {
                anyhow::bail!("no such session: {id}");
            }
            audit_revoked(&audit, owner, std::slice::from_ref(&id));
            println!("session {id} ended");
        }
        SessionsCommand::Revoke { user, .. } => {
            let name = user.clone().unwrap_or_default();
            let Some(user_id) = user_id(user).await? else {
                anyhow::bail!("give a session id or --user NAME");
            };
            let ended = sessions
                .revoke_user_listed(user_id, EndReason::Admin)
                .await?;
            audit_revoked(&audit, Some(user_id), &ended);
            println!("{} session(s) of {name} ended", ended.len());
        }
    }
    audit.flush().await;
    Ok(())
}

fn audit_revoked(audit: &Audit, owner: Option<uuid::Uuid>, sids: &[String]) {
    for sid in sids {
        audit.record(
            AuditEvent::session_revoked(Actor::Cli, sid, EndReason::Admin, RevokedBy::Cli)
                .owned_by(owner),
        );
    }
}

async fn run_users(cmd: UsersCommand, config: Config) -> anyhow::Result<()> {
    // Validate arguments before touching anything.
    let db = open_user_store(&config).await?;
    let audit = Audit::start_writer_only(db.clone());
    match cmd {
        UsersCommand::Add {
            name,
            roles,
            password_stdin,
        } => {
            let (name, roles) = (parse_name(&name)?, parse_roles(&roles)?);
            let password = read_password(password_stdin)?;
            let user = users::add_user(&db, &name, password, &roles).await?;
            let event = by_cli(Action::UserCreated)
                .target_user(user.id)
                .detail("username", &user.username)
                .detail("roles", &user.roles);
            audit.record(event);
            println!(
                "created {} ({}) roles={}",
                user.username,
                user.id,
                user.roles.join(",")
            );
        }
        UsersCommand::List => {
            let users = db.list_users().await?;
            let ids: Vec<_> = users.iter().map(|u| u.id).collect();
            let mut linked = db.linked_identities(&ids).await?;
            println!(
                "{:<36}  {:<24}  {:<8}  {:<24}  IDENTITIES",
                "ID", "USERNAME", "STATUS", "ROLES"
            );
            for u in users {
                let status = if u.disabled { "disabled" } else { "active" };
                // PROVIDER:SUB for each provider account linked to the user.
                let identities = linked
                    .remove(&u.id)
                    .unwrap_or_default()
                    .iter()
                    .map(|i| format!("{}:{}", i.provider, i.subject))
                    .collect::<Vec<_>>()
                    .join(",");
                println!(
                    "{:<36}  {:<24}  {:<8}  {:<24}  {}",
                    u.id,
                    u.username,
                    status,
                    u.roles.join(","),
                    if identities.is_empty() {
                        "-"
                    } else {
                        &identities
                    }
                );
            }
        }
        UsersCommand::SetRoles { name, roles } => {
            let (name, roles) = (parse_name(&name)?, parse_roles(&roles)?);
            let sessions = open_sessions(&config).await?;
            let before = db.find_user_by_username(&name).await?.map(|u| u.roles);
            let user = users::set_roles(&db, &sessions, &name, &roles).await?;
            let event = by_cli(Action::UserRolesChanged)
                .target_user(user.id)
                .detail("before", before)
                .detail("after", &user.roles);
            audit.record(event);
            println!("{} roles={}", user.username, user.roles.join(","));
        }
        UsersCommand::Disable { name } => {
            let name = parse_name(&name)?;
            let sessions = open_sessions(&config).await?;
            let user = users::disable(&db, &sessions, &name).await?;
            audit.record(by_cli(Action::UserDisabled).target_user(user.id));
            println!("{} disabled; their sessions and sockets end", user.username);
        }
    }
    audit.flush().await;
    Ok(())
}

async fn run_audit(cmd: AuditCommand, config: Config) -> anyhow::Result<()> {
    let AuditCommand::List {
        user,
        action,
        since,
        limit,
    } = cmd;
    let db = open_user_store(&config).await?;
    let user_id = user_id_of(&db, user).await?;
    let filter = query::filter(user_id, action.as_deref(), since.as_deref())?;
    let (total, entries) = db.audit_page(filter, 0, limit).await?;
    print_audit(&db, &entries).await?;
    if total as usize > entries.len() {
        println!(
            "({} of {total} shown; narrow the filter or raise --limit)",
            entries.len()
        );
    }
    Ok(())
}

/// The id of the user named `name`, if a name is given.
async fn user_id_of(db: &Db, name: Option<String>) -> anyhow::Result<Option<uuid::Uuid>> {
    let Some(name) = name else {
        return Ok(None);
    };
    let name = parse_name(&name)?;
    let user = db
        .find_user_by_username(&name)
        .await?
        .ok_or_else(|| anyhow::anyhow!("no such user: {name}"))?;
    Ok(Some(user.id))
}

/// Every user's name by id.
async fn usernames(db: &Db) -> anyhow::Result<std::collections::HashMap<uuid::Uuid, String>> {
    Ok(db
        .list_users()
        .await?
        .into_iter()
        .map(|u| (u.id, u.username))
        .collect())
}

async fn print_audit(db: &Db, entries: &[crate::db::StoredAuditEntry]) -> anyhow::Result<()> {
    let names = usernames(db).await?;
    let name = |id: Option<uuid::Uuid>| id.and_then(|id| names.get(&id).cloned());
    println!(
        "{:<20}  {:<18}  {:<20}  {:<20}  {:<32}  {:<15}  DETAILS",
        "AT", "ACTION", "ACTOR", "TARGET USER", "TARGET SESSION", "IP"
    );
    for stored in entries {
        let e = &stored.entry;
        let actor = match (&e.actor_user_id, name(e.actor_user_id)) {
            (_, Some(n)) => n,
            (Some(id), None) => id.to_string(),
            (None, None) => e.actor.clone(),
        };
        let target = name(e.target_user_id)
            .or(e.target_user_id.map(|id| id.to_string()))
            .unwrap_or_else(|| "-".into());
        println!(
            "{:<20}  {:<18}  {:<20}  {:<20}  {:<32}  {:<15}  {}",
            crate::time::rfc3339(e.at.timestamp_millis()),
            e.action,
            actor,
            target,
            e.target_session_id.as_deref().unwrap_or("-"),
            e.client_ip.as_deref().unwrap_or("-"),
            e.details
        );
    }
    Ok(())
}
