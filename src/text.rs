//! Text helpers shared by the agenda search and (later) the intent matcher.
//!
//! [`fold`] turns text into the form every comparison in concierge uses: lower case, accents removed,
//! a few letters that have no decomposition spelled out (`ß` → `ss`). [`html_to_text`] turns the HTML
//! that some schedule exports put into abstracts into plain text fit for an SMS.
//!
//! Nothing here allocates more than the output string, and nothing here knows about intents or sessions.

use unicode_normalization::UnicodeNormalization;
use unicode_normalization::char::is_combining_mark;

/// Folds `text` for comparison: lower case, accents and other combining marks removed, compatibility
/// forms unified (NFKD), and letters without a decomposition spelled out in ASCII.
///
/// `fold("Bits & Bäume")` is `"bits & baume"`; `fold("Straße")` is `"strasse"`.
pub fn fold(text: &str) -> String {
    if text.is_ascii() {
        // Nothing to decompose: lower case is all there is to do (the common case for SMS).
        return text.to_ascii_lowercase();
    }
    let mut out = String::with_capacity(text.len());
    for c in text.nfkd() {
        if is_combining_mark(c) {
            continue;
        }
        match c {
            'ß' | 'ẞ' => out.push_str("ss"),
            'æ' | 'Æ' => out.push_str("ae"),
            'œ' | 'Œ' => out.push_str("oe"),
            'ø' | 'Ø' => out.push('o'),
            'ł' | 'Ł' => out.push('l'),
            'đ' | 'Đ' | 'ð' | 'Ð' => out.push('d'),
            'þ' | 'Þ' => out.push_str("th"),
            'ı' => out.push('i'),
            // Typographic quotes and dashes become their ASCII forms so "what’s" matches "what's".
            '\u{2018}' | '\u{2019}' | '\u{02BC}' => out.push('\''),
            '\u{201C}' | '\u{201D}' => out.push('"'),
            '\u{2010}'..='\u{2015}' => out.push('-'),
            c => out.extend(c.to_lowercase()),
        }
    }
    out
}

/// Splits folded text into words: runs of alphanumeric characters. Apostrophes inside a word are kept
/// out, so "what's" yields "what" and "s".
pub fn words(folded: &str) -> impl Iterator<Item = &str> {
    folded
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
}

/// True when `needle` (folded, non-empty) occurs in `haystack` (folded) at the start of a word.
///
/// "video" is found in "webrtc video calls" and in "videos", not in "devvideo".
pub fn contains_word_prefix(haystack: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    let mut from = 0;
    while let Some(pos) = haystack[from..].find(needle) {
        let at = from + pos;
        let starts_word = haystack[..at]
            .chars()
            .next_back()
            .is_none_or(|c| !c.is_alphanumeric());
        if starts_word {
            return true;
        }
        // Advance past the first character of this occurrence, staying on a char boundary.
        from = at + haystack[at..].chars().next().map_or(1, char::len_utf8);
    }
    false
}

/// Converts the HTML found in schedule abstracts into plain text: tags removed, block tags turned into
/// line breaks, the common entities decoded, runs of blank space collapsed.
///
/// Text without a `<` or `&` is returned trimmed and otherwise untouched. This is not a full HTML
/// parser: it is meant for the simple markup pretalx and Pentabarf emit (`<p>`, `<br>`, `<ul><li>`,
/// `<a>`, `<em>`, `<code>`), and it never fails.
pub fn html_to_text(html: &str) -> String {
    if !html.contains('<') && !html.contains('&') {
        return collapse_blank(html);
    }
    let mut out = String::with_capacity(html.len());
    let mut rest = html;
    while let Some(c) = rest.chars().next() {
        match c {
            '<' => {
                let Some(end) = rest.find('>') else {
                    // A lone '<' is text, not a tag.
                    out.push('<');
                    rest = &rest[1..];
                    continue;
                };
                let closing = rest[1..end].starts_with('/');
                let tag = rest[1..end].trim_start_matches('/').to_ascii_lowercase();
                let name = tag
                    .split(|c: char| c.is_whitespace() || c == '/')
                    .next()
                    .unwrap_or("");
                match name {
                    "p" | "br" | "div" | "ul" | "ol" | "hr" | "h1" | "h2" | "h3" | "h4" | "h5"
                    | "h6" | "blockquote" | "pre" | "tr" => out.push('\n'),
                    "li" if closing => {}
                    "li" => out.push_str("\n- "),
                    _ => {}
                }
                rest = &rest[end + 1..];
            }
            '&' => {
                let (decoded, used) = decode_entity(rest);
                out.push_str(&decoded);
                rest = &rest[used..];
            }
            c => {
                out.push(c);
                rest = &rest[c.len_utf8()..];
            }
        }
    }
    collapse_blank(&out)
}

