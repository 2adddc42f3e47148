//! The contract documents: `/api/openapi.json` is valid OpenAPI 3.1 and
//! documents exactly the routes the server registers, with the permission
//! each needs; `/api/asyncapi.json` is valid AsyncAPI 3.0 and documents
//! every message type, event and close code of the socket. Both are checked
//! against the real server, not only against themselves.

use std::collections::BTreeSet;

use reqwest::Method;
use serde_json::{json, Value};
use tether::ws::protocol::{ErrorCode, ServerFrame};

use crate::{
    helpers::{spawn_app, spawn_app_with, Stack, TestApp},
    registered_routes::{registered_routes, Route},
};

fn schema(name: &str) -> Value {
    let path = std::path::Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/api/schemas")
        .join(name);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{name}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{name}: {e}"))
}

/// Every way `document` breaks `schema`, one line each.
fn violations(validator: &jsonschema::Validator, document: &Value) -> Vec<String> {
    validator
        .iter_errors(document)
        .map(|e| format!("{} at {}", e, e.instance_path()))
        .collect()
}

async fn get_json(app: &TestApp, path: &str) -> Value {
    let res = reqwest::get(app.url(path)).await.expect("GET");
    assert_eq!(res.status(), 200, "{path}");
    let content_type = res.headers()["content-type"].to_str().unwrap().to_owned();
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    res.json().await.expect("JSON")
}

/// Every `"$ref": "#/…"` in `document` names something in it.
fn dangling_refs(document: &Value) -> Vec<String> {
    fn walk(node: &Value, root: &Value, out: &mut Vec<String>) {
        match node {
            Value::Object(map) => {
                if let Some(Value::String(target)) = map.get("$ref") {
                    if let Some(pointer) = target.strip_prefix('#') {
                        if root.pointer(pointer).is_none() {
                            out.push(target.clone());
                        }
                    }
                }
                map.values().for_each(|v| walk(v, root, out));
            }
            Value::Array(items) => items.iter().for_each(|v| walk(v, root, out)),
            _ => {}
        }
    }
    let mut out = Vec::new();
    walk(document, document, &mut out);
    out
}

/// `(METHOD, path)` of every operation in an OpenAPI document.
fn documented_routes(doc: &Value) -> BTreeSet<Route> {
    let mut routes = BTreeSet::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in item.as_object().expect("a path item").keys() {
            routes.insert((method.to_uppercase(), path.clone()));
        }
    }
    routes
}

#[tokio::test]
async fn the_openapi_document_is_valid_openapi_3_1_with_the_session_cookie_scheme() {
    let Some(app) = spawn_app("api_docs::openapi_valid", Stack::SqliteInProcess).await else {
        return;
    };
    let doc = get_json(&app, "/api/openapi.json").await;
    let validator = jsonschema::validator_for(&schema("openapi-3.1.json")).expect("the schema");
    assert_eq!(violations(&validator, &doc), Vec::<String>::new());
    // Control: the schema does catch a broken document.
    let mut broken = doc.clone();
    broken["paths"]["/api/auth/me"]["get"]["responses"]["200"] = json!({ "content": 1 });
    assert!(!violations(&validator, &broken).is_empty());
    assert_eq!(dangling_refs(&doc), Vec::<String>::new());
    assert!(doc["openapi"].as_str().unwrap().starts_with("3.1."));
    let mut ids = BTreeSet::new();
    for item in doc["paths"].as_object().unwrap().values() {
        for operation in item.as_object().unwrap().values() {
            let id = operation["operationId"].as_str().unwrap();
            assert!(ids.insert(id.to_owned()), "operationId {id} is used twice");
        }
    }
    let scheme = &doc["components"]["securitySchemes"]["session_cookie"];
    assert_eq!(scheme["type"], "apiKey");
    assert_eq!(scheme["in"], "cookie");
    assert_eq!(scheme["name"], "tether_session");

    // Behind an https public URL the cookie is `__Host-` named, and so is the scheme.
    let Some(secure) = spawn_app_with(
        "api_docs::openapi_secure",
        Stack::SqliteInProcess,
        &[("TETHER_PUBLIC_URL", "https://tether.example.com")],
    )
    .await
    else {
        return;
    };
    let doc = get_json(&secure, "/api/openapi.json").await;
    assert_eq!(
        doc["components"]["securitySchemes"]["session_cookie"]["name"],
        "__Host-tether_session"
    );
}

