//! The checker behind `concierge check`: runs every example and counter-example of a compiled set
//! and reports, per intent, what passed, which intents were confused with which, and each failure
//! with its place in the files.

use std::collections::BTreeMap;
use std::fmt;

use serde::Serialize;

use super::{CATALOG, Definitions, Diagnostic, FALLBACK, Loc, Matcher};

/// One example that did not come out as written.
#[derive(Clone, Debug, Serialize)]
pub struct Failure {
    pub loc: Loc,
    pub text: String,
    /// What the file says: an intent name, or `not NAME` for a counter-example.
    pub expected: String,
    pub got: String,
    pub confidence: f32,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct IntentReport {
    pub name: String,
    pub phrases: usize,
    pub patterns: usize,
    pub examples: usize,
    pub examples_passed: usize,
    pub counter_examples: usize,
    pub counter_examples_passed: usize,
}

#[derive(Clone, Debug, Default, Serialize)]
pub struct Report {
    pub intents: Vec<IntentReport>,
    /// `(expected, got)` → how many examples.
    pub confused: BTreeMap<(String, String), usize>,
    pub failures: Vec<Failure>,
    pub warnings: Vec<Diagnostic>,
}

impl Report {
    pub fn passed(&self) -> bool {
        self.failures.is_empty()
    }
}

/// The SMS budget replies are checked against (the service's default `sms.max_segments`).
pub const REPLY_SEGMENTS: usize = 2;

/// Runs every example and counter-example, and warns about replies longer than an SMS answer
/// should be once `{conference}` is filled in with `conference`.
pub fn run(defs: &Definitions, matcher: &Matcher, conference: &str) -> Report {
    let mut report = Report::default();
    for def in &defs.intents {
        for (lang, reply) in def.response.reply.iter().chain(&def.response.empty) {
            let text = reply.text.replace("{conference}", conference);
            let count = crate::sms::segments::count(&text);
            if count.segments > REPLY_SEGMENTS {
                report.warnings.push(Diagnostic::at(
                    &reply.loc,
                    format!(
                        "the {} reply of {:?} takes {} SMS segments ({:?}, {} units); replies over {REPLY_SEGMENTS} are split with MORE",
                        lang.code(),
                        def.name,
                        count.segments,
                        count.encoding,
                        count.units
                    ),
                ));
            }
        }
    }
    for name in CATALOG {
        if defs.intent(name).is_none() {
            report.warnings.push(Diagnostic::general(format!(
                "the canonical intent {name:?} is missing; tools and tests rely on it"
            )));
        }
    }
    for def in &defs.intents {
        let mut r = IntentReport {
            name: def.name.clone(),
            phrases: def.phrases.len(),
            patterns: def.patterns.len(),
            examples: def.examples.len(),
            counter_examples: def.counter_examples.len(),
            ..IntentReport::default()
        };
        for ex in &def.examples {
            let c = matcher.classify(&ex.text);
            if *c.intent == *def.name {
                r.examples_passed += 1;
                if let Some(other) = &c.ambiguous_with {
                    report.warnings.push(Diagnostic::at(
                        &ex.loc,
                        format!(
                            "example {:?} is ambiguous between {:?} and {other:?}",
                            ex.text, def.name
                        ),
                    ));
                }
            } else {
                *report
                    .confused
                    .entry((def.name.clone(), c.intent.to_string()))
                    .or_default() += 1;
                report.failures.push(Failure {
                    loc: ex.loc.clone(),
                    text: ex.text.clone(),
                    expected: def.name.clone(),
                    got: c.intent.to_string(),
                    confidence: c.confidence,
                });
            }
        }
        for ex in &def.counter_examples {
            let c = matcher.classify(&ex.text);
            if *c.intent != *def.name {
                r.counter_examples_passed += 1;
            } else {
                report.failures.push(Failure {
                    loc: ex.loc.clone(),
                    text: ex.text.clone(),
                    expected: format!("not {}", def.name),
                    got: c.intent.to_string(),
                    confidence: c.confidence,
                });
            }
        }
        if def.examples.is_empty() && def.name != FALLBACK {
            report.warnings.push(Diagnostic::at(
                &def.loc,
                format!(
                    "intent {:?} has no examples, so nothing checks it",
                    def.name
                ),
            ));
        }
        report.intents.push(r);
    }
    report
}

impl fmt::Display for Report {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(
            f,
            "{:<22} {:>7} {:>8} {:>10} {:>16}",
            "intent", "phrases", "patterns", "examples", "counter-examples"
        )?;
        for r in &self.intents {
            writeln!(
                f,
                "{:<22} {:>7} {:>8} {:>10} {:>16}",
                r.name,
                r.phrases,
                r.patterns,
                format!("{}/{}", r.examples_passed, r.examples),
                format!("{}/{}", r.counter_examples_passed, r.counter_examples),
            )?;
        }
        if !self.confused.is_empty() {
            writeln!(f, "\nconfused pairs (expected -> got: examples):")?;
            for ((expected, got), count) in &self.confused {
                writeln!(f, "  {expected} -> {got}: {count}")?;
            }
        }
        for w in &self.warnings {
            writeln!(f, "warning: {w}")?;
        }
        for failure in &self.failures {
            writeln!(
                f,
                "{}: {:?} should be {} but is {} ({:.2})",
                failure.loc, failure.text, failure.expected, failure.got, failure.confidence
            )?;
        }
        let examples: usize = self
            .intents
            .iter()
            .map(|r| r.examples + r.counter_examples)
            .sum();
        write!(
            f,
            "\n{} intents, {} examples and counter-examples, {} failed",
            self.intents.len(),
            examples,
            self.failures.len()
        )
    }
}
