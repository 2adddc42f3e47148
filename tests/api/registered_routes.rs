//! Every HTTP route `src/` registers with actix, read from the code itself
//! (`syn`), whatever the form: `cfg.route("/p", web::get()…)`,
//! `web::resource("/p").route(web::put()…)`, routes inside
//! `web::scope("/prefix")`, and the attribute macros (`#[get("/p")]`).
//! `api_docs.rs` checks this list against the OpenAPI document and probes
//! each route on the running server, so a scanner that misread a form would
//! show up there too.

use std::{
    collections::BTreeSet,
    path::{Path, PathBuf},
};

use syn::{punctuated::Punctuated, visit::Visit, Token};

/// `(METHOD, path)`, the path in actix's pattern syntax (`/api/x/{id}`).
/// `*` as the method: a resource answering every method.
pub type Route = (String, String);

const METHODS: [&str; 7] = ["get", "post", "put", "patch", "delete", "head", "options"];

/// Files whose routes are served on a listener of their own, not the API's:
/// the metrics listener (`TETHER_METRICS_BIND`), which `tests/api/metrics.rs`
/// checks is 404 on the main one.
const OTHER_LISTENERS: [&str; 1] = ["metrics_http.rs"];

pub fn registered_routes() -> BTreeSet<Route> {
    let src = Path::new(env!("CARGO_MANIFEST_DIR")).join("src");
    let mut routes = BTreeSet::new();
    for file in rust_files(&src) {
        if OTHER_LISTENERS.iter().any(|name| file == src.join(name)) {
            continue;
        }
        let text = std::fs::read_to_string(&file).expect("a source file is readable");
        let parsed = syn::parse_file(&text)
            .unwrap_or_else(|e| panic!("{} does not parse: {e}", file.display()));
        routes.extend(routes_in(&parsed));
    }
    routes
}

fn routes_in(file: &syn::File) -> BTreeSet<Route> {
    let mut scanner = Scanner::default();
    scanner.visit_file(file);
    let mut routes = scanner.routes;
    // A resource with no method route answers every method.
    for path in scanner.resources {
        if !scanner.resource_routes.contains(&path) {
            routes.insert(("*".to_owned(), path));
        }
    }
    routes
}

/// The scanner sees each way a route can be registered, so a new route is
/// found however it is written.
#[test]
fn every_form_of_registration_is_found() {
    let source = r#"
        fn configure(cfg: &mut web::ServiceConfig) {
            cfg.route("/a", web::get().to(a)).route("/b", web::post().to(b));
            cfg.service(web::resource("/c").route(web::put().to(c)).route(web::delete().to(d)));
            cfg.service(web::scope("/s").route("/e", web::patch().to(e)));
            cfg.service(web::resource("/any").to(any));
        }
        #[get("/f")]
        async fn f() {}
        #[actix_web::post("/g", wrap = "X")]
        async fn g() {}
    "#;
    let found = routes_in(&syn::parse_file(source).unwrap());
    let expected: BTreeSet<Route> = [
        ("GET", "/a"),
        ("POST", "/b"),
        ("PUT", "/c"),
        ("DELETE", "/c"),
        ("PATCH", "/s/e"),
        ("*", "/any"),
        ("GET", "/f"),
        ("POST", "/g"),
    ]
    .into_iter()
    .map(|(m, p)| (m.to_owned(), p.to_owned()))
    .collect();
    assert_eq!(found, expected);
}

fn rust_files(dir: &Path) -> Vec<PathBuf> {
    let mut files = Vec::new();
    let mut stack = vec![dir.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in std::fs::read_dir(&dir).expect("src/ is readable") {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "rs") {
                files.push(path);
            }
        }
    }
    files
}

#[derive(Default)]
struct Scanner {
    routes: BTreeSet<Route>,
    resources: BTreeSet<String>,
    resource_routes: BTreeSet<String>,
}

