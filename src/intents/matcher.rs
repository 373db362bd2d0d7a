//! The compiled matcher: intent definitions plus agenda entities in, [`Classification`]s out.
//!
//! # Compiling
//! Every phrase, keyword and entity synonym is normalised (see [`super::normalize`]) and put into
//! one Aho-Corasick automaton (leftmost-longest). Phrases are stored as their words joined by two
//! spaces with a space at each end, and messages are searched in the same form: a match therefore
//! always starts and ends on whole words ("hi" never matches inside "this"), and two matches next to
//! each other never compete for the space between them. Every regular expression goes into one
//! `RegexSet` over the single-spaced normalised text. Whole-message rules (`exact`) are a hash map.
//!
//! # Scoring
//! For each intent, the evidence in a message is:
//! - *strong*: a phrase, a pattern or an exact message of the intent (strength 1.0);
//! - *all-of*: every `keywords.all` word present (strength 0.8);
//! - *alone*: the message is nothing but entities of the intent's `alone` kinds (strength 0.75);
//! - *supported*: a `keywords.any` word together with an entity of a kind the intent has a slot
//!   for ("a video *expert*": the skill supports the keyword) (strength 0.8);
//! - *any-of*: a `keywords.any` word (strength 0.6).
//!
//! An intent with any `keywords.none` word present is ruled out. An intent with `needs` and none of
//! those entities in the message has its strength capped at 0.6 (a keyword's). The *coverage* of an intent is the
//! share of the message's content words (all words but filler such as "please", "the") that its own
//! evidence, an entity, a time expression or an ordinal accounts for; words of `social` intents
//! (greetings, thanks) count as accounted for by every other intent. Then
//!
//! ```text
//! confidence = strength × (0.3 + 0.7 × coverage)
//! ```
//!
//! so a phrase that is the whole message scores 1.0, and a lone keyword in a long unrelated sentence
//! scores little. Intents under `settings.threshold` (0.5) are out; if none is left the result is
//! `fallback`, with confidence `1 − best`. Among the intents within `settings.margin` (0.1) of the
//! best, the highest priority wins; if two share that priority the match is marked ambiguous and the
//! higher confidence (then the name, alphabetically) wins. The same message and files always give
//! the same result.

use std::collections::BTreeMap;
use std::ops::Range;
use std::sync::{Arc, LazyLock};

use aho_corasick::{AhoCorasick, MatchKind};
use memchr::memmem;
use regex::{Regex, RegexSet};
use rustc_hash::{FxHashMap, FxHashSet};
use serde::Serialize;
use serde::ser::SerializeMap;
use smallvec::{SmallVec, smallvec};

use super::file::Diagnostic;
use super::normalize::{Normalized, Normalizer};
use super::time::{self, TimeExpr};
use super::{Action, BUILTIN_ENTITIES, Definitions, FALLBACK, IntentDef, Lang, Loc, Sourced};
use crate::agenda::Agenda;

const STRONG: f32 = 1.0;
const ALL_OF: f32 = 0.8;
const ALONE: f32 = 0.75;
const SUPPORTED: f32 = 0.8;
const ANY_OF: f32 = 0.6;
const BASE: f32 = 0.3;

/// Placeholders reply templates may use.
pub const TEMPLATE_FIELDS: &[&str] = &["conference", "scope", "skill", "title", "count", "url"];

/// Words that never count against coverage, on top of the files' `filler` lists.
const BUILTIN_FILLER: &[&str] = &["the", "a", "an", "el", "la", "los", "las", "un", "una"];

/// Words that mark Spanish and English, for messages whose language no phrase decided.
const SPANISH: &[&str] = &[
    "que",
    "donde",
    "cuando",
    "hay",
    "de",
    "del",
    "por",
    "para",
    "es",
    "esta",
    "sobre",
    "charla",
    "charlas",
    "hola",
    "gracias",
    "ayuda",
    "quiero",
    "puedo",
    "como",
    "cual",
    "mi",
    "proxima",
    "siguiente",
    "hoy",
    "manana",
    "tarde",
    "ahora",
    "sesion",
    "sesiones",
    "con",
    "experto",
    "buenos",
    "buenas",
    "dias",
    "quien",
    "habla",
    "sala",
];
const ENGLISH: &[&str] = &[
    "the", "what", "whats", "where", "when", "is", "are", "of", "for", "to", "next", "talk",
    "talks", "hi", "hello", "thanks", "help", "my", "how", "can", "you", "who", "session", "with",
    "about", "today", "now", "room",
];

/// What an intent's response says, per language, for the conversation engine.
#[derive(Clone, Debug, Default)]
pub struct Templates {
    pub reply: Vec<(Lang, String)>,
    /// For actions that list sessions: the reply when there are none.
    pub empty: Vec<(Lang, String)>,
    /// For `hand_off`: the skill when the message names none.
    pub skill: Option<String>,
    /// `(name, entity kind, required, question per language)`.
    #[allow(clippy::type_complexity)]
    pub slots: Vec<(String, String, bool, Vec<(Lang, String)>)>,
}

impl Templates {
    /// The text for `lang`, else English, else any.
    pub fn pick(list: &[(Lang, String)], lang: Lang) -> Option<&str> {
        list.iter()
            .find(|(l, _)| *l == lang)
            .or_else(|| list.iter().find(|(l, _)| *l == Lang::En))
            .or(list.first())
            .map(|(_, t)| t.as_str())
    }
}

/// An entity inside an intent phrase: kind, value, and token offsets within the phrase.
type Embedded = (u16, Arc<str>, Range<usize>);

/// What one automaton pattern stands for. One normalised string can stand for several things.
#[derive(Clone, Debug)]
enum Claim {
    Phrase { intent: u16, lang: Lang },
    Any { intent: u16 },
    All { intent: u16, bit: u8 },
    Entity { kind: u16, value: Arc<str> },
}

