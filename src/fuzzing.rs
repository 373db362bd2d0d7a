//! Entry points of the fuzz targets (`tests/fuzz/`, run by `cargo fuzz` in `.ci/run`) and of their
//! regression test (`tests/fuzz_regressions.rs`, over the inputs kept in
//! `tests/fuzz/regressions/`). Each takes any bytes; the property is that it returns, without a
//! panic, whatever the bytes are.

use crate::import::{Format, ImportOptions, import_bytes};

/// Intent files: any text loads and compiles, or is refused with diagnostics.
pub fn intent_files(data: &[u8]) {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let files = vec![("fuzz.toml".to_string(), text.to_string())];
    if let Ok(defs) = crate::intents::file::parse_files(&files) {
        if let Ok(matcher) = crate::intents::Matcher::compile(&defs, None) {
            let _ = matcher.classify("whats next");
            let _ = matcher.explain(text);
        }
    }
}

/// The webhook's form parser and signature check; a signature made for the form verifies.
pub fn sms_webhook(data: &[u8]) {
    let Ok(params) = crate::sms::form::parse(data) else {
        return;
    };
    let Ok(public) = "https://concierge.example.org".parse() else {
        return;
    };
    let signature =
        crate::sms::signature::compute("token", "https://concierge.example.org/sms", &params);
    let verifier = crate::sms::signature::Verifier::new("token", &public);
    assert!(verifier.verify("/sms", &params, &signature));
    let _ = verifier.verify("/sms", &params, "bm90IGEgc2lnbmF0dXJl");
    if let Some(from) = crate::sms::form::get(&params, "From") {
        let _ = crate::sms::phone::Phone::parse(from);
    }
}

/// The web chat's frames and tokens.
pub fn chat_frame(data: &[u8]) {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = crate::http::chat::read_frame(text);
        let _ = crate::http::chat::conversation_key(text);
    }
}

/// Every agenda importer, forced and detected.
pub fn importers(data: &[u8]) {
    for format in Format::ALL {
        let options = ImportOptions {
            format: Some(format),
            time_zone: Some(crate::agenda::Zone::utc()),
            conference_name: None,
        };
        let _ = import_bytes("fuzz", data, &options);
    }
    let _ = import_bytes("fuzz", data, &ImportOptions::default());
}
