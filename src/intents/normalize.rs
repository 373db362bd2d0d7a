//! Normalisation: the one way every message and every phrase is turned into words before matching.
//!
//! The steps, in order:
//! 1. [`fold`]: lower case, accents removed, typographic quotes made ASCII.
//! 2. Words are runs of letters and digits; an apostrophe inside a word is dropped ("what's" →
//!    "whats"); everything else separates words. A few emoji stand for words (👋 → "hi", 🙏 →
//!    "thanks", 👍 → "ok", 🆘 → "help"); other symbols are dropped.
//! 3. Runs of three or more of one letter are shortened ("whaaat" → "what", "helllo" → "hello"): to
//!    two letters if that is a known word, else to one if that is, else to two.
//! 4. SMS spellings are expanded from the operator's table ("nxt" → "next", "thx" → "thanks",
//!    "u" → "you"). A spelling may expand to several words.
//! 5. Typos: an unknown word of five letters or more that is one plausible keystroke slip from a
//!    known word becomes that word ("seesion" → "session", "keynot" → "keynote", "recordigns" →
//!    "recordings"); see [`plausible_typo`] for what counts. Shorter words are never changed.
//!
//! Phrases in intent files go through steps 1 to 4 (never 5), so a phrase and a message that mean the
//! same words normalise the same.
//!
//! The result keeps two renderings of the words: `text`, words joined by one space (what regular
//! expressions see), and `spaced`, words joined by two spaces with a space at each end (what the
//! phrase automaton sees; see [`super::matcher`] for why).

use std::borrow::Cow;
use std::ops::Range;

use rustc_hash::{FxHashMap, FxHashSet};

use crate::text::fold;

/// Emoji that stand for a word.
const EMOJI_WORDS: &[(char, &str)] =
    &[('👋', "hi"), ('🙏', "thanks"), ('👍', "ok"), ('🆘', "help")];

/// A word of a normalised message.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Token {
    /// Where the word is in [`Normalized::spaced`].
    pub spaced: Range<usize>,
    /// Where the word is in [`Normalized::text`].
    pub text: Range<usize>,
    /// Where the word came from in [`Normalized::folded`].
    pub source: Range<usize>,
}

/// A message after normalisation.
#[derive(Clone, Debug, Default)]
pub struct Normalized {
    /// The message folded (step 1), punctuation and all: time expressions are read from it.
    pub folded: String,
    /// The folded message without leading and trailing punctuation and with single spaces: what
    /// whole-message rules (`exact`) compare against.
    pub plain: String,
    /// The words joined by single spaces.
    pub text: String,
    /// The words joined by two spaces, with one space before the first and after the last.
    pub spaced: String,
    pub tokens: Vec<Token>,
    /// Words changed by steps 3 to 5, as `(from, to)`, for explanations.
    pub corrections: Vec<(String, String)>,
}

impl Normalized {
    /// The `i`th word.
    pub fn word(&self, i: usize) -> &str {
        &self.text[self.tokens[i].text.clone()]
    }

    pub fn words(&self) -> impl Iterator<Item = &str> {
        self.tokens.iter().map(|t| &self.text[t.text.clone()])
    }

    /// The token whose `spaced` range starts at or after byte `at` of `spaced`.
    pub fn token_at_spaced(&self, at: usize) -> usize {
        self.tokens.partition_point(|t| t.spaced.start < at)
    }

    /// The token whose `text` range starts at or after byte `at` of `text`.
    pub fn token_at_text(&self, at: usize) -> usize {
        self.tokens.partition_point(|t| t.text.start < at)
    }

    /// The tokens that overlap bytes `range` of `folded`.
    pub fn tokens_in_source(&self, range: Range<usize>) -> Range<usize> {
        let first = self.tokens.partition_point(|t| t.source.end <= range.start);
        let last = self.tokens.partition_point(|t| t.source.start < range.end);
        first..last.max(first)
    }
}

/// Known words and how to reach them from typos: every word of five letters or more, under itself
/// and under each string made by deleting one of its letters. A typo one edit away from a word
/// shares one of these keys with it (the "symmetric delete" method), and is then checked with a real
/// edit distance.
#[derive(Debug, Default)]
pub struct Fuzzy {
    words: Vec<Box<str>>,
    /// Lower ranks win ties: words from intent phrases rank before words from agenda entities.
    rank: Vec<u8>,
    keys: FxHashMap<Box<str>, Vec<u32>>,
}

impl Fuzzy {
    /// Words shorter than this are never corrected, nor corrected to.
    pub const MIN_LEN: usize = 5;

