//! The routing file operators edit: experts, queues and the workflow, in TOML.
//!
//! ```toml
//! reservation_timeout = "30s"   # how long an expert has to accept an offer
//! task_ttl = "15m"              # how long an attendee may wait before the request is canceled
//!
//! [[expert]]
//! id = "maya"                   # lower case, digits, '-' and '_'
//! name = "Maya Chen"
//! skills = ["video"]
//! languages = ["en", "es"]
//! capacity = 2                  # conversations at once (1 to 20, default 1)
//!
//! [[queue]]
//! name = "skilled"
//! expression = 'skills HAS task.skill AND languages HAS task.language'
//!
//! [[target]]                    # the workflow, in order
//! queue = "skilled"
//! timeout = "60s"               # every target but the last has one
//! priority = 5                  # optional: overrides the task's priority here
//! [[target]]
//! queue = "anyone"
//! ```
//!
//! Every problem is reported with its file, line and column; an expression error points into the
//! expression. Nothing is half-loaded: the caller keeps its running configuration unless this
//! returns `Ok`.

use std::collections::HashSet;

use jiff::{SignedDuration, Timestamp};
use serde::Deserialize;
use toml::Spanned;

use super::expr::Expr;
use super::{Availability, Expert, Queue, Routing, Target};
use crate::intents::{Diagnostic, Loc};

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    reservation_timeout: Option<Spanned<String>>,
    #[serde(default)]
    task_ttl: Option<Spanned<String>>,
    #[serde(default)]
    expert: Vec<RawExpert>,
    #[serde(default)]
    queue: Vec<RawQueue>,
    #[serde(default)]
    target: Vec<RawTarget>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawExpert {
    id: Spanned<String>,
    name: String,
    skills: Spanned<Vec<String>>,
    #[serde(default)]
    languages: Vec<String>,
    #[serde(default)]
    capacity: Option<Spanned<i64>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawQueue {
    name: Spanned<String>,
    expression: Spanned<String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawTarget {
    queue: Spanned<String>,
    #[serde(default)]
    timeout: Option<Spanned<String>>,
    #[serde(default)]
    priority: Option<i32>,
}

/// A parsed routing file.
#[derive(Clone, Debug)]
pub struct RoutingFile {
    pub routing: Routing,
    /// The experts as defined; all start offline until they sign in.
    pub experts: Vec<Expert>,
}

/// Parses "30s", "2m", "1h" or "90" (seconds).
pub fn parse_duration(s: &str) -> Option<SignedDuration> {
    let s = s.trim();
    let (number, unit) = match s.find(|c: char| !c.is_ascii_digit()) {
        Some(i) => (&s[..i], s[i..].trim()),
        None => (s, "s"),
    };
    let n: i64 = number.parse().ok()?;
    let secs = match unit {
        "s" | "sec" | "secs" => n,
        "m" | "min" | "mins" => n * 60,
        "h" => n * 3600,
        _ => return None,
    };
    (secs > 0).then(|| SignedDuration::from_secs(secs))
}

fn line_col(file: &str, text: &str, offset: usize) -> Loc {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    Loc {
        file: file.into(),
        line: line as u32,
        column: column as u32,
    }
}

impl RoutingFile {
    /// Parses the file's text; `file` names it in problems; experts start offline, idle since `now`.
    pub fn parse(file: &str, text: &str, now: Timestamp) -> Result<RoutingFile, Vec<Diagnostic>> {
        let at = |offset: usize| line_col(file, text, offset);
        let raw: RawFile = toml::from_str(text).map_err(|err| {
            vec![Diagnostic {
                loc: err.span().map(|s| at(s.start)),
                message: err.message().trim_end().to_string(),
            }]
        })?;
        let mut errs = Vec::new();
        let duration = |field: &Option<Spanned<String>>,
                        default: i64,
                        errs: &mut Vec<Diagnostic>| match field {
            None => SignedDuration::from_secs(default),
            Some(s) => parse_duration(s.get_ref()).unwrap_or_else(|| {
                errs.push(Diagnostic::at(
                    &at(s.span().start),
                    format!(
                        "{:?} is not a duration (write \"30s\", \"2m\" or \"1h\")",
                        s.get_ref()
                    ),
                ));
                SignedDuration::from_secs(default)
            }),
        };
        let reservation_timeout = duration(&raw.reservation_timeout, 30, &mut errs);
        let task_ttl = duration(&raw.task_ttl, 15 * 60, &mut errs);

        let mut ids = HashSet::new();
        let mut experts = Vec::new();
        for e in &raw.expert {
            let id = e.id.get_ref().trim();
            let loc = at(e.id.span().start);
            let valid = !id.is_empty()
                && id
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-' || c == '_');
            if !valid {
                errs.push(Diagnostic::at(
                    &loc,
                    format!("expert id {id:?} must be lower-case letters, digits, '-' and '_'"),
                ));
            } else if !ids.insert(id.to_string()) {
                errs.push(Diagnostic::at(
                    &loc,
                    format!("expert {id:?} is defined twice"),
                ));
            }
            if e.skills.get_ref().is_empty() {
                errs.push(Diagnostic::at(
                    &at(e.skills.span().start),
                    format!("expert {id:?} has no skills"),
                ));
            }
            let capacity = match &e.capacity {
                None => 1,
                Some(c) if (1..=20).contains(c.get_ref()) => *c.get_ref() as u32,
                Some(c) => {
                    errs.push(Diagnostic::at(
                        &at(c.span().start),
                        format!("capacity {} must be from 1 to 20", c.get_ref()),
                    ));
                    1
                }
            };
            experts.push(Expert {
                id: id.to_string(),
                name: e.name.trim().to_string(),
                skills: e
                    .skills
                    .get_ref()
                    .iter()
                    .map(|s| s.trim().to_lowercase())
                    .collect(),
                languages: if e.languages.is_empty() {
                    vec!["en".into()]
                } else {
                    e.languages
                        .iter()
                        .map(|l| l.trim().to_lowercase())
                        .collect()
                },
                capacity,
                status: Availability::Offline,
                idle_since: now,
            });
        }

        let mut queues: Vec<Queue> = Vec::new();
        for q in &raw.queue {
            let name = q.name.get_ref().trim().to_string();
            if queues.iter().any(|existing| existing.name == name) {
                errs.push(Diagnostic::at(
                    &at(q.name.span().start),
                    format!("queue {name:?} is defined twice"),
                ));
                continue;
            }
            match Expr::parse(q.expression.get_ref()) {
                Ok(expr) => queues.push(Queue { name, expr }),
                Err(err) => {
                    // The column points into the expression: the string starts after its quote.
                    let start = q.expression.span().start + 1;
                    let offset = q
                        .expression
                        .get_ref()
                        .char_indices()
                        .nth(err.column - 1)
                        .map_or(q.expression.get_ref().len(), |(i, _)| i);
                    errs.push(Diagnostic::at(
                        &at(start + offset),
                        format!("queue {name:?}: {}", err.message),
                    ));
                }
            }
        }

        let mut targets = Vec::new();
        for (i, t) in raw.target.iter().enumerate() {
            let last = i + 1 == raw.target.len();
            let Some(queue) = queues
                .iter()
                .position(|q| q.name == t.queue.get_ref().trim())
            else {
                errs.push(Diagnostic::at(
                    &at(t.queue.span().start),
                    format!("there is no queue named {:?}", t.queue.get_ref()),
                ));
                continue;
            };
            let timeout = match (&t.timeout, last) {
                (None, false) => {
                    errs.push(Diagnostic::at(
                        &at(t.queue.span().start),
                        "every target but the last needs a timeout",
                    ));
                    None
                }
                (Some(s), true) => {
                    errs.push(Diagnostic::at(
                        &at(s.span().start),
                        "the last target waits until the task's time-to-live; it takes no timeout",
                    ));
                    None
                }
                (None, true) => None,
                (Some(s), false) => Some(duration(&Some(s.clone()), 60, &mut errs)),
            };
            targets.push(Target {
                queue,
                timeout,
                priority: t.priority,
            });
        }
        if raw.target.is_empty() {
            errs.push(Diagnostic::general(format!(
                "{file}: the workflow needs at least one [[target]]"
            )));
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(RoutingFile {
            routing: Routing {
                queues,
                targets,
                reservation_timeout,
                task_ttl,
            },
            experts,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const GOOD: &str = r#"
reservation_timeout = "30s"
task_ttl = "15m"

[[expert]]
id = "ana"
name = "Ana"
skills = ["video", "messaging"]
languages = ["en", "es"]
capacity = 2

[[queue]]
name = "skilled"
expression = 'skills HAS task.skill AND languages HAS task.language'

[[queue]]
name = "anyone"
expression = 'languages HAS task.language'

[[target]]
queue = "skilled"
timeout = "60s"

[[target]]
queue = "anyone"
"#;

    fn now() -> Timestamp {
        Timestamp::UNIX_EPOCH
    }

    #[test]
    fn a_good_file() {
        let f = RoutingFile::parse("r.toml", GOOD, now()).unwrap();
        assert_eq!(f.experts.len(), 1);
        assert_eq!(f.experts[0].status, Availability::Offline);
        assert_eq!(f.routing.queues.len(), 2);
        assert_eq!(
            f.routing.targets[0].timeout,
            Some(SignedDuration::from_secs(60))
        );
        assert_eq!(f.routing.targets[1].timeout, None);
        assert_eq!(f.routing.task_ttl, SignedDuration::from_mins(15));
    }

    #[test]
    fn problems_have_places() {
        let cases = [
            (
                GOOD.replace("skills HAS task.skill AND", "skills HAZ task.skill AND"),
                "r.toml:14:22: queue \"skilled\": expected HAS",
            ),
            (
                GOOD.replace("timeout = \"60s\"", "timeout = \"soon\""),
                "r.toml:22:11: \"soon\" is not a duration",
            ),
            (
                GOOD.replace("queue = \"anyone\"\n", "queue = \"nobody\"\n"),
                "r.toml:25:9: there is no queue named \"nobody\"",
            ),
            (
                GOOD.replace("timeout = \"60s\"\n", ""),
                "r.toml:21:9: every target but the last needs a timeout",
            ),
            (
                GOOD.replace("capacity = 2", "capacity = 99"),
                "r.toml:10:12: capacity 99 must be from 1 to 20",
            ),
            (
                GOOD.replace("id = \"ana\"", "id = \"Ana Lopez\""),
                "r.toml:6:6: expert id \"Ana Lopez\" must be",
            ),
            (
                GOOD.replace("skills = [\"video\", \"messaging\"]", "skills = []"),
                "r.toml:8:10: expert \"ana\" has no skills",
            ),
            (
                GOOD.replace("name = \"Ana\"", "nmae = \"Ana\""),
                "r.toml:7:1: unknown field `nmae`",
            ),
            (
                GOOD.replace(
                    "queue = \"anyone\"\n",
                    "queue = \"anyone\"\ntimeout = \"5m\"\n",
                ),
                "r.toml:26:11: the last target waits",
            ),
        ];
        for (text, expected) in cases {
            let errs = RoutingFile::parse("r.toml", &text, now()).unwrap_err();
            let all: Vec<String> = errs.iter().map(ToString::to_string).collect();
            assert!(
                all.iter().any(|e| e.contains(expected)),
                "expected {expected:?} in {all:#?}"
            );
        }
    }

    #[test]
    fn durations() {
        assert_eq!(parse_duration("30s"), Some(SignedDuration::from_secs(30)));
        assert_eq!(parse_duration("2m"), Some(SignedDuration::from_secs(120)));
        assert_eq!(parse_duration("1h"), Some(SignedDuration::from_secs(3600)));
        assert_eq!(parse_duration("90"), Some(SignedDuration::from_secs(90)));
        assert_eq!(parse_duration("0s"), None);
        assert_eq!(parse_duration("soon"), None);
    }
}