#[derive(Debug)]
struct CompiledIntent {
    name: Arc<str>,
    priority: i32,
    action: Action,
    /// `(1 << number of keywords.all) - 1`, or 0 when there are none.
    all_mask: u32,
    /// Entity kinds that alone mean this intent.
    alone: Vec<u16>,
    /// Entity kinds one of which must be present for strong evidence to count as strong.
    needs: Vec<u16>,
    /// Entity kinds of the intent's slots: they support its keywords.
    slots: Vec<u16>,
    templates: Templates,
    /// `keywords.none`, in the automaton's spaced form, each with its searcher (built once, not
    /// for every message). Checked on the whole message, not through the automaton, so a longer
    /// phrase around one cannot hide it.
    none: Vec<(Box<str>, memmem::Finder<'static>)>,
    social: bool,
}

#[derive(Debug)]
struct CompiledPattern {
    intent: u16,
    regex: Regex,
    source: Box<str>,
    /// Named capture groups and the entity kind each fills.
    captures: Vec<(Box<str>, u16)>,
}

/// A value of an entity found in a message.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(untagged)]
pub enum EntityValue {
    Text(Arc<str>),
    Time(TimeExpr),
}

/// An entity found in a message.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct EntityMatch {
    pub kind: Arc<str>,
    pub value: EntityValue,
    /// The normalised words it was found in.
    pub text: String,
    #[serde(skip)]
    pub tokens: Range<usize>,
}

/// One intent's score for a message, for explanations.
#[derive(Clone, Debug, Serialize)]
pub struct Score {
    pub intent: Arc<str>,
    pub confidence: f32,
    pub strength: f32,
    pub coverage: f32,
}

/// A phrase the automaton found and what it stands for.
#[derive(Clone, Debug, Serialize)]
pub struct PhraseHit {
    pub text: String,
    pub claims: Vec<String>,
}

/// Why a message got its intent.
#[derive(Clone, Debug, Default, Serialize)]
pub struct Explain {
    pub normalized: String,
    pub corrections: Vec<(String, String)>,
    pub exact: Option<String>,
    pub phrases: Vec<PhraseHit>,
    pub patterns: Vec<(String, String)>,
    /// Intents ruled out by a `keywords.none` word, with the word.
    pub ruled_out: Vec<(String, String)>,
    pub scores: Vec<Score>,
    pub threshold: f32,
}

/// The result of classifying one message.
#[derive(Clone, Debug, Serialize)]
pub struct Classification {
    pub text: String,
    pub intent: Arc<str>,
    pub confidence: f32,
    pub language: Lang,
    /// False when nothing in the message says which language it is ("2", "ok"): the conversation
    /// then keeps the language it was in.
    #[serde(skip)]
    pub language_known: bool,
    pub action: Action,
    #[serde(serialize_with = "entities_as_object")]
    pub entities: Vec<EntityMatch>,
    /// Another intent that came within the margin at the same priority.
    pub ambiguous_with: Option<Arc<str>>,
    /// Why: filled by [`Matcher::explain`], empty from [`Matcher::classify`] (the hot path).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub explain: Option<Explain>,
}

impl Classification {
    /// The first entity of a kind.
    pub fn entity(&self, kind: &str) -> Option<&EntityMatch> {
        self.entities.iter().find(|e| &*e.kind == kind)
    }
}

/// Entities as a JSON object: each kind with its first value.
fn entities_as_object<S: serde::Serializer>(
    entities: &[EntityMatch],
    s: S,
) -> Result<S::Ok, S::Error> {
    let mut seen = FxHashSet::default();
    let mut map = s.serialize_map(None)?;
    for e in entities {
        if seen.insert(e.kind.clone()) {
            map.serialize_entry(&*e.kind, &e.value)?;
        }
    }
    map.end()
}

/// Sizes of a compiled matcher, for status pages and benchmarks.
#[derive(Clone, Copy, Debug, Default, Serialize)]
pub struct Stats {
    pub intents: usize,
    pub phrases: usize,
    pub entity_phrases: usize,
    pub patterns: usize,
    pub vocabulary: usize,
}

/// A compiled, immutable intent set. Build with [`Matcher::compile`].
#[derive(Debug)]
pub struct Matcher {
    intents: Vec<CompiledIntent>,
    normalizer: Normalizer,
    automaton: AhoCorasick,
    claims: Vec<Vec<Claim>>,
    /// For each automaton pattern of an intent phrase, the entities inside it ("when is the
    /// keynote" holds kind=keynote), with their token offsets in the phrase. A phrase match hides
    /// the shorter matches inside it, so these are worked out once at compile time.
    embedded: Vec<Vec<Embedded>>,
    pattern_texts: Vec<Box<str>>,
    regex_set: RegexSet,
    patterns: Vec<CompiledPattern>,
    exact: FxHashMap<Box<str>, u16>,
    filler: FxHashSet<Box<str>>,
    kinds: Vec<Arc<str>>,
    settings: super::Settings,
    fallback: u16,
    /// `(entity kind, value, language, label)` from the files' `labels`.
    labels: Vec<(String, String, Lang, String)>,
    stats: Stats,
}

/// Builds the automaton's key for a normalised phrase.
fn key(n: &Normalized) -> Option<String> {
    (!n.tokens.is_empty()).then(|| n.spaced.clone())
}