    fn add(&mut self, word: &str, rank: u8) {
        if word.chars().count() < Self::MIN_LEN || !word.chars().all(char::is_alphabetic) {
            return;
        }
        let id = self.words.len() as u32;
        self.words.push(word.into());
        self.rank.push(rank);
        let mut key = String::with_capacity(word.len());
        for skip in std::iter::once(None).chain(word.char_indices().map(|(i, _)| Some(i))) {
            key.clear();
            match skip {
                None => key.push_str(word),
                Some(i) => {
                    key.push_str(&word[..i]);
                    key.push_str(&word[i + word[i..].chars().next().map_or(0, char::len_utf8)..]);
                }
            }
            let ids = self.keys.entry(key.as_str().into()).or_default();
            if ids.last() != Some(&id) {
                ids.push(id);
            }
        }
    }

    /// The known word one edit from `token`, if any. Ties go to the better rank, then the word of
    /// the same length, then the first in alphabetical order, so the result never depends on order.
    fn correct(&self, token: &str, buf: &mut String) -> Option<&str> {
        let len = token.chars().count();
        if len < Self::MIN_LEN || !token.chars().all(char::is_alphabetic) {
            return None;
        }
        let mut best: Option<u32> = None;
        let mut consider = |ids: &Vec<u32>| {
            for &id in ids {
                let word = &*self.words[id as usize];
                if word != token && plausible_typo(token, word) {
                    let better = match best {
                        None => true,
                        Some(b) => {
                            let key = |i: u32| {
                                let w = &*self.words[i as usize];
                                (self.rank[i as usize], w.chars().count() != len, w)
                            };
                            key(id) < key(b)
                        }
                    };
                    if better {
                        best = Some(id);
                    }
                }
            }
        };
        if let Some(ids) = self.keys.get(token) {
            consider(ids);
        }
        for (i, c) in token.char_indices() {
            buf.clear();
            buf.push_str(&token[..i]);
            buf.push_str(&token[i + c.len_utf8()..]);
            if let Some(ids) = self.keys.get(buf.as_str()) {
                consider(ids);
            }
        }
        best.map(|id| &*self.words[id as usize])
    }
}

/// True when `typo` is `word` mistyped once, the way people mistype on a phone keyboard: two
/// neighbouring letters swapped, a letter left out (not the first), a letter doubled or a
/// neighbouring key hit as well (not before the first), or a letter replaced by a key next to it
/// (not the first). "seesion" → "session", "keynot" → "keynote", "recordigns" → "recordings"; but
/// "bunch" is not "lunch" (b and l are far apart) and "water" is not "later".
pub fn plausible_typo(typo: &str, word: &str) -> bool {
    let t: Vec<char> = typo.chars().collect();
    let w: Vec<char> = word.chars().collect();
    let p = t.iter().zip(&w).take_while(|(a, b)| a == b).count();
    let (ts, ws) = (&t[p..], &w[p..]);
    match (ts.len(), ws.len()) {
        (x, y) if x == y && x > 0 => {
            // Substitution at p, or a swap of p and p + 1.
            let substitution = ts[1..] == ws[1..] && p > 0 && keys_adjacent(ts[0], ws[0]);
            let swap = x >= 2 && ts[0] == ws[1] && ts[1] == ws[0] && ts[2..] == ws[2..];
            substitution || swap
        }
        // A letter of `word` left out at p.
        (x, y) if x + 1 == y => p > 0 && ts == &ws[1..],
        // An extra letter typed at p: a double, or a key next to a neighbour.
        (x, y) if y + 1 == x => {
            let extra = ts[0];
            let before = t.get(p.wrapping_sub(1)).copied();
            let after = ts.get(1).copied();
            &ts[1..] == ws
                && p > 0
                && [before, after]
                    .into_iter()
                    .flatten()
                    .any(|n| n == extra || keys_adjacent(n, extra))
        }
        _ => false,
    }
}

/// QWERTY rows; keys are adjacent when they touch on a phone or laptop keyboard.
const ROWS: [&str; 3] = ["qwertyuiop", "asdfghjkl", "zxcvbnm"];

fn key_position(c: char) -> Option<(i32, f32)> {
    ROWS.iter().enumerate().find_map(|(row, keys)| {
        keys.find(c)
            .map(|col| (row as i32, col as f32 + 0.5 * row as f32))
    })
}

fn keys_adjacent(a: char, b: char) -> bool {
    match (key_position(a), key_position(b)) {
        (Some((ra, ca)), Some((rb, cb))) => {
            (ra - rb).abs() <= 1 && (ca - cb).abs() <= 1.0 && a != b
        }
        _ => false,
    }
}

/// Everything normalisation needs that comes from the intent files and the agenda.
#[derive(Debug, Default)]
pub struct Normalizer {
    /// SMS spellings: a word and the words it stands for.
    spellings: FxHashMap<Box<str>, Box<[Box<str>]>>,
    /// Every word of every phrase and entity (after spelling expansion).
    vocabulary: FxHashSet<Box<str>>,
    fuzzy: Fuzzy,
}

