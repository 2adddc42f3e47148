//! tether: sign-in sessions and a WebSocket that is exactly as trustworthy as
//! the login session. The binary (`main.rs`) and the integration tests both
//! start the server through [`startup::Application`].
//!
//! Floors, lowest first (a module imports only from its own floor or below):
//! `time`, `domain`, `metrics` → `config`, `db`, `redis_link`, `events` → `audit` → `sessions` →
//! `auth` → `ws`, `stats` → `state` → the routes (`auth`, `admin`, `demo_messages`, `health`,
//! `ws::route`, `oidc::routes`) and the middleware beside them (`csrf`, `security_headers`,
//! `metrics_http`) → `startup` → `cli`. `oidc` spans two floors: its provider, store and
//! flow sit below `state`, its linking, logout and routes above it.

pub mod admin;
pub mod api_docs;
pub mod audit;
pub mod auth;
pub mod cli;
pub mod config;
pub mod csrf;
pub mod db;
pub mod demo_messages;
pub mod domain;
pub mod error;
pub mod error_docs;
pub mod events;
pub mod health;
pub mod metrics;
pub mod metrics_http;
pub mod oidc;
pub mod redis_link;
pub mod security_headers;
pub mod sessions;
pub mod startup;
pub mod state;
pub mod stats;
pub mod time;
pub mod users;
pub mod web_app;
pub mod ws;