impl Matcher {
    /// Compiles definitions and, when given, the agenda's rooms, tracks, tags, speakers and session
    /// titles as entities. Any problem is returned with its place; nothing is half-built.
    pub fn compile(
        defs: &Definitions,
        agenda: Option<&Agenda>,
    ) -> Result<Matcher, Vec<Diagnostic>> {
        let mut errs = Vec::new();

        // Spellings, checked for duplicates.
        let mut seen_spelling: FxHashMap<String, Loc> = FxHashMap::default();
        for (from, _) in &defs.spellings {
            let k = crate::text::fold(from.text.trim());
            if let Some(first) = seen_spelling.insert(k.clone(), from.loc.clone()) {
                errs.push(Diagnostic::at(
                    &from.loc,
                    format!("spelling {k:?} is defined twice; first at {first}"),
                ));
            }
        }
        let mut normalizer = Normalizer::new(
            defs.spellings
                .iter()
                .map(|(from, to)| (from.text.clone(), to.clone())),
        );

        // Entity kinds: built-in, then the operator's.
        let mut kinds: Vec<Arc<str>> = BUILTIN_ENTITIES.iter().map(|k| Arc::from(*k)).collect();
        for e in &defs.entities {
            if kinds.iter().any(|k| **k == *e.name) {
                errs.push(Diagnostic::at(
                    &e.loc,
                    format!(
                        "entity {:?} is defined twice (or is a built-in entity)",
                        e.name
                    ),
                ));
            } else {
                kinds.push(e.name.as_str().into());
            }
        }
        let kind_id = |name: &str| kinds.iter().position(|k| **k == *name).map(|i| i as u16);

        // Intents: names unique, fallback present.
        let mut first_loc: FxHashMap<&str, &Loc> = FxHashMap::default();
        for intent in &defs.intents {
            if let Some(first) = first_loc.insert(&intent.name, &intent.loc) {
                errs.push(Diagnostic::at(
                    &intent.loc,
                    format!(
                        "intent {:?} is defined twice; first at {first}",
                        intent.name
                    ),
                ));
            }
        }
        let fallback = defs.intents.iter().position(|i| i.name == FALLBACK);
        if fallback.is_none() {
            errs.push(Diagnostic::general(format!(
                "there is no intent named {FALLBACK:?}: it is the answer when nothing else matches"
            )));
        }
        if defs.intents.len() > u16::MAX as usize {
            errs.push(Diagnostic::general("too many intents"));
        }

        let mut table: BTreeMap<String, Vec<Claim>> = BTreeMap::new();
        let mut phrase_owner: FxHashMap<String, (u16, Loc)> = FxHashMap::default();
        let mut intents = Vec::with_capacity(defs.intents.len());
        let mut exact = FxHashMap::default();
        let mut patterns: Vec<CompiledPattern> = Vec::new();
        let mut stats = Stats::default();
        for (i, def) in defs.intents.iter().enumerate() {
            let id = i as u16;
            check_intent_shape(def, &mut errs);
            for (lang, phrase) in &def.phrases {
                let n = normalizer.phrase(&phrase.text);
                normalizer.learn(&n, 0);
                let Some(k) = key(&n) else {
                    errs.push(Diagnostic::at(
                        &phrase.loc,
                        format!("phrase {:?} has no words after normalisation", phrase.text),
                    ));
                    continue;
                };
                if let Some((other, other_loc)) = phrase_owner.get(&k) {
                    let other_def = &defs.intents[*other as usize];
                    if *other != id && other_def.priority == def.priority {
                        errs.push(Diagnostic::at(
                            &phrase.loc,
                            format!(
                                "phrase {:?} is claimed by {:?} and {:?} at the same priority ({}); first at {other_loc}",
                                n.text, other_def.name, def.name, def.priority
                            ),
                        ));
                    }
                } else {
                    phrase_owner.insert(k.clone(), (id, phrase.loc.clone()));
                }
                table.entry(k).or_default().push(Claim::Phrase {
                    intent: id,
                    lang: *lang,
                });
                stats.phrases += 1;
            }
            let mut keyword =
                |list: &[Sourced], make: &dyn Fn(usize) -> Claim, errs: &mut Vec<Diagnostic>| {
                    for (bit, kw) in list.iter().enumerate() {
                        let n = normalizer.phrase(&kw.text);
                        normalizer.learn(&n, 0);
                        match key(&n) {
                            Some(k) => table.entry(k).or_default().push(make(bit)),
                            None => errs.push(Diagnostic::at(
                                &kw.loc,
                                format!("keyword {:?} has no words after normalisation", kw.text),
                            )),
                        }
                    }
                };
            keyword(&def.any, &|_| Claim::Any { intent: id }, &mut errs);
            keyword(
                &def.all,
                &|bit| Claim::All {
                    intent: id,
                    bit: bit as u8,
                },
                &mut errs,
            );
            let mut none = Vec::new();
            for kw in &def.none {
                match key(&normalizer.phrase(&kw.text)) {
                    Some(k) => {
                        let finder = memmem::Finder::new(k.as_bytes()).into_owned();
                        none.push((k.into_boxed_str(), finder));
                    }
                    None => errs.push(Diagnostic::at(
                        &kw.loc,
                        format!("keyword {:?} has no words after normalisation", kw.text),
                    )),
                }
            }
            if def.all.len() > 16 {
                errs.push(Diagnostic::at(
                    &def.loc,
                    "keywords.all may hold at most 16 words",
                ));
            }
            for e in &def.exact {
                let n = normalizer.phrase(&e.text);
                exact.insert(crate::text::fold(e.text.trim()).into_boxed_str(), id);
                if n.tokens.is_empty() {
                    errs.push(Diagnostic::at(&e.loc, "an exact message with no words"));
                }
            }
            for p in &def.patterns {
                match Regex::new(&p.text) {
                    Ok(regex) => {
                        let mut captures = Vec::new();
                        for name in regex.capture_names().flatten() {
                            match kind_id(name) {
                                Some(k) => captures.push((name.into(), k)),
                                None => errs.push(Diagnostic::at(
                                    &p.loc,
                                    format!(
                                        "capture group {name:?} is not an entity kind (known: {})",
                                        join(&kinds)
                                    ),
                                )),
                            }
                        }
                        patterns.push(CompiledPattern {
                            intent: id,
                            regex,
                            source: p.text.as_str().into(),
                            captures,
                        });
                    }
                    Err(err) => errs.push(Diagnostic::at(
                        &p.loc,
                        format!(
                            "invalid regular expression: {}",
                            err.to_string().replace('\n', "\n    ")
                        ),
                    )),
                }
            }
            let kind_list = |list: &[Sourced], errs: &mut Vec<Diagnostic>| {
                let mut out = Vec::new();
                for a in list {
                    match kind_id(&a.text) {
                        Some(k) => out.push(k),
                        None => errs.push(Diagnostic::at(
                            &a.loc,
                            format!("unknown entity kind {:?} (known: {})", a.text, join(&kinds)),
                        )),
                    }
                }
                out
            };
            let alone = kind_list(&def.alone, &mut errs);
            let needs = kind_list(&def.needs, &mut errs);
            let mut slot_kinds = Vec::new();
            for slot in &def.slots {
                match kind_id(&slot.entity.text) {
                    Some(k) => slot_kinds.push(k),
                    None => errs.push(Diagnostic::at(
                        &slot.entity.loc,
                        format!(
                            "unknown entity kind {:?} (known: {})",
                            slot.entity.text,
                            join(&kinds)
                        ),
                    )),
                }
            }
            for (_, reply) in def.response.reply.iter().chain(&def.response.empty) {
                check_template(reply, &mut errs);
            }
            if let Some(skill) = &def.response.skill {
                let known = defs
                    .entities
                    .iter()
                    .find(|e| e.name == "skill")
                    .is_none_or(|e| e.values.iter().any(|(v, _)| *v == skill.text));
                if !known {
                    errs.push(Diagnostic::at(
                        &skill.loc,
                        format!(
                            "skill {:?} is not a value of the \"skill\" entity",
                            skill.text
                        ),
                    ));
                }
            }
            intents.push(CompiledIntent {
                name: def.name.as_str().into(),
                priority: def.priority,
                action: def.response.action,
                all_mask: if def.all.is_empty() {
                    0
                } else {
                    (1u32 << def.all.len()) - 1
                },
                alone,
                needs,
                slots: slot_kinds,
                templates: Templates {
                    reply: def
                        .response
                        .reply
                        .iter()
                        .map(|(l, t)| (*l, t.text.clone()))
                        .collect(),
                    empty: def
                        .response
                        .empty
                        .iter()
                        .map(|(l, t)| (*l, t.text.clone()))
                        .collect(),
                    skill: def.response.skill.as_ref().map(|s| s.text.clone()),
                    slots: def
                        .slots
                        .iter()
                        .map(|slot| {
                            (
                                slot.name.clone(),
                                slot.entity.text.clone(),
                                slot.required,
                                slot.ask.clone(),
                            )
                        })
                        .collect(),
                },
                none,
                social: def.social,
            });
        }
        stats.patterns = patterns.len();
        never_win(defs, &normalizer, &phrase_owner, &mut errs);

        // Operator entities.
        for e in &defs.entities {
            let Some(kind) = kind_id(&e.name) else {
                continue;
            };
            for (value, synonyms) in &e.values {
                let value: Arc<str> = value.as_str().into();
                for syn in synonyms {
                    let n = normalizer.phrase(&syn.text);
                    normalizer.learn(&n, 0);
                    match key(&n) {
                        Some(k) => {
                            let claims = table.entry(k).or_default();
                            let known = claims.iter().any(|c| {
                                matches!(c, Claim::Entity { kind: k2, value: v } if *k2 == kind && *v == value)
                            });
                            if !known {
                                claims.push(Claim::Entity {
                                    kind,
                                    value: value.clone(),
                                });
                                stats.entity_phrases += 1;
                            }
                        }
                        None => errs.push(Diagnostic::at(&syn.loc, "a synonym with no words")),
                    }
                }
            }
        }
        // Agenda entities.
        if let Some(agenda) = agenda {
            for (kind, value, phrase) in agenda_entities(agenda) {
                let Some(kind) = kind_id(kind) else { continue };
                let n = normalizer.phrase(&phrase);
                if n.tokens.is_empty() {
                    continue;
                }
                normalizer.learn(&n, 1);
                if let Some(k) = key(&n) {
                    let claims = table.entry(k).or_default();
                    let duplicate = claims.iter().any(|c| matches!(c, Claim::Entity { kind: k2, value: v } if *k2 == kind && **v == *value));
                    if !duplicate {
                        claims.push(Claim::Entity {
                            kind,
                            value: value.into(),
                        });
                        stats.entity_phrases += 1;
                    }
                }
            }
        }

        if !errs.is_empty() {
            return Err(errs);
        }
        let (pattern_texts, claims): (Vec<Box<str>>, Vec<Vec<Claim>>) = table
            .into_iter()
            .map(|(k, v)| (k.into_boxed_str(), v))
            .unzip();
        let embedded = embedded_entities(&pattern_texts, &claims).map_err(|err| {
            vec![Diagnostic::general(format!(
                "cannot build the entity automaton: {err}"
            ))]
        })?;
        let automaton = AhoCorasick::builder()
            .match_kind(MatchKind::LeftmostLongest)
            .build(pattern_texts.iter().map(|p| p.as_bytes()))
            .map_err(|err| {
                vec![Diagnostic::general(format!(
                    "cannot build the phrase automaton: {err}"
                ))]
            })?;
        let regex_set = RegexSet::new(patterns.iter().map(|p| &*p.source)).map_err(|err| {
            vec![Diagnostic::general(format!(
                "cannot build the pattern set: {err}"
            ))]
        })?;
        let mut filler: FxHashSet<Box<str>> =
            BUILTIN_FILLER.iter().map(|w| Box::from(*w)).collect();
        for f in &defs.filler {
            for w in normalizer.phrase(f).words() {
                filler.insert(w.into());
            }
        }
        stats.intents = intents.len();
        stats.vocabulary = normalizer.vocabulary_len();
        Ok(Matcher {
            intents,
            normalizer,
            automaton,
            claims,
            embedded,
            pattern_texts,
            regex_set,
            patterns,
            exact,
            filler,
            kinds,
            settings: defs.settings,
            fallback: fallback.unwrap_or(0) as u16,
            labels: defs
                .entities
                .iter()
                .flat_map(|e| {
                    e.labels.iter().map(|(lang, value, label)| {
                        (e.name.clone(), value.clone(), *lang, label.clone())
                    })
                })
                .collect(),
            stats,
        })
    }