/// Adding a route without documenting it (or documenting one that is not
/// served) fails here: annotate the handler with `#[utoipa::path]` and list
/// it in `src/api_docs/openapi.rs` (README "Adding a route").
#[tokio::test]
async fn every_registered_route_is_documented_and_nothing_else() {
    // One OpenID Connect provider, so its routes answer as a configured
    // provider's do (its issuer is unreachable: `start` is 503).
    let Some(app) = spawn_app_with(
        "api_docs::every_route",
        Stack::SqliteInProcess,
        &[
            ("TETHER_OIDC_PROVIDERS", "corp"),
            ("TETHER_OIDC_CORP_ISSUER", "http://127.0.0.1:1"),
            ("TETHER_OIDC_CORP_CLIENT_ID", "tether"),
        ],
    )
    .await
    else {
        return;
    };
    let doc = get_json(&app, "/api/openapi.json").await;
    let documented = documented_routes(&doc);
    let registered = registered_routes();
    let undocumented: Vec<_> = registered.difference(&documented).collect();
    let not_served: Vec<_> = documented.difference(&registered).collect();
    assert!(
        undocumented.is_empty(),
        "registered in src/ but missing from /api/openapi.json (annotate the handler with \
         #[utoipa::path] and add it to paths(…) in src/api_docs/openapi.rs): {undocumented:?}"
    );
    assert!(
        not_served.is_empty(),
        "in /api/openapi.json but not registered: {not_served:?}"
    );
    // The real server serves each one: a request (no cookie) reaches the
    // route rather than the fallback, which answers 404/405 for any path
    // that no route took.
    // A redirect (the OIDC callback's 302) is the route's own answer.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    for (method, path) in &documented {
        let id = if path.starts_with("/api/auth/oidc/") {
            "corp"
        } else {
            "00000000-0000-4000-8000-000000000000"
        };
        let url = app.url(&path.replace("{id}", id));
        let method = Method::from_bytes(method.as_bytes()).unwrap();
        let res = http.request(method.clone(), &url).send().await.unwrap();
        let status = res.status().as_u16();
        assert!(
            status != 404 && status != 405,
            "{method} {path} answered {status}: not served"
        );
        let responses = doc["paths"][path][method.as_str().to_lowercase()]["responses"]
            .as_object()
            .unwrap();
        assert!(
            responses.contains_key(&status.to_string()),
            "{method} {path} answered {status}, which its documentation does not list"
        );
    }
}

/// The permission each route documents is the one it enforces: a signed-in
/// user without it gets 403, and every admin route documents one.
#[tokio::test]
async fn documented_permissions_are_the_ones_enforced() {
    let Some(app) = spawn_app("api_docs::permissions", Stack::SqliteInProcess).await else {
        return;
    };
    let doc = get_json(&app, "/api/openapi.json").await;
    let nobody = app.login_new_user("nobody", &[]).await;
    let mut checked = 0;
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, operation) in item.as_object().unwrap() {
            let permission = operation.get("x-tether-permission").and_then(Value::as_str);
            if path.starts_with("/api/admin/") {
                assert!(permission.is_some(), "{method} {path} names no permission");
            }
            let Some(permission) = permission else {
                continue;
            };
            assert_eq!(
                operation["security"],
                json!([{ "session_cookie": [permission] }]),
                "{method} {path}"
            );
            assert!(
                operation["description"]
                    .as_str()
                    .unwrap()
                    .contains(&format!("`{permission}`")),
                "{method} {path}: the description names the permission"
            );
            let url = app.url(&path.replace("{id}", "00000000-0000-4000-8000-000000000000"));
            let res = nobody
                .http
                .request(
                    Method::from_bytes(method.to_uppercase().as_bytes()).unwrap(),
                    url,
                )
                .header("Cookie", &nobody.cookie)
                .json(&json!({}))
                .send()
                .await
                .unwrap();
            assert_eq!(res.status(), 403, "{method} {path} without {permission}");
            checked += 1;
        }
    }
    assert!(checked >= 9, "only {checked} routes with a permission");
}

/// A real response validates against the schema its route documents.
#[tokio::test]
async fn real_responses_match_their_documented_schemas() {
    let Some(app) = spawn_app("api_docs::responses", Stack::SqliteInProcess).await else {
        return;
    };
    let doc = get_json(&app, "/api/openapi.json").await;
    let admin = app.login_admin().await;
    for (path, status) in [
        ("/api/auth/me", 200),
        ("/api/auth/sessions", 200),
        ("/api/admin/users", 200),
        ("/api/admin/sessions", 200),
        ("/api/messages/admin", 200),
        ("/readyz", 200),
        ("/api/admin/sessions?per_page=0", 400),
    ] {
        let res = admin.get(&app.url(path)).await;
        assert_eq!(res.status(), status, "{path}");
        let body: Value = res.json().await.unwrap();
        let route = path.split('?').next().unwrap();
        let pointer = format!("/paths/{}/get/responses/{status}", route.replace('/', "~1"));
        let mut response = doc.pointer(&pointer).unwrap_or_else(|| panic!("{pointer}"));
        if let Some(target) = response.get("$ref").and_then(Value::as_str) {
            response = doc.pointer(target.trim_start_matches('#')).unwrap();
        }
        let schema = &response["content"]["application/json"]["schema"];
        assert_valid_under(&doc, schema, &body, path);
    }
}

/// Validates `instance` against `schema`, whose `$ref`s point into `root`.
fn assert_valid_under(root: &Value, schema: &Value, instance: &Value, what: &str) {
    let mut wrapper = schema.as_object().cloned().unwrap_or_default();
    wrapper.insert("components".into(), root["components"].clone());
    wrapper.insert(
        "$schema".into(),
        json!("https://json-schema.org/draft/2020-12/schema"),
    );
    let validator = jsonschema::validator_for(&Value::Object(wrapper)).expect("a schema");
    assert_eq!(
        violations(&validator, instance),
        Vec::<String>::new(),
        "{what}: {instance}"
    );
}