impl Normalizer {
    pub fn new(spellings: impl IntoIterator<Item = (String, String)>) -> Normalizer {
        let mut n = Normalizer::default();
        for (from, to) in spellings {
            let to: Box<[Box<str>]> = to.split_whitespace().map(|w| fold(w).into()).collect();
            n.spellings.insert(fold(from.trim()).into(), to);
        }
        n
    }

    /// Adds the words of a phrase to the vocabulary. `rank` orders typo corrections (lower first).
    pub fn learn(&mut self, phrase: &Normalized, rank: u8) {
        for word in phrase.words() {
            if self.vocabulary.insert(word.into()) {
                self.fuzzy.add(word, rank);
            }
        }
    }

    pub fn vocabulary_len(&self) -> usize {
        self.vocabulary.len()
    }

    pub fn is_known(&self, word: &str) -> bool {
        self.vocabulary.contains(word)
    }

    /// Normalises a phrase from an intent file or an entity name: no typo correction, and no
    /// repeated-letter shortening (a name like "Bellle" is kept as written).
    pub fn phrase(&self, text: &str) -> Normalized {
        self.run(text, false)
    }

    /// Normalises an incoming message.
    pub fn message(&self, text: &str) -> Normalized {
        self.run(text, true)
    }

    fn run(&self, text: &str, is_message: bool) -> Normalized {
        let folded = fold(text);
        let trimmed = folded.trim_matches(|c: char| !c.is_alphanumeric());
        let mut plain = String::with_capacity(trimmed.len());
        for word in trimmed.split_whitespace() {
            if !plain.is_empty() {
                plain.push(' ');
            }
            plain.push_str(word);
        }
        let mut out = Normalized {
            text: String::with_capacity(folded.len() + 8),
            spaced: String::with_capacity(folded.len() * 2 + 8),
            folded: String::new(),
            plain,
            tokens: Vec::with_capacity(16),
            corrections: Vec::new(),
        };
        out.spaced.push(' ');
        let mut buf = String::new();
        for (word, source) in raw_words(&folded) {
            let word = if is_message {
                self.repair(word, &mut out.corrections)
            } else {
                word
            };
            match self.spellings.get(word.as_ref()) {
                Some(expansion) => {
                    if is_message {
                        out.corrections
                            .push((word.to_string(), expansion.join(" ")));
                    }
                    for w in expansion.iter() {
                        push_word(&mut out, w, source.clone());
                    }
                }
                None => {
                    let corrected = if is_message && !self.vocabulary.contains(word.as_ref()) {
                        self.fuzzy.correct(&word, &mut buf)
                    } else {
                        None
                    };
                    match corrected {
                        Some(fixed) => {
                            out.corrections.push((word.to_string(), fixed.to_string()));
                            push_word(&mut out, fixed, source);
                        }
                        None => push_word(&mut out, &word, source),
                    }
                }
            }
        }
        if out.tokens.is_empty() {
            out.spaced.clear();
        }
        out.folded = folded;
        out
    }

    /// Shortens runs of three or more of one letter (step 3).
    fn repair<'w>(
        &self,
        word: Cow<'w, str>,
        corrections: &mut Vec<(String, String)>,
    ) -> Cow<'w, str> {
        if !has_long_run(&word) {
            return word;
        }
        let known = |w: &str| self.vocabulary.contains(w) || self.spellings.contains_key(w);
        let two = shorten_runs(&word, 2);
        let chosen = if known(&two) {
            two
        } else {
            let one = shorten_runs(&word, 1);
            if known(&one) { one } else { two }
        };
        corrections.push((word.to_string(), chosen.clone()));
        Cow::Owned(chosen)
    }
}

fn push_word(out: &mut Normalized, word: &str, source: Range<usize>) {
    if !out.tokens.is_empty() {
        out.text.push(' ');
        // Each word is followed by one space; one more between words makes the two-space separator.
        out.spaced.push(' ');
    }
    let text_start = out.text.len();
    out.text.push_str(word);
    let spaced_start = out.spaced.len();
    out.spaced.push_str(word);
    out.spaced.push(' ');
    out.tokens.push(Token {
        spaced: spaced_start..spaced_start + word.len(),
        text: text_start..out.text.len(),
        source,
    });
}