    pub fn stats(&self) -> Stats {
        self.stats
    }

    /// How an entity value is written in replies in `lang`: its label, else the value with
    /// underscores as spaces.
    pub fn label(&self, kind: &str, value: &str, lang: Lang) -> String {
        self.labels
            .iter()
            .find(|(k, v, l, _)| k == kind && v == value && *l == lang)
            .map(|(_, _, _, label)| label.clone())
            .unwrap_or_else(|| value.replace('_', " "))
    }

    /// The response templates of an intent.
    pub fn templates(&self, intent: &str) -> Option<&Templates> {
        self.intents
            .iter()
            .find(|i| &*i.name == intent)
            .map(|i| &i.templates)
    }

    /// The intent names, in definition order.
    pub fn intent_names(&self) -> impl Iterator<Item = &str> {
        self.intents.iter().map(|i| &*i.name)
    }

    /// Classifies one message.
    pub fn classify(&self, message: &str) -> Classification {
        self.run(message, false)
    }

    /// Classifies one message and says why: the normalised text, corrections, every phrase and
    /// pattern found, and the top scores.
    pub fn explain(&self, message: &str) -> Classification {
        self.run(message, true)
    }

    fn run(&self, message: &str, explaining: bool) -> Classification {
        let n = self.normalizer.message(message);
        let mut explain = Explain::default();
        if explaining {
            explain.normalized = n.text.clone();
            explain.corrections = n.corrections.clone();
            explain.threshold = self.settings.threshold;
        }

        // Whole-message rules come first and are final.
        if let Some(&id) = self.exact.get(n.plain.as_str()) {
            let intent = &self.intents[id as usize];
            if explaining {
                explain.exact = Some(n.plain.clone());
                explain.scores.push(Score {
                    intent: intent.name.clone(),
                    confidence: 1.0,
                    strength: STRONG,
                    coverage: 1.0,
                });
            }
            let (language, language_known) = guess_language(&n, None);
            return Classification {
                text: message.to_string(),
                intent: intent.name.clone(),
                confidence: 1.0,
                language,
                language_known,
                action: intent.action,
                entities: Vec::new(),
                ambiguous_with: None,
                explain: explaining.then_some(explain),
            };
        }

        let tokens = n.tokens.len();
        // Per-token and per-intent scratch stays on the stack for messages of up to `WORDS`
        // words, which SMS messages are: a message's matching allocates little beyond its result.
        let filler: Flags = n.words().map(|w| self.filler.contains(w)).collect();
        let mut shared = filler.clone();
        let content = filler.iter().filter(|f| !**f).count();
        let mut entities: Vec<EntityMatch> = Vec::new();
        let mut evidence: Vec<Evidence> = (0..self.intents.len())
            .map(|_| Evidence::default())
            .collect();

        // Phrases, keywords and entities, in one pass of the automaton.
        for m in self.automaton.find_iter(n.spaced.as_str()) {
            let range = n.token_at_spaced(m.start() + 1)..n.token_at_spaced(m.end());
            let claims = &self.claims[m.pattern().as_usize()];
            let mut described = Vec::new();
            for claim in claims {
                match claim {
                    Claim::Phrase { intent, lang } => {
                        let ev = &mut evidence[*intent as usize];
                        ev.strength = ev.strength.max(STRONG);
                        ev.ranges.push(range.clone());
                        ev.langs[*lang as usize] += 1;
                        if explaining {
                            described.push(format!(
                                "{}: phrase ({})",
                                self.intents[*intent as usize].name,
                                lang.code()
                            ));
                        }
                    }
                    Claim::Any { intent } => {
                        let ev = &mut evidence[*intent as usize];
                        ev.strength = ev.strength.max(ANY_OF);
                        ev.ranges.push(range.clone());
                        if explaining {
                            described
                                .push(format!("{}: keyword", self.intents[*intent as usize].name));
                        }
                    }
                    Claim::All { intent, bit } => {
                        let ev = &mut evidence[*intent as usize];
                        ev.all_hits |= 1 << bit;
                        ev.all_ranges.push(range.clone());
                        if explaining {
                            described.push(format!(
                                "{}: keyword (all of)",
                                self.intents[*intent as usize].name
                            ));
                        }
                    }
                    Claim::Entity { kind, value } => {
                        for t in range.clone() {
                            shared[t] = true;
                        }
                        entities.push(EntityMatch {
                            kind: self.kinds[*kind as usize].clone(),
                            value: EntityValue::Text(value.clone()),
                            text: n.text[n.tokens[range.start].text.start
                                ..n.tokens[range.end - 1].text.end]
                                .to_string(),
                            tokens: range.clone(),
                        });
                        if explaining {
                            described.push(format!("{}={value}", self.kinds[*kind as usize]));
                        }
                    }
                }
            }
            for (kind, value, offsets) in &self.embedded[m.pattern().as_usize()] {
                let r = range.start + offsets.start..range.start + offsets.end;
                for t in r.clone() {
                    shared[t] = true;
                }
                entities.push(EntityMatch {
                    kind: self.kinds[*kind as usize].clone(),
                    value: EntityValue::Text(value.clone()),
                    text: n.text[n.tokens[r.start].text.start..n.tokens[r.end - 1].text.end]
                        .to_string(),
                    tokens: r,
                });
                if explaining {
                    described.push(format!("{}={value} (inside)", self.kinds[*kind as usize]));
                }
            }
            if explaining {
                explain.phrases.push(PhraseHit {
                    text: self.pattern_texts[m.pattern().as_usize()]
                        .trim()
                        .replace("  ", " "),
                    claims: described,
                });
            }
        }

        // Regular expressions.
        if !self.patterns.is_empty() {
            let mut matched: Flags = smallvec![false; self.patterns.len()];
            self.regex_set.matches_read_at(&mut matched, &n.text, 0);
            let which = matched.iter().enumerate().filter(|(_, m)| **m);
            for (p, _) in which {
                let pattern = &self.patterns[p];
                // A pattern with no entity to capture needs only where it matched, which the
                // regex's DFAs find alone; capture groups take another engine over the match.
                let (whole, caps) = if pattern.captures.is_empty() {
                    let Some(m) = pattern.regex.find(&n.text) else {
                        continue;
                    };
                    (m.range(), None)
                } else {
                    let Some(caps) = pattern.regex.captures(&n.text) else {
                        continue;
                    };
                    (caps.get(0).map_or(0..0, |m| m.range()), Some(caps))
                };
                let mut range = n.token_at_text(whole.start)..n.token_at_text(whole.end);
                // Captured free text is not evidence: its words count as covered only where they
                // are words the matcher knows (from phrases, entities or the agenda).
                let mut captured: SmallVec<[Range<usize>; 2]> = SmallVec::new();
                for (name, kind) in &pattern.captures {
                    if let Some(c) = caps.as_ref().and_then(|caps| caps.name(name)) {
                        let value = c.as_str().trim();
                        if value.is_empty() {
                            continue;
                        }
                        let r = n.token_at_text(c.start())..n.token_at_text(c.end());
                        captured.push(r.clone());
                        range.end = range.end.min(r.start).max(range.start);
                        entities.push(EntityMatch {
                            kind: self.kinds[*kind as usize].clone(),
                            value: EntityValue::Text(value.into()),
                            text: value.to_string(),
                            tokens: r,
                        });
                    }
                }
                let ev = &mut evidence[pattern.intent as usize];
                ev.strength = ev.strength.max(STRONG);
                ev.ranges.push(range);
                for r in captured {
                    for t in r {
                        if self.normalizer.is_known(n.word(t)) {
                            ev.ranges.push(t..t + 1);
                        }
                    }
                }
                if explaining {
                    explain.patterns.push((
                        self.intents[pattern.intent as usize].name.to_string(),
                        pattern.source.to_string(),
                    ));
                }
            }
        }

        // Time expressions and ordinals.
        for t in time::find(&n) {
            for i in t.tokens.clone() {
                shared[i] = true;
            }
            entities.push(EntityMatch {
                kind: self.kinds[kind_index("time")].clone(),
                value: EntityValue::Time(t.expr),
                text: n.text
                    [n.tokens[t.tokens.start].text.start..n.tokens[t.tokens.end - 1].text.end]
                    .to_string(),
                tokens: t.tokens,
            });
        }
        for (range, value) in ordinals(&n, &entities) {
            for i in range.clone() {
                shared[i] = true;
            }
            entities.push(EntityMatch {
                kind: self.kinds[kind_index("ordinal")].clone(),
                text: n.text[n.tokens[range.start].text.start..n.tokens[range.end - 1].text.end]
                    .to_string(),
                value: EntityValue::Text(value.into()),
                tokens: range,
            });
        }
        entities.sort_by_key(|e| e.tokens.start);
        derive_topic(&mut entities, &self.kinds);

        // Words of social intents (greetings, thanks) do not count against the others.
        let mut social: Flags = smallvec![false; tokens];
        for (i, intent) in self.intents.iter().enumerate() {
            if intent.social {
                for r in &evidence[i].ranges {
                    for t in r.clone() {
                        social[t] = true;
                    }
                }
            }
        }

        // Scores.
        let kind_ids: SmallVec<[u16; 8]> = entities
            .iter()
            .map(|e| {
                self.kinds
                    .iter()
                    .position(|k| Arc::ptr_eq(k, &e.kind) || **k == *e.kind)
                    .unwrap_or(u16::MAX as usize) as u16
            })
            .collect();
        let mut scores: SmallVec<[(f32, usize, f32, f32); 8]> = SmallVec::new();
        for (i, intent) in self.intents.iter().enumerate() {
            let ev = &mut evidence[i];
            // Entity kinds are compared by id: `kind_ids` holds the id of each entity found.
            let has_kind = |kinds: &[u16]| kind_ids.iter().any(|k| kinds.contains(k));
            let alone = !intent.alone.is_empty()
                && content > 0
                && has_kind(&intent.alone)
                && (0..tokens).all(|t| {
                    filler[t]
                        || entities
                            .iter()
                            .zip(&kind_ids)
                            .any(|(e, k)| e.tokens.contains(&t) && intent.alone.contains(k))
                });
            if ev.strength == 0.0 && ev.all_hits == 0 && !alone {
                continue;
            }
            if let Some((word, _)) = intent
                .none
                .iter()
                .find(|(_, finder)| finder.find(n.spaced.as_bytes()).is_some())
            {
                if explaining {
                    explain
                        .ruled_out
                        .push((intent.name.to_string(), word.trim().replace("  ", " ")));
                }
                continue;
            }
            if intent.all_mask != 0 && ev.all_hits == intent.all_mask {
                ev.strength = ev.strength.max(ALL_OF);
                let all_ranges = std::mem::take(&mut ev.all_ranges);
                ev.ranges.extend(all_ranges);
            }
            if alone {
                ev.strength = ev.strength.max(ALONE);
            }
            if ev.strength == ANY_OF && has_kind(&intent.slots) {
                ev.strength = SUPPORTED;
            }
            if !intent.needs.is_empty() && !has_kind(&intent.needs) {
                ev.strength = ev.strength.min(ANY_OF);
            }
            if ev.strength == 0.0 {
                continue;
            }
            let mut covered = 0usize;
            for t in 0..tokens {
                let own = ev.ranges.iter().any(|r| r.contains(&t));
                let polite = social[t] && !intent.social;
                if (own || shared[t] || polite) && !filler[t] {
                    covered += 1;
                }
            }
            let coverage = if content == 0 {
                1.0
            } else {
                covered as f32 / content as f32
            };
            let confidence = ev.strength * (BASE + (1.0 - BASE) * coverage);
            scores.push((confidence, i, ev.strength, coverage));
        }
        scores.sort_by(|a, b| {
            b.0.total_cmp(&a.0)
                .then(self.intents[b.1].priority.cmp(&self.intents[a.1].priority))
                .then(self.intents[a.1].name.cmp(&self.intents[b.1].name))
        });
        explain.scores = scores
            .iter()
            .filter(|_| explaining)
            .take(5)
            .map(|&(confidence, i, strength, coverage)| Score {
                intent: self.intents[i].name.clone(),
                confidence,
                strength,
                coverage,
            })
            .collect();

        let best = scores
            .first()
            .copied()
            .filter(|s| s.0 >= self.settings.threshold);
        let (winner, confidence, ambiguous_with) = match best {
            None => {
                let top = scores.first().map_or(0.0, |s| s.0);
                (self.fallback as usize, 1.0 - top, None)
            }
            Some((best_conf, best_i, _, _)) => {
                let near: SmallVec<[&(f32, usize, f32, f32); 8]> = scores
                    .iter()
                    .filter(|s| {
                        s.0 >= self.settings.threshold && s.0 >= best_conf - self.settings.margin
                    })
                    .collect();
                let top_priority = near
                    .iter()
                    .map(|s| self.intents[s.1].priority)
                    .max()
                    .unwrap_or(0);
                let mut at_top = near
                    .iter()
                    .filter(|s| self.intents[s.1].priority == top_priority);
                let chosen = at_top.next().map_or((best_conf, best_i, 0.0, 0.0), |s| **s);
                let rival = at_top.next().map(|s| self.intents[s.1].name.clone());
                (chosen.1, chosen.0, rival)
            }
        };
        let intent = &self.intents[winner];
        let phrase_lang = (winner != self.fallback as usize).then(|| evidence[winner].langs);
        let (language, language_known) = guess_language(&n, phrase_lang);
        Classification {
            text: message.to_string(),
            intent: intent.name.clone(),
            confidence: confidence.clamp(0.0, 1.0),
            language,
            language_known,
            action: intent.action,
            entities,
            ambiguous_with,
            explain: explaining.then_some(explain),
        }
    }
}

