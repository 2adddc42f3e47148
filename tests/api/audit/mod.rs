//! The audit trail: every security event through the API and the CLI, with
//! its actor and target; the route's permission, paging and filters; a
//! session that vanishes inside Redis recorded once however many instances
//! see it; retention pruning.

mod actions;
mod cli;
mod listing;
mod system;

use std::time::Duration;

use reqwest::{header::COOKIE, Method, Response};
use serde_json::Value;
use uuid::Uuid;

use crate::helpers::{Browser, TestApp, PATIENCE};

/// `GET /api/admin/audit?{query}` as `who`: the events (newest first) and
/// the whole body.
async fn trail(app: &TestApp, who: &Browser, query: &str) -> (Vec<Value>, Value) {
    let res = who
        .get(&app.url(&format!("/api/admin/audit?{query}")))
        .await;
    assert_eq!(res.status(), 200, "audit listing answers 200");
    let body: Value = res.json().await.unwrap();
    let events = body["events"].as_array().cloned().unwrap_or_default();
    (events, body)
}

/// The events of `action`, newest first.
async fn of(app: &TestApp, admin: &Browser, action: &str) -> Vec<Value> {
    trail(app, admin, &format!("action={action}&per_page=200"))
        .await
        .0
}

/// Waits (up to `PATIENCE`) until `query` lists `count` events; returns them.
pub(crate) async fn eventually(
    app: &TestApp,
    admin: &Browser,
    query: &str,
    count: usize,
) -> Vec<Value> {
    let deadline = tokio::time::Instant::now() + PATIENCE;
    loop {
        let (events, _) = trail(app, admin, query).await;
        if events.len() >= count || tokio::time::Instant::now() > deadline {
            return events;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn send(
    app: &TestApp,
    who: &Browser,
    method: Method,
    path: &str,
    body: Option<Value>,
) -> Response {
    let mut req = who
        .http
        .request(method, app.url(path))
        .header(COOKIE, &who.cookie);
    if let Some(body) = body {
        req = req.json(&body);
    }
    req.send().await.expect("request")
}

fn id_of(v: &Value) -> Uuid {
    Uuid::parse_str(v.as_str().expect("an id")).expect("a UUID")
}
