//! Reading intent files: TOML in, [`Definitions`] or [`Diagnostic`]s with file:line:column out.
//!
//! A folder of `*.toml` files is read in name order. Each file may hold any of:
//!
//! ```toml
//! [[intent]]
//! name = "next_session"                # unique across all files
//! description = "What is coming up next"
//! priority = 50                        # 0..=100, default 50; breaks near-ties
//! phrases.en = ["whats next", "coming up"]
//! phrases.es = ["que sigue"]
//! keywords.any = ["next", "upcoming"]  # weaker evidence, any of them
//! keywords.all = ["next", "talk"]      # all of them together
//! keywords.none = ["year"]             # any of them rules the intent out
//! patterns = ['\bwhat(s| is)? (on )?next\b']   # regular expressions over the normalised text
//! exact = ["stop"]                     # the whole message is one of these (no typo fixing)
//! alone = ["room"]                     # a message that is only these entities means this intent
//! needs = ["room", "session"]          # without one of these entities, phrases count as keywords
//! social = true                        # greetings and thanks: no weight against other intents
//! slots = [{ name = "topic", entity = "topic", required = false }]
//! response = { action = "next_sessions" }      # or: response.reply.en = "…"
//! examples = ["whats next", "nxt talk pls"]
//! counter_examples = ["next year maybe"]
//!
//! [[entity]]
//! name = "skill"
//! values.video = ["video", "webrtc", "streaming"]
//!
//! [spellings]            # SMS spellings: word = "what it stands for"
//! nxt = "next"
//!
//! [settings]             # at most one file sets these
//! threshold = 0.5
//! margin = 0.1
//! ```
//!
//! Everything here is syntax and local checks (unknown fields, bad values, empty lists). Checks that
//! need the whole set (duplicate names, regular expressions, phrases claimed twice, intents that can
//! never win) happen when the set is compiled, in [`super::matcher`].

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use serde::Deserialize;
use toml::Spanned;

use super::{
    Action, Definitions, EntityDef, IntentDef, Lang, Loc, Response, Settings, Slot, Sourced,
};

/// A problem in the intent files, with where it is.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct Diagnostic {
    pub loc: Option<Loc>,
    pub message: String,
}

impl Diagnostic {
    pub fn at(loc: &Loc, message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc: Some(loc.clone()),
            message: message.into(),
        }
    }

    pub fn general(message: impl Into<String>) -> Diagnostic {
        Diagnostic {
            loc: None,
            message: message.into(),
        }
    }
}