/// The words a message's scratch flags hold without allocating (in `Matcher::run`).
const WORDS: usize = 32;

/// One flag per token (or per pattern).
type Flags = SmallVec<[bool; WORDS]>;

/// An intent's evidence in token ranges: most intents have one or two in a message.
type Ranges = SmallVec<[Range<usize>; 2]>;

/// The evidence for one intent in one message.
#[derive(Default)]
struct Evidence {
    strength: f32,
    ranges: Ranges,
    all_hits: u32,
    all_ranges: Ranges,
    /// Phrase matches per language (index: `Lang as usize`).
    langs: [u16; 2],
}

fn kind_index(kind: &str) -> usize {
    BUILTIN_ENTITIES
        .iter()
        .position(|k| *k == kind)
        .expect("a built-in entity kind")
}

fn join(kinds: &[Arc<str>]) -> String {
    kinds.iter().map(|k| &**k).collect::<Vec<_>>().join(", ")
}

/// The language of a message: the language of the winning intent's phrases if they agree, else the
/// one whose marker words are more frequent, else English.
fn guess_language(n: &Normalized, phrase_langs: Option<[u16; 2]>) -> (Lang, bool) {
    if let Some([en, es]) = phrase_langs {
        if es > en {
            return (Lang::Es, true);
        }
        if en > es {
            return (Lang::En, true);
        }
    }
    // Each marker word with whether it marks Spanish and English, in one table built once.
    static MARKERS: LazyLock<FxHashMap<&'static str, (bool, bool)>> = LazyLock::new(|| {
        let mut markers = FxHashMap::default();
        for w in SPANISH {
            markers.entry(*w).or_insert((false, false)).0 = true;
        }
        for w in ENGLISH {
            markers.entry(*w).or_insert((false, false)).1 = true;
        }
        markers
    });
    let (mut en, mut es) = (0, 0);
    for w in n.words() {
        if let Some(&(spanish, english)) = MARKERS.get(w) {
            es += u32::from(spanish);
            en += u32::from(english);
        }
    }
    // Spanish punctuation ("¿", "¡") says Spanish too.
    if n.folded.contains(['¿', '¡']) {
        es += 1;
    }
    match es.cmp(&en) {
        std::cmp::Ordering::Greater => (Lang::Es, true),
        std::cmp::Ordering::Less => (Lang::En, true),
        std::cmp::Ordering::Equal => (Lang::En, false),
    }
}

