//! The one integration-test binary: every test starts the real application
//! (`tether::startup::Application`) on a random port, against real SQLite,
//! PostgreSQL and Redis, and talks to it over real HTTP and WebSocket.

mod helpers;
mod services;
mod test_db;
mod test_redis;

mod admin_guard_rails;
mod admin_users;
mod api_docs;
mod architecture;
mod audit;
mod auth;
mod browser;
mod cli;
mod cluster;
mod csrf;
mod failover;
mod hostile;
mod lifecycle;
mod lost_events;
mod metrics;
mod oidc;
mod public_url;
mod redis_cluster;
mod registered_routes;
mod revocation;
mod security_headers;
mod session_api;
mod session_store;
mod start_together;
mod startup_lock;
mod throttle;
mod topologies;
mod user_store;
mod usernames;
mod web;
mod ws;