/// The raw words of folded text with their byte ranges: letter and digit runs, with an apostrophe
/// inside a word dropped, and the emoji that stand for words replaced by them.
fn raw_words(folded: &str) -> Vec<(Cow<'_, str>, Range<usize>)> {
    let mut out: Vec<(Cow<'_, str>, Range<usize>)> = Vec::new();
    // The word being read: its start, and the owned text if an apostrophe was dropped from it.
    let mut current: Option<(usize, Option<String>)> = None;
    let mut chars = folded.char_indices().peekable();
    fn finish<'a>(
        folded: &'a str,
        current: &mut Option<(usize, Option<String>)>,
        end: usize,
        out: &mut Vec<(Cow<'a, str>, Range<usize>)>,
    ) {
        if let Some((start, owned)) = current.take() {
            let word = match owned {
                Some(owned) => Cow::Owned(owned),
                None => Cow::Borrowed(&folded[start..end]),
            };
            out.push((word, start..end));
        }
    }
    while let Some((i, c)) = chars.next() {
        if c.is_alphanumeric() {
            match &mut current {
                None => current = Some((i, None)),
                Some((_, Some(owned))) => owned.push(c),
                Some(_) => {}
            }
            continue;
        }
        let inner_apostrophe = c == '\''
            && current.is_some()
            && chars.peek().is_some_and(|(_, n)| n.is_alphanumeric());
        if inner_apostrophe {
            if let Some((start, owned @ None)) = &mut current {
                *owned = Some(folded[*start..i].to_string());
            }
            continue;
        }
        finish(folded, &mut current, i, &mut out);
        if let Some((_, word)) = EMOJI_WORDS.iter().find(|(e, _)| *e == c) {
            out.push((Cow::Borrowed(word), i..i + c.len_utf8()));
        }
    }
    finish(folded, &mut current, folded.len(), &mut out);
    out
}

fn has_long_run(word: &str) -> bool {
    let mut prev = None;
    let mut run = 0;
    for c in word.chars() {
        if Some(c) == prev && c.is_alphabetic() {
            run += 1;
            if run >= 3 {
                return true;
            }
        } else {
            prev = Some(c);
            run = 1;
        }
    }
    false
}

/// `word` with every run of three or more of one letter cut to `keep` letters.
fn shorten_runs(word: &str, keep: usize) -> String {
    let chars: Vec<char> = word.chars().collect();
    let mut out = String::with_capacity(word.len());
    let mut i = 0;
    while i < chars.len() {
        let mut j = i;
        while j < chars.len() && chars[j] == chars[i] {
            j += 1;
        }
        let n = j - i;
        let take = if n >= 3 && chars[i].is_alphabetic() {
            keep
        } else {
            n
        };
        out.extend(std::iter::repeat_n(chars[i], take));
        i = j;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn normalizer() -> Normalizer {
        let mut n = Normalizer::new([
            ("nxt".to_string(), "next".to_string()),
            ("whats".to_string(), "what is".to_string()),
            ("u".to_string(), "you".to_string()),
        ]);
        for phrase in [
            "what is next",
            "session",
            "keynote",
            "recordings",
            "hello",
            "lunch",
            "hey",
        ] {
            let p = n.phrase(phrase);
            n.learn(&p, 0);
        }
        n
    }

    #[test]
    fn messages_normalise_to_words() {
        let n = normalizer();
        let cases = [
            ("What's NEXT?!", "what is next"),
            ("whats nxt", "what is next"),
            ("whaaat's next", "what is next"),
            ("helllo", "hello"),
            ("heyyyy", "hey"),
            ("seesion", "session"),
            ("keynot", "keynote"),
            ("recordigns", "recordings"),
            ("Thanks a bunch", "thanks a bunch"),
            ("hey 👋 u there", "hey hi you there"),
            ("Café-Straße", "cafe strasse"),
            ("15:30", "15 30"),
            ("   ", ""),
            ("don't", "dont"),
        ];
        for (input, expected) in cases {
            assert_eq!(n.message(input).text, expected, "{input:?}");
        }
    }

    #[test]
    fn spaced_form_and_token_ranges_agree() {
        let n = normalizer().message("hi, what's next?");
        assert_eq!(n.spaced, " hi  what  is  next ");
        assert_eq!(n.text, "hi what is next");
        for (i, t) in n.tokens.iter().enumerate() {
            assert_eq!(&n.spaced[t.spaced.clone()], n.word(i));
        }
        assert_eq!(n.token_at_spaced(4), 1);
        // Both "what" and "is" come from "what's" in the folded text.
        assert_eq!(n.tokens[1].source, n.tokens[2].source);
        assert_eq!(n.plain, "hi, what's next");
    }

    #[test]
    fn typo_model_table() {
        let cases = [
            ("seesion", "session", true),
            ("keynot", "keynote", true),
            ("recordigns", "recordings", true),
            ("sesssion", "session", true),
            ("sessiin", "session", true),
            ("bunch", "lunch", false),
            ("water", "later", false),
            ("eynote", "keynote", false),
            ("keynote", "keynote", false),
            ("sesion", "session", true),
            ("informacion", "information", false),
        ];
        for (typo, word, expected) in cases {
            assert_eq!(plausible_typo(typo, word), expected, "{typo:?} / {word:?}");
        }
    }
}