/// Ordinals: "1" to "20" on their own, "first" … "fifth", "last", "that one", and their Spanish
/// forms; not inside a time expression.
fn ordinals(n: &Normalized, entities: &[EntityMatch]) -> Vec<(Range<usize>, &'static str)> {
    const WORDS: &[(&str, &str)] = &[
        ("first", "1"),
        ("second", "2"),
        ("third", "3"),
        ("fourth", "4"),
        ("fifth", "5"),
        ("primero", "1"),
        ("primera", "1"),
        ("segundo", "2"),
        ("segunda", "2"),
        ("tercero", "3"),
        ("tercera", "3"),
        ("last", "last"),
        ("ultimo", "last"),
        ("ultima", "last"),
        ("ese", "that"),
        ("esa", "that"),
    ];
    const NUMBERS: [&str; 20] = [
        "1", "2", "3", "4", "5", "6", "7", "8", "9", "10", "11", "12", "13", "14", "15", "16",
        "17", "18", "19", "20",
    ];
    let taken = |i: usize| entities.iter().any(|e| e.tokens.contains(&i));
    let words: Vec<&str> = n.words().collect();
    let mut out = Vec::new();
    let mut i = 0;
    while i < words.len() {
        if taken(i) {
            i += 1;
            continue;
        }
        let w = words[i];
        let next = words.get(i + 1).copied().unwrap_or("");
        if matches!(w, "that" | "this") && matches!(next, "one" | "talk" | "session") {
            out.push((i..i + 2, "that"));
            i += 2;
            continue;
        }
        let unit = matches!(
            next,
            "days"
                | "day"
                | "hours"
                | "hour"
                | "minutes"
                | "mins"
                | "weeks"
                | "years"
                | "months"
                | "pm"
                | "am"
                | "dias"
                | "horas"
                | "minutos"
        );
        if let Some(pos) = NUMBERS.iter().position(|d| *d == w).filter(|_| !unit) {
            out.push((i..i + 1, NUMBERS[pos]));
        } else if let Some((_, v)) = WORDS.iter().find(|(word, _)| *word == w) {
            if !matches!(next, "day" | "dia") {
                out.push((i..i + 1, *v));
            }
        }
        i += 1;
    }
    out
}

