//! tether: sign-in sessions and a WebSocket that is exactly as trustworthy as
//! the login session. The binary (`main.rs`) and the integration tests both
//! start the server through [`startup::Application`].

pub mod config;
pub mod db;
pub mod domain;
pub mod sessions;