fn string_literal(expr: &syn::Expr) -> Option<String> {
    match expr {
        syn::Expr::Lit(syn::ExprLit {
            lit: syn::Lit::Str(s),
            ..
        }) => Some(s.value()),
        _ => None,
    }
}

/// `web::resource("/p")` → `("resource", "/p")`, likewise `scope`.
fn builder_call(call: &syn::ExprCall) -> Option<(String, String)> {
    let syn::Expr::Path(func) = call.func.as_ref() else {
        return None;
    };
    let name = func.path.segments.last()?.ident.to_string();
    if name != "resource" && name != "scope" {
        return None;
    }
    Some((name, string_literal(call.args.first()?)?))
}

/// The `resource`/`scope` call a method chain starts from, if any.
fn chain_root(mut expr: &syn::Expr) -> Option<(String, String)> {
    loop {
        match expr {
            syn::Expr::MethodCall(call) => expr = &call.receiver,
            syn::Expr::Call(call) => return builder_call(call),
            _ => return None,
        }
    }
}

/// The method of a `web::get()…` route expression (`*` for `web::route()`).
fn route_method(expr: &syn::Expr) -> String {
    #[derive(Default)]
    struct Method(Option<String>);
    impl<'ast> Visit<'ast> for Method {
        fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
            if let syn::Expr::Path(func) = call.func.as_ref() {
                let segments: Vec<String> = func
                    .path
                    .segments
                    .iter()
                    .map(|s| s.ident.to_string())
                    .collect();
                if let [.., web, method] = segments.as_slice() {
                    if web == "web" && METHODS.contains(&method.as_str()) {
                        self.0.get_or_insert(method.to_uppercase());
                    }
                }
            }
            syn::visit::visit_expr_call(self, call);
        }
    }
    let mut found = Method::default();
    found.visit_expr(expr);
    found.0.unwrap_or_else(|| "*".to_owned())
}

impl<'ast> Visit<'ast> for Scanner {
    fn visit_expr_method_call(&mut self, call: &'ast syn::ExprMethodCall) {
        if call.method == "route" {
            let root = chain_root(&call.receiver);
            let args: Vec<&syn::Expr> = call.args.iter().collect();
            match (args.as_slice(), root) {
                // cfg.route("/p", web::get()…), or inside a scope.
                ([path, route], root) if string_literal(path).is_some() => {
                    let prefix = match root {
                        Some((kind, prefix)) if kind == "scope" => prefix,
                        _ => String::new(),
                    };
                    let path = format!("{prefix}{}", string_literal(path).unwrap_or_default());
                    self.routes.insert((route_method(route), path));
                }
                // web::resource("/p").route(web::get()…)
                ([route], Some((kind, path))) if kind == "resource" => {
                    self.resource_routes.insert(path.clone());
                    self.routes.insert((route_method(route), path));
                }
                _ => {}
            }
        }
        syn::visit::visit_expr_method_call(self, call);
    }

    fn visit_expr_call(&mut self, call: &'ast syn::ExprCall) {
        if let Some((kind, path)) = builder_call(call) {
            if kind == "resource" {
                self.resources.insert(path);
            }
        }
        syn::visit::visit_expr_call(self, call);
    }

    fn visit_item_fn(&mut self, item: &'ast syn::ItemFn) {
        // #[get("/p")] and friends (actix-web's route macros).
        for attr in &item.attrs {
            let Some(name) = attr.path().segments.last().map(|s| s.ident.to_string()) else {
                continue;
            };
            if !METHODS.contains(&name.as_str()) {
                continue;
            }
            let args = attr.parse_args_with(Punctuated::<syn::Expr, Token![,]>::parse_terminated);
            if let Some(path) = args.ok().and_then(|a| a.first().and_then(string_literal)) {
                self.routes.insert((name.to_uppercase(), path));
            }
        }
        syn::visit::visit_item_fn(self, item);
    }
}