impl fmt::Display for Diagnostic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.loc {
            Some(loc) => write!(f, "{loc}: {}", self.message),
            None => f.write_str(&self.message),
        }
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawFile {
    #[serde(default)]
    intent: Vec<Spanned<RawIntent>>,
    #[serde(default)]
    entity: Vec<Spanned<RawEntity>>,
    #[serde(default)]
    spellings: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    filler: Vec<Spanned<String>>,
    #[serde(default)]
    settings: Option<Spanned<RawSettings>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawIntent {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    #[serde(default)]
    priority: Option<Spanned<i64>>,
    #[serde(default)]
    phrases: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    #[serde(default)]
    keywords: RawKeywords,
    #[serde(default)]
    patterns: Vec<Spanned<String>>,
    #[serde(default)]
    exact: Vec<Spanned<String>>,
    #[serde(default)]
    alone: Vec<Spanned<String>>,
    #[serde(default)]
    needs: Vec<Spanned<String>>,
    #[serde(default)]
    social: bool,
    #[serde(default)]
    slots: Vec<Spanned<RawSlot>>,
    #[serde(default)]
    response: Option<Spanned<RawResponse>>,
    #[serde(default)]
    examples: Vec<Spanned<String>>,
    #[serde(default)]
    counter_examples: Vec<Spanned<String>>,
}

#[derive(Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct RawKeywords {
    #[serde(default)]
    any: Vec<Spanned<String>>,
    #[serde(default)]
    all: Vec<Spanned<String>>,
    #[serde(default)]
    none: Vec<Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSlot {
    name: String,
    entity: Spanned<String>,
    #[serde(default)]
    required: bool,
    /// The follow-up question when the slot is required and missing, per language.
    #[serde(default)]
    ask: BTreeMap<String, String>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawResponse {
    #[serde(default)]
    action: Option<Spanned<String>>,
    #[serde(default)]
    skill: Option<Spanned<String>>,
    #[serde(default)]
    reply: BTreeMap<Spanned<String>, Spanned<String>>,
    #[serde(default)]
    empty: BTreeMap<Spanned<String>, Spanned<String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawEntity {
    name: Spanned<String>,
    #[serde(default)]
    description: String,
    values: BTreeMap<Spanned<String>, Vec<Spanned<String>>>,
    /// How to write a value in replies, per language: `labels.es.messaging = "mensajería"`.
    #[serde(default)]
    labels: BTreeMap<Spanned<String>, BTreeMap<Spanned<String>, String>>,
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawSettings {
    #[serde(default)]
    threshold: Option<f64>,
    #[serde(default)]
    margin: Option<f64>,
}

/// Turns byte offsets of one file into line:column locations.
struct Locator {
    file: Arc<str>,
    line_starts: Vec<usize>,
    text: Arc<str>,
}

impl Locator {
    fn new(file: &str, text: &str) -> Locator {
        let mut line_starts = vec![0];
        line_starts.extend(text.match_indices('\n').map(|(i, _)| i + 1));
        Locator {
            file: file.into(),
            line_starts,
            text: text.into(),
        }
    }

    fn loc(&self, offset: usize) -> Loc {
        let line = self.line_starts.partition_point(|&s| s <= offset).max(1);
        let start = self.line_starts[line - 1];
        let column = self.text[start..offset.min(self.text.len())]
            .chars()
            .count()
            + 1;
        Loc {
            file: self.file.clone(),
            line: line as u32,
            column: column as u32,
        }
    }

    fn of<T>(&self, spanned: &Spanned<T>) -> Loc {
        self.loc(spanned.span().start)
    }

    fn sourced(&self, s: &Spanned<String>) -> Sourced {
        Sourced {
            text: s.get_ref().clone(),
            loc: self.of(s),
        }
    }
}

/// Reads every `*.toml` file in `dir`, in name order.
pub fn load_dir(dir: &Path) -> Result<Definitions, Vec<Diagnostic>> {
    let entries = std::fs::read_dir(dir).map_err(|err| {
        vec![Diagnostic::general(format!(
            "cannot read the intents folder {}: {err}",
            dir.display()
        ))]
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.extension().is_some_and(|x| x == "toml") && p.is_file())
        .collect();
    paths.sort();
    if paths.is_empty() {
        return Err(vec![Diagnostic::general(format!(
            "the intents folder {} has no .toml files",
            dir.display()
        ))]);
    }
    let mut files = Vec::with_capacity(paths.len());
    let mut diagnostics = Vec::new();
    for path in paths {
        match std::fs::read_to_string(&path) {
            Ok(text) => files.push((path.display().to_string(), text)),
            Err(err) => diagnostics.push(Diagnostic::general(format!(
                "{}: cannot read the file: {err}",
                path.display()
            ))),
        }
    }
    if !diagnostics.is_empty() {
        return Err(diagnostics);
    }
    parse_files(&files)
}

/// Parses the text of intent files given as `(name, text)` pairs.
pub fn parse_files(files: &[(String, String)]) -> Result<Definitions, Vec<Diagnostic>> {
    let mut defs = Definitions::default();
    let mut diagnostics = Vec::new();
    let mut settings_from: Option<Loc> = None;
    for (name, text) in files {
        defs.files.push(name.clone());
        let locator = Locator::new(name, text);
        let raw: RawFile = match toml::from_str(text) {
            Ok(raw) => raw,
            Err(err) => {
                let loc = err.span().map(|span| locator.loc(span.start));
                diagnostics.push(Diagnostic {
                    loc,
                    message: err.message().trim_end().to_string(),
                });
                continue;
            }
        };
        for intent in &raw.intent {
            match intent_def(&locator, intent) {
                Ok(def) => defs.intents.push(def),
                Err(mut errs) => diagnostics.append(&mut errs),
            }
        }
        for entity in &raw.entity {
            match entity_def(&locator, entity) {
                Ok(def) => defs.entities.push(def),
                Err(err) => diagnostics.push(err),
            }
        }
        for (from, to) in &raw.spellings {
            if from.get_ref().split_whitespace().count() != 1 || to.get_ref().trim().is_empty() {
                diagnostics.push(Diagnostic::at(
                    &locator.of(from),
                    format!(
                        "spelling {:?} = {:?}: the key must be one word and the value not empty",
                        from.get_ref(),
                        to.get_ref()
                    ),
                ));
                continue;
            }
            defs.spellings
                .push((locator.sourced(from), to.get_ref().clone()));
        }
        defs.filler
            .extend(raw.filler.iter().map(|f| f.get_ref().clone()));
        if let Some(settings) = &raw.settings {
            let loc = locator.of(settings);
            if let Some(first) = &settings_from {
                diagnostics.push(Diagnostic::at(
                    &loc,
                    format!("[settings] is set again; it was first set at {first}"),
                ));
                continue;
            }
            let raw = settings.get_ref();
            let mut s = Settings::default();
            for (value, field, slot) in [
                (raw.threshold, "threshold", &mut s.threshold),
                (raw.margin, "margin", &mut s.margin),
            ] {
                if let Some(v) = value {
                    if !(0.0..=1.0).contains(&v) {
                        diagnostics.push(Diagnostic::at(
                            &loc,
                            format!("settings.{field} = {v} must be between 0 and 1"),
                        ));
                    }
                    *slot = v as f32;
                }
            }
            defs.settings = s;
            settings_from = Some(loc);
        }
    }
    if diagnostics.is_empty() {
        Ok(defs)
    } else {
        Err(diagnostics)
    }
}

fn intent_def(l: &Locator, spanned: &Spanned<RawIntent>) -> Result<IntentDef, Vec<Diagnostic>> {
    let raw = spanned.get_ref();
    let mut errs = Vec::new();
    let name = raw.name.get_ref().trim().to_string();
    let loc = l.of(&raw.name);
    if name.is_empty()
        || !name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
    {
        errs.push(Diagnostic::at(
            &loc,
            format!("intent name {name:?} must be lower-case letters, digits and underscores"),
        ));
    }
    let priority = match &raw.priority {
        None => 50,
        Some(p) if (0..=100).contains(p.get_ref()) => *p.get_ref() as i32,
        Some(p) => {
            errs.push(Diagnostic::at(
                &l.of(p),
                format!("priority {} must be between 0 and 100", p.get_ref()),
            ));
            50
        }
    };
    let mut phrases = Vec::new();
    for (lang, list) in &raw.phrases {
        let Some(lang_parsed) = Lang::parse(lang.get_ref()) else {
            errs.push(Diagnostic::at(
                &l.of(lang),
                format!(
                    "unknown language {:?} for phrases (use \"en\" or \"es\")",
                    lang.get_ref()
                ),
            ));
            continue;
        };
        for p in list {
            phrases.push((lang_parsed, l.sourced(p)));
        }
    }
    let nonempty = |list: &[Spanned<String>], what: &str, errs: &mut Vec<Diagnostic>| {
        for s in list {
            if s.get_ref().trim().is_empty() {
                errs.push(Diagnostic::at(&l.of(s), format!("an empty {what}")));
            }
        }
        list.iter().map(|s| l.sourced(s)).collect::<Vec<_>>()
    };
    for (_, p) in &phrases {
        if p.text.trim().is_empty() {
            errs.push(Diagnostic::at(&p.loc, "an empty phrase"));
        }
    }
    let any = nonempty(&raw.keywords.any, "keyword", &mut errs);
    let all = nonempty(&raw.keywords.all, "keyword", &mut errs);
    let none = nonempty(&raw.keywords.none, "keyword", &mut errs);
    let patterns = nonempty(&raw.patterns, "pattern", &mut errs);
    let exact = nonempty(&raw.exact, "exact message", &mut errs);
    let alone = raw.alone.iter().map(|a| l.sourced(a)).collect();
    let needs = raw.needs.iter().map(|a| l.sourced(a)).collect();
    let slots = raw
        .slots
        .iter()
        .map(|s| {
            let r = s.get_ref();
            Slot {
                name: r.name.clone(),
                entity: l.sourced(&r.entity),
                required: r.required,
                ask: r
                    .ask
                    .iter()
                    .filter_map(|(k, v)| Lang::parse(k).map(|lang| (lang, v.clone())))
                    .collect(),
            }
        })
        .collect();
    let response = match &raw.response {
        None => {
            errs.push(Diagnostic::at(
                &loc,
                format!("intent {name:?} has no response (a reply or an action)"),
            ));
            Response::default()
        }
        Some(r) => match response(l, r) {
            Ok(resp) => resp,
            Err(err) => {
                errs.push(err);
                Response::default()
            }
        },
    };
    if !errs.is_empty() {
        return Err(errs);
    }
    Ok(IntentDef {
        name,
        description: raw.description.clone(),
        priority,
        phrases,
        any,
        all,
        none,
        patterns,
        exact,
        alone,
        needs,
        social: raw.social,
        slots,
        response,
        examples: raw.examples.iter().map(|s| l.sourced(s)).collect(),
        counter_examples: raw.counter_examples.iter().map(|s| l.sourced(s)).collect(),
        loc,
    })
}

fn response(l: &Locator, spanned: &Spanned<RawResponse>) -> Result<Response, Diagnostic> {
    let raw = spanned.get_ref();
    let action = match &raw.action {
        None => Action::Reply,
        Some(a) => Action::parse(a.get_ref()).ok_or_else(|| {
            Diagnostic::at(
                &l.of(a),
                format!(
                    "unknown action {:?}; actions are: {}",
                    a.get_ref(),
                    Action::NAMES.join(", ")
                ),
            )
        })?,
    };
    let by_language = |map: &BTreeMap<Spanned<String>, Spanned<String>>| {
        let mut out = Vec::new();
        for (lang, text) in map {
            let parsed = Lang::parse(lang.get_ref()).ok_or_else(|| {
                Diagnostic::at(
                    &l.of(lang),
                    format!("unknown language {:?} for a reply", lang.get_ref()),
                )
            })?;
            out.push((parsed, l.sourced(text)));
        }
        Ok::<_, Diagnostic>(out)
    };
    let reply = by_language(&raw.reply)?;
    let empty = by_language(&raw.empty)?;
    if action == Action::Reply && reply.is_empty() {
        return Err(Diagnostic::at(
            &l.of(spanned),
            "the response has neither an action nor a reply",
        ));
    }
    Ok(Response {
        action,
        skill: raw.skill.as_ref().map(|s| l.sourced(s)),
        reply,
        empty,
    })
}

fn entity_def(l: &Locator, spanned: &Spanned<RawEntity>) -> Result<EntityDef, Diagnostic> {
    let raw = spanned.get_ref();
    let name = raw.name.get_ref().trim().to_string();
    let loc = l.of(&raw.name);
    if name.is_empty() || !name.chars().all(|c| c.is_ascii_lowercase() || c == '_') {
        return Err(Diagnostic::at(
            &loc,
            format!("entity name {name:?} must be lower-case letters and underscores"),
        ));
    }
    if raw.values.is_empty() {
        return Err(Diagnostic::at(
            &loc,
            format!("entity {name:?} has no values"),
        ));
    }
    let values = raw
        .values
        .iter()
        .map(|(value, synonyms)| {
            let mut all = vec![l.sourced(value)];
            all.extend(synonyms.iter().map(|s| l.sourced(s)));
            (value.get_ref().clone(), all)
        })
        .collect();
    let mut labels = Vec::new();
    for (lang, map) in &raw.labels {
        let parsed = Lang::parse(lang.get_ref()).ok_or_else(|| {
            Diagnostic::at(
                &l.of(lang),
                format!("unknown language {:?} for labels", lang.get_ref()),
            )
        })?;
        for (value, label) in map {
            if !raw.values.keys().any(|v| v.get_ref() == value.get_ref()) {
                return Err(Diagnostic::at(
                    &l.of(value),
                    format!(
                        "label for {:?}, which is not a value of {name:?}",
                        value.get_ref()
                    ),
                ));
            }
            labels.push((parsed, value.get_ref().clone(), label.clone()));
        }
    }
    Ok(EntityDef {
        name,
        description: raw.description.clone(),
        values,
        labels,
        loc,
    })
}
