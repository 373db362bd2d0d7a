//! The OpenAPI document describes exactly the routes the code registers: every `.route(...)` in
//! `src/http/` is in the document with its methods, and every path and method in the document is a
//! route. Served at `GET /openapi.json`.

use std::collections::BTreeSet;

fn routes_in_source() -> BTreeSet<(String, String)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/http");
    let mut routes = BTreeSet::new();
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "rs") {
            continue;
        }
        let text = std::fs::read_to_string(&path).unwrap();
        for part in text.split(".route(\"").skip(1) {
            let route = part.split('"').next().unwrap().to_string();
            let handlers = part.split_once(',').unwrap().1;
            let handlers = handlers.split(")\n").next().unwrap();
            for method in ["get", "post", "put", "delete", "patch"] {
                if handlers.contains(&format!("{method}(")) {
                    routes.insert((route.clone(), method.to_string()));
                }
            }
        }
    }
    routes
}

#[test]
fn the_document_matches_the_routes() {
    let spec: serde_json::Value = serde_json::from_str(concierge::http::OPENAPI).unwrap();
    assert_eq!(spec["openapi"], "3.1.0");
    let mut documented = BTreeSet::new();
    for (path, ops) in spec["paths"].as_object().unwrap() {
        for method in ops.as_object().unwrap().keys() {
            documented.insert((path.clone(), method.clone()));
        }
    }
    let source = routes_in_source();
    assert!(source.len() >= 18, "found only {source:?}");
    let undocumented: Vec<_> = source.difference(&documented).collect();
    let stale: Vec<_> = documented.difference(&source).collect();
    assert!(
        undocumented.is_empty(),
        "routes missing from openapi.json: {undocumented:?}"
    );
    assert!(
        stale.is_empty(),
        "openapi.json documents routes that do not exist: {stale:?}"
    );
}