#[tokio::test]
async fn the_asyncapi_document_is_valid_asyncapi_3_and_matches_the_socket() {
    let Some(app) = spawn_app("api_docs::asyncapi", Stack::SqliteInProcess).await else {
        return;
    };
    let doc = get_json(&app, "/api/asyncapi.json").await;
    let validator = jsonschema::validator_for(&schema("asyncapi-3.0.0.json")).expect("the schema");
    assert_eq!(violations(&validator, &doc), Vec::<String>::new());
    // Control: the schema does catch a broken document, deep inside too.
    let mut broken = doc.clone();
    broken["operations"]["sendPing"]["action"] = json!("shout");
    assert!(!violations(&validator, &broken).is_empty());
    let mut broken = doc.clone();
    broken["components"]["messages"]["ping"]["payload"]["type"] = json!(7);
    assert!(!violations(&validator, &broken).is_empty());
    assert_eq!(dangling_refs(&doc), Vec::<String>::new());
    assert_eq!(doc["asyncapi"], "3.0.0");
    assert_eq!(
        doc["components"]["securitySchemes"]["session_cookie"]["name"],
        "tether_session"
    );

    // Every registered type is documented, and every documented type is
    // served: none gets `unknown_type` from the real socket.
    let registered: BTreeSet<&str> = app
        .state
        .ws_handlers
        .docs()
        .iter()
        .map(|d| d.kind)
        .collect();
    let operations = doc["operations"].as_object().unwrap();
    let sent: BTreeSet<String> = operations
        .values()
        .filter(|op| op["action"] == "send")
        .map(|op| {
            let message = op["messages"][0]["$ref"].as_str().unwrap();
            message.rsplit('/').next().unwrap().to_owned()
        })
        .collect();
    assert_eq!(
        sent,
        registered
            .iter()
            .map(|k| k.to_string())
            .collect::<BTreeSet<_>>()
    );
    let nobody = app.login_new_user("nobody", &[]).await;
    let mut socket = nobody.socket(&app).await;
    for (id, operation) in operations {
        if operation["action"] != "send" {
            continue;
        }
        let kind = operation["messages"][0]["$ref"]
            .as_str()
            .unwrap()
            .rsplit('/')
            .next()
            .unwrap();
        let reply = socket.request(kind, json!({})).await;
        let code = reply.error.as_ref().map(|e| e.code);
        assert_ne!(code, Some(ErrorCode::UnknownType), "{kind}");
        // The documented permission is the one enforced.
        match operation.get("x-tether-permission") {
            Some(_) => assert_eq!(code, Some(ErrorCode::Forbidden), "{id}"),
            None => assert_ne!(code, Some(ErrorCode::Forbidden), "{id}"),
        }
    }

    // Real frames validate against their documented messages.
    let admin = app.login_admin().await;
    let hello = first_text_frame(&app, &admin.cookie).await;
    let payload = &doc["components"]["messages"]["event.hello"]["payload"];
    assert_valid_under(&doc, payload, &hello, "hello");
    let mut socket = admin.socket(&app).await;
    for (kind, data) in [
        ("ping", json!({})),
        ("whoami", json!({})),
        ("messages.admin", json!({})),
        ("chat.send", json!({"room": "lobby", "text": "hi"})),
        ("session.refresh", json!({})),
        ("chat.send", json!({"room": "", "text": "hi"})),
        ("no.such.type", json!({})),
    ] {
        let reply = socket.request(kind, data).await;
        let reply = serde_json::to_value(&reply).unwrap();
        let message = if kind == "no.such.type" {
            "error".to_owned()
        } else {
            format!("{kind}.reply")
        };
        let payload = &doc["components"]["messages"][&message]["payload"];
        assert_valid_under(&doc, payload, &reply, kind);
    }

    // Every close code the server uses is listed.
    let codes: Vec<u64> = doc["channels"]["socket"]["x-tether-close-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].as_u64().unwrap())
        .collect();
    for code in [4001, 1001, 1002, 1008, 1009, 1013] {
        assert!(codes.contains(&code), "close code {code} is documented");
    }
    // And every reply error code.
    let documented: Vec<Value> = doc["components"]["messages"]["error"]["x-tether-error-codes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["code"].clone())
        .collect();
    for code in ErrorCode::ALL {
        assert!(
            documented.contains(&serde_json::to_value(code).unwrap()),
            "{code:?}"
        );
    }
}

/// The first frame a fresh socket gets, as JSON (read through the protocol types).
async fn first_text_frame(app: &TestApp, cookie: &str) -> Value {
    let mut socket = crate::helpers::connect(app, Some(cookie), None)
        .await
        .expect("upgrade");
    match socket.next_frame().await {
        frame @ ServerFrame::Event(_) => serde_json::to_value(frame).unwrap(),
        other => panic!("expected an event first, got {other:?}"),
    }
}
