//! Accuracy of the shipped intents on messages that are not their examples, and false matches on
//! unrelated text. Targets: at least 95% of attendee messages get the right intent; at most 1% of
//! unrelated text (CLINC150's out-of-scope test set plus its banking and credit-card test
//! utterances) gets an intent other than `fallback`.
//!
//! `cargo test --test intent_accuracy -- --nocapture` prints the per-intent table recorded in
//! BENCHMARKS.md.

use std::collections::BTreeMap;
use std::path::PathBuf;

use concierge::intents::Matcher;
use concierge::intents::file::load_dir;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn matcher() -> Matcher {
    let agenda = concierge::agenda::demo::demo_agenda("2026-06-09".parse().unwrap()).unwrap();
    let defs = load_dir(&root().join("intents")).unwrap();
    Matcher::compile(&defs, Some(&agenda)).unwrap()
}

/// `(intent, message)` pairs of a test set.
fn labelled(name: &str) -> Vec<(String, String)> {
    let text = std::fs::read_to_string(root().join("tests/data").join(name)).unwrap();
    text.lines()
        .filter(|l| !l.starts_with('#') && !l.trim().is_empty())
        .map(|l| {
            let (intent, message) = l
                .split_once('\t')
                .unwrap_or_else(|| panic!("no tab in {l:?}"));
            (intent.to_string(), message.to_string())
        })
        .collect()
}

#[test]
fn attendee_messages_get_the_right_intent() {
    let matcher = matcher();
    // intent → (true positives, false positives, false negatives)
    let mut table: BTreeMap<String, (u32, u32, u32)> = BTreeMap::new();
    let mut total = 0;
    let mut right = 0;
    let mut misses = Vec::new();
    for set in ["attendee_messages.tsv", "attendee_messages_2.tsv"] {
        let cases = labelled(set);
        let mut set_right = 0;
        for (expected, message) in &cases {
            let got = matcher.classify(message);
            if *got.intent == **expected {
                set_right += 1;
                table.entry(expected.clone()).or_default().0 += 1;
            } else {
                table.entry(got.intent.to_string()).or_default().1 += 1;
                table.entry(expected.clone()).or_default().2 += 1;
                misses.push(format!(
                    "{set}: {message:?} is {} ({:.2}), expected {expected}",
                    got.intent, got.confidence
                ));
            }
        }
        println!(
            "{set}: {set_right}/{} = {:.1}%",
            cases.len(),
            100.0 * set_right as f64 / cases.len() as f64
        );
        total += cases.len();
        right += set_right;
    }
    println!("\n{:<22} {:>9} {:>7}", "intent", "precision", "recall");
    for (intent, (tp, fp, fneg)) in &table {
        let precision = f64::from(*tp) / f64::from((tp + fp).max(1));
        let recall = f64::from(*tp) / f64::from((tp + fneg).max(1));
        println!("{intent:<22} {precision:>9.3} {recall:>7.3}");
    }
    for miss in &misses {
        println!("miss: {miss}");
    }
    let accuracy = right as f64 / total as f64;
    println!("\naccuracy: {right}/{total} = {:.1}%", 100.0 * accuracy);
    assert!(
        accuracy >= 0.95,
        "accuracy {:.1}% is under 95%:\n{}",
        100.0 * accuracy,
        misses.join("\n")
    );
}

#[test]
fn unrelated_text_falls_back() {
    let matcher = matcher();
    let dir = root().join("../shared/data/intents/clinc150");
    let data: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("data_full.json")).unwrap())
            .unwrap();
    let domains: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("domains.json")).unwrap()).unwrap();
    let unrelated_domains: Vec<&str> = ["banking", "credit_cards"]
        .iter()
        .flat_map(|d| {
            domains[d]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_str().unwrap())
        })
        .collect();
    let mut texts: Vec<&str> = data["oos_test"]
        .as_array()
        .unwrap()
        .iter()
        .map(|pair| pair[0].as_str().unwrap())
        .collect();
    assert_eq!(texts.len(), 1000);
    texts.extend(
        data["test"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|pair| unrelated_domains.contains(&pair[1].as_str().unwrap()))
            .map(|pair| pair[0].as_str().unwrap()),
    );
    assert_eq!(texts.len(), 1900);
    let wrong: Vec<String> = texts
        .iter()
        .filter_map(|t| {
            let c = matcher.classify(t);
            (*c.intent != *"fallback")
                .then(|| format!("{t:?} -> {} ({:.2})", c.intent, c.confidence))
        })
        .collect();
    let rate = wrong.len() as f64 / texts.len() as f64;
    println!(
        "false matches: {}/{} = {:.2}%",
        wrong.len(),
        texts.len(),
        100.0 * rate
    );
    for w in &wrong {
        println!("  {w}");
    }
    assert!(
        rate <= 0.01,
        "{:.2}% of unrelated text got an intent:\n{}",
        100.0 * rate,
        wrong.join("\n")
    );
}
