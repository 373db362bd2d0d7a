//! Inputs kept from fuzzing (and written by hand in the same spirit) for each fuzz target, run on
//! every `cargo test`: none may panic. A crash `cargo fuzz` finds goes into
//! `tests/fuzz/regressions/<target>/`.

use std::path::Path;

fn inputs(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fuzz/regressions")
        .join(target);
    let mut out: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|err| panic!("{}: {err}", dir.display()))
        .map(|e| {
            let path = e.unwrap().path();
            (path.display().to_string(), std::fs::read(&path).unwrap())
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no inputs in {}", dir.display());
    out
}

fn run(target: &str, f: fn(&[u8])) {
    for (name, data) in inputs(target) {
        let result = std::panic::catch_unwind(|| f(&data));
        assert!(result.is_ok(), "{name} panics");
    }
}

#[test]
fn intent_files() {
    run("intent_files", concierge::fuzzing::intent_files);
}

#[test]
fn sms_webhook() {
    run("sms_webhook", concierge::fuzzing::sms_webhook);
}

#[test]
fn chat_frame() {
    run("chat_frame", concierge::fuzzing::chat_frame);
}

#[test]
fn importers() {
    run("importers", concierge::fuzzing::importers);
}