/// Decodes the entity at the start of `s` (which starts with '&'). Returns the text and how many bytes
/// were consumed; an unknown or malformed entity is kept as a literal '&'.
fn decode_entity(s: &str) -> (String, usize) {
    // Look for the ';' in the first 12 bytes, on character boundaries (found by fuzzing: "&la
    // en español" cut a character in two).
    let Some(semi) = s
        .char_indices()
        .take_while(|(i, _)| *i < 12)
        .find(|(_, c)| *c == ';')
        .map(|(i, _)| i)
    else {
        return ("&".into(), 1);
    };
    let body = &s[1..semi];
    let named = match body {
        "amp" => Some('&'),
        "lt" => Some('<'),
        "gt" => Some('>'),
        "quot" => Some('"'),
        "apos" => Some('\''),
        "nbsp" => Some(' '),
        "ndash" => Some('–'),
        "mdash" => Some('—'),
        "hellip" => Some('…'),
        "rsquo" => Some('’'),
        "lsquo" => Some('‘'),
        "ldquo" => Some('“'),
        "rdquo" => Some('”'),
        _ => None,
    };
    let numeric = || {
        let code = if let Some(hex) = body.strip_prefix("#x").or_else(|| body.strip_prefix("#X")) {
            u32::from_str_radix(hex, 16).ok()
        } else {
            body.strip_prefix('#').and_then(|d| d.parse().ok())
        };
        code.and_then(char::from_u32)
    };
    match named.or_else(numeric) {
        Some(c) => (c.to_string(), semi + 1),
        None => ("&".into(), 1),
    }
}

/// Trims every line, collapses runs of spaces and tabs into one space and runs of blank lines into one
/// blank line.
fn collapse_blank(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut blank_run = 0;
    for line in text.lines() {
        let line = line.split_whitespace().collect::<Vec<_>>().join(" ");
        if line.is_empty() {
            blank_run += 1;
            continue;
        }
        if !out.is_empty() {
            out.push_str(if blank_run > 0 { "\n\n" } else { "\n" });
        }
        blank_run = 0;
        out.push_str(&line);
    }
    out
}

#[cfg(test)]
mod tests {
    #[test]
    fn an_ampersand_before_accented_text_is_kept() {
        // Found by fuzzing the importers: this panicked.
        assert_eq!(
            super::html_to_text("Charla &la en español sobre cifrado."),
            "Charla &la en español sobre cifrado."
        );
        assert_eq!(
            super::html_to_text("a &amp; ñ &ñññññññ;"),
            "a & ñ &ñññññññ;"
        );
    }

    use super::*;

    #[test]
    fn fold_table() {
        let cases = [
            ("Bits & Bäume", "bits & baume"),
            ("Straße", "strasse"),
            ("Gängeviertel", "gangeviertel"),
            ("JOSÉ Müller", "jose muller"),
            ("Søren Kierkegård", "soren kierkegard"),
            ("what’s next", "what's next"),
            ("ﬁle", "file"),
            ("", ""),
        ];
        for (input, expected) in cases {
            assert_eq!(fold(input), expected, "fold({input:?})");
        }
    }

    #[test]
    fn word_prefix_table() {
        let cases = [
            ("webrtc video calls", "video", true),
            ("videos", "video", true),
            ("devvideo", "video", false),
            ("this is it", "hi", false),
            ("hi there", "hi", true),
            ("say hi", "hi", true),
            ("", "x", false),
            ("abc", "", false),
            ("ünïcode mäh", "mäh", true),
        ];
        for (hay, needle, expected) in cases {
            assert_eq!(
                contains_word_prefix(hay, needle),
                expected,
                "{hay:?} / {needle:?}"
            );
        }
    }

    #[test]
    fn html_to_text_table() {
        let cases = [
            ("plain text  here ", "plain text here"),
            (
                "<p>FOSDEM welcome and opening talk.</p>",
                "FOSDEM welcome and opening talk.",
            ),
            (
                "<p>One</p>\n<hr />\n<p>Two &amp; three</p>",
                "One\n\nTwo & three",
            ),
            ("<ul><li>a</li><li>b</li></ul>", "- a\n- b"),
            (
                "x &lt; y &#39;q&#39; &#x41; &bogus; & done",
                "x < y 'q' A &bogus; & done",
            ),
            ("a < b", "a < b"),
            ("<a href=\"https://x\">link</a> text", "link text"),
        ];
        for (input, expected) in cases {
            assert_eq!(html_to_text(input), expected, "html_to_text({input:?})");
        }
    }
}