/// Adds a `topic` entity when none was captured: the first track, tag or skill found.
fn derive_topic(entities: &mut Vec<EntityMatch>, kinds: &[Arc<str>]) {
    if entities.iter().any(|e| &*e.kind == "topic") {
        return;
    }
    let topic = kinds[kind_index("topic")].clone();
    if let Some(source) = entities
        .iter()
        .find(|e| matches!(&*e.kind, "track" | "tag" | "skill"))
        .cloned()
    {
        entities.push(EntityMatch {
            kind: topic,
            ..source
        });
    }
}

/// For every automaton pattern that is not only an entity, the entity phrases inside it, with
/// their token offsets in the pattern.
fn embedded_entities(
    keys: &[Box<str>],
    claims: &[Vec<Claim>],
) -> Result<Vec<Vec<Embedded>>, aho_corasick::BuildError> {
    let entity_keys: Vec<usize> = (0..keys.len())
        .filter(|&i| claims[i].iter().any(|c| matches!(c, Claim::Entity { .. })))
        .collect();
    let automaton = AhoCorasick::builder()
        .match_kind(MatchKind::LeftmostLongest)
        .build(entity_keys.iter().map(|&i| keys[i].as_bytes()))?;
    let mut out = Vec::with_capacity(keys.len());
    for (key, own) in keys.iter().zip(claims) {
        let mut found = Vec::new();
        if own.iter().any(|c| !matches!(c, Claim::Entity { .. })) {
            for m in automaton.find_iter(key.as_ref()) {
                let k = entity_keys[m.pattern().as_usize()];
                if keys[k].len() == key.len() {
                    continue;
                }
                // Words in a key are separated by two spaces, after one leading space.
                let first = key[..m.start() + 1].matches("  ").count();
                let words = keys[k].split_whitespace().count();
                for c in &claims[k] {
                    if let Claim::Entity { kind, value } = c {
                        found.push((*kind, value.clone(), first..first + words));
                    }
                }
            }
        }
        out.push(found);
    }
    Ok(out)
}

