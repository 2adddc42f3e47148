//! tether: sign-in sessions and a WebSocket that is exactly as trustworthy as
//! the login session. The binary (`main.rs`) and the integration tests both
//! start the server through [`startup::Application`].

pub mod admin;
pub mod auth;
pub mod cli;
pub mod config;
pub mod db;
pub mod domain;
pub mod error;
pub mod health;
pub mod messages;
pub mod sessions;
pub mod startup;
pub mod web_app;
pub mod ws;
