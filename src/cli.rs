//! The command line: `serve` (default), `migrate`, and user management. The
//! commands use the same configuration as the server and work while it runs:
//! changes go through the same service functions and reach live sockets.

use std::io::{IsTerminal as _, Read as _};

use clap::{Parser, Subcommand};

use crate::{
    config::Config,
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
    }
    Ok(())
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
    let user_id = |name: Option<String>| {
        let db = db.clone();
        async move {
            let Some(name) = name else {
                return anyhow::Ok(None);
            };
            let name = parse_name(&name)?;
            let user = db
                .find_user_by_username(&name)
                .await?
                .ok_or_else(|| anyhow::anyhow!("no such user: {name}"))?;
            anyhow::Ok(Some(user.id))
        }
    };
    match cmd {
        SessionsCommand::List { user } => {
            let user_id = user_id(user).await?;
            let names: std::collections::HashMap<_, _> = db
                .list_users()
                .await?
                .into_iter()
                .map(|u| (u.id, u.username))
                .collect();
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
            if !sessions.revoke(&id, EndReason::Admin).await? {
                anyhow::bail!("no such session: {id}");
            }
            println!("session {id} ended");
        }
        SessionsCommand::Revoke { user, .. } => {
            let name = user.clone().unwrap_or_default();
            let Some(user_id) = user_id(user).await? else {
                anyhow::bail!("give a session id or --user NAME");
            };
            let ended = sessions.revoke_user(user_id, EndReason::Admin).await?;
            println!("{ended} session(s) of {name} ended");
        }
    }
    Ok(())
}

async fn run_users(cmd: UsersCommand, config: Config) -> anyhow::Result<()> {
    // Validate arguments before touching anything.
    let db = open_user_store(&config).await?;
    match cmd {
        UsersCommand::Add {
            name,
            roles,
            password_stdin,
        } => {
            let (name, roles) = (parse_name(&name)?, parse_roles(&roles)?);
            let password = read_password(password_stdin)?;
            let user = users::add_user(&db, &name, password, &roles).await?;
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
            let user = users::set_roles(&db, &sessions, &name, &roles).await?;
            println!("{} roles={}", user.username, user.roles.join(","));
        }
        UsersCommand::Disable { name } => {
            let name = parse_name(&name)?;
            let sessions = open_sessions(&config).await?;
            let user = users::disable(&db, &sessions, &name).await?;
            println!("{} disabled; their sessions and sockets end", user.username);
        }
    }
    Ok(())
}