/// Checks that an intent can match something.
fn check_intent_shape(def: &IntentDef, errs: &mut Vec<Diagnostic>) {
    let has_rules = !def.phrases.is_empty()
        || !def.patterns.is_empty()
        || !def.exact.is_empty()
        || !def.any.is_empty()
        || !def.all.is_empty()
        || !def.alone.is_empty();
    if !has_rules && def.name != FALLBACK {
        errs.push(Diagnostic::at(
            &def.loc,
            format!(
                "intent {:?} is empty: it has no phrases, keywords, patterns, exact messages or alone entities, so nothing can match it",
                def.name
            ),
        ));
    }
    if def.name == FALLBACK && has_rules {
        errs.push(Diagnostic::at(
            &def.loc,
            "the fallback intent is chosen when nothing else matches; it cannot have phrases, keywords or patterns",
        ));
    }
}

/// An intent whose only evidence is phrases that a higher-priority intent also claims can never win.
/// Phrases are normalised by the set's own normaliser, so they match the keys they were stored under.
fn never_win(
    defs: &Definitions,
    normalizer: &Normalizer,
    owner: &FxHashMap<String, (u16, Loc)>,
    errs: &mut Vec<Diagnostic>,
) {
    for def in &defs.intents {
        let only_phrases = def.patterns.is_empty()
            && def.exact.is_empty()
            && def.any.is_empty()
            && def.all.is_empty()
            && def.alone.is_empty()
            && !def.phrases.is_empty();
        if !only_phrases {
            continue;
        }
        let shadowed = def.phrases.iter().all(|(_, p)| {
            let n = normalizer.phrase(&p.text);
            key(&n)
                .and_then(|k| owner.get(&k))
                .is_some_and(|(o, _)| defs.intents[*o as usize].priority > def.priority)
        });
        if shadowed {
            errs.push(Diagnostic::at(
                &def.loc,
                format!(
                    "intent {:?} can never win: every one of its phrases is also a phrase of an intent with a higher priority",
                    def.name
                ),
            ));
        }
    }
}

/// Checks that a reply template only uses known placeholders and has balanced braces.
fn check_template(reply: &Sourced, errs: &mut Vec<Diagnostic>) {
    let mut rest = reply.text.as_str();
    while let Some(open) = rest.find('{') {
        let Some(close) = rest[open..].find('}') else {
            errs.push(Diagnostic::at(
                &reply.loc,
                "a reply has a '{' without its '}'",
            ));
            return;
        };
        let field = &rest[open + 1..open + close];
        if !TEMPLATE_FIELDS.contains(&field) {
            errs.push(Diagnostic::at(
                &reply.loc,
                format!(
                    "unknown placeholder {{{field}}} in a reply (known: {})",
                    TEMPLATE_FIELDS
                        .iter()
                        .map(|f| format!("{{{f}}}"))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ));
        }
        rest = &rest[open + close + 1..];
    }
}

/// The agenda's entities: `(kind, value, phrase)`. Rooms (and the name in brackets, "Henriot" for
/// "UA2.118 (Henriot)"), tracks (and "Data & AI" as "data ai"), tags, speakers (full name, and the
/// family name when no other speaker shares it), and session titles of two words or more.
pub fn agenda_entities(agenda: &Agenda) -> Vec<(&'static str, String, String)> {
    let mut out = Vec::new();
    for room in &agenda.rooms {
        out.push(("room", room.name.clone(), room.name.clone()));
        if let (Some(open), Some(close)) = (room.name.find('('), room.name.rfind(')')) {
            if open < close {
                out.push((
                    "room",
                    room.name.clone(),
                    room.name[open + 1..close].to_string(),
                ));
            }
        }
    }
    for track in &agenda.tracks {
        out.push(("track", track.name.clone(), track.name.clone()));
    }
    let mut tags: Vec<&str> = agenda
        .sessions
        .iter()
        .flat_map(|s| s.tags.iter().map(String::as_str))
        .collect();
    tags.sort_unstable();
    tags.dedup();
    for tag in tags {
        out.push(("tag", tag.to_string(), tag.to_string()));
    }
    let mut family: FxHashMap<String, usize> = FxHashMap::default();
    for sp in &agenda.speakers {
        if let Some(last) = sp.name.split_whitespace().last() {
            *family.entry(crate::text::fold(last)).or_default() += 1;
        }
    }
    for sp in &agenda.speakers {
        out.push(("speaker", sp.name.clone(), sp.name.clone()));
        let parts: Vec<&str> = sp.name.split_whitespace().collect();
        if parts.len() > 1 {
            let last = parts[parts.len() - 1];
            if last.chars().count() >= 4 && family.get(&crate::text::fold(last)) == Some(&1) {
                out.push(("speaker", sp.name.clone(), last.to_string()));
            }
        }
    }
    for s in &agenda.sessions {
        if s.title.split_whitespace().count() >= 2 {
            out.push(("session", s.id.clone(), s.title.clone()));
        }
    }
    out
}
