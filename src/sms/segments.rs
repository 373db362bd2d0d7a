//! SMS segments: how many messages a text costs, and splitting long replies into pages.
//!
//! A text that uses only the GSM 03.38 alphabet is sent as GSM-7: 160 characters in one segment,
//! 153 per segment when concatenated, and the extension characters (`^ { } \ [ ~ ] | €`) count twice.
//! Any other character switches the whole text to UCS-2: 70 in one segment, 67 per segment when
//! concatenated, counted in UTF-16 code units (an emoji is two).

use super::chunk::Chunk;

/// The GSM 03.38 basic character set (the escape is not a character here).
const GSM_BASIC: &str = "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà";
/// Characters of the extension table: each takes an escape plus itself, two septets.
const GSM_EXTENSION: &str = "^{}\\[~]|€\u{000C}";

/// The encoding a text would be sent in.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Encoding {
    Gsm7,
    Ucs2,
}

/// A text's encoding, length in that encoding's units, and segment count.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Count {
    pub encoding: Encoding,
    /// Septets for GSM-7, UTF-16 code units for UCS-2.
    pub units: usize,
    pub segments: usize,
}

/// Septets per ASCII character (0: not in GSM 03.38), built from the two tables above.
const GSM_ASCII: [u8; 128] = {
    let mut table = [0u8; 128];
    let (basic, extension) = (GSM_BASIC.as_bytes(), GSM_EXTENSION.as_bytes());
    let mut i = 0;
    while i < basic.len() {
        if basic[i] < 128 {
            table[basic[i] as usize] = 1;
        }
        i += 1;
    }
    let mut i = 0;
    while i < extension.len() {
        if extension[i] < 128 {
            table[extension[i] as usize] = 2;
        }
        i += 1;
    }
    table
};

fn gsm_units(c: char) -> Option<usize> {
    if c.is_ascii() {
        return match GSM_ASCII[c as usize] {
            0 => None,
            n => Some(usize::from(n)),
        };
    }
    // Outside GSM 03.38's range of Latin-1 and Greek letters only '€' is in it; most other
    // characters a reply has (dashes, curly quotes, emoji) are out of that range.
    if !('\u{A1}'..='\u{3A9}').contains(&c) && c != '€' {
        return None;
    }
    if GSM_BASIC.contains(c) {
        Some(1)
    } else if GSM_EXTENSION.contains(c) {
        Some(2)
    } else {
        None
    }
}

/// ASCII bytes that are not one septet of GSM 03.38's basic set (controls, `[ \ ] ^ ``` and
/// `{ | } ~` DEL), with `_`, which is: eight bytes without any of these are eight septets.
const NOT_ONE_SEPTET: &[(u8, u8)] = &[(0, 0x1f), (0x5b, 0x60), (0x7b, 0x7f)];

/// The septets of ASCII text, or `None` if some byte is not in GSM 03.38.
fn gsm_ascii_units(bytes: &[u8]) -> Option<usize> {
    let mut units = 0;
    let mut i = 0;
    while i < bytes.len() {
        if Chunk::at(bytes, i).is_some_and(|chunk| !chunk.any_in(NOT_ONE_SEPTET)) {
            units += 8;
            i += 8;
            continue;
        }
        for &b in &bytes[i..(i + 8).min(bytes.len())] {
            match GSM_ASCII[usize::from(b)] {
                0 => return None,
                n => units += usize::from(n),
            }
        }
        i += 8;
    }
    Some(units)
}

/// Counts the segments of `text`.
pub fn count(text: &str) -> Count {
    // Most replies are ASCII: no decoding, and eight bytes at a time where none is special.
    let gsm: Option<usize> = if text.is_ascii() {
        gsm_ascii_units(text.as_bytes())
    } else {
        text.chars().map(gsm_units).sum()
    };
    let (encoding, units, single, multi) = match gsm {
        Some(units) => (Encoding::Gsm7, units, 160, 153),
        None => (Encoding::Ucs2, text.encode_utf16().count(), 70, 67),
    };
    let segments = if units == 0 {
        0
    } else if units <= single {
        1
    } else {
        units.div_ceil(multi)
    };
    Count {
        encoding,
        units,
        segments,
    }
}

/// How many units fit in `segments` segments of `encoding`.
fn capacity(encoding: Encoding, segments: usize) -> usize {
    match (encoding, segments) {
        (Encoding::Gsm7, 1) => 160,
        (Encoding::Gsm7, n) => 153 * n,
        (Encoding::Ucs2, 1) => 70,
        (Encoding::Ucs2, n) => 67 * n,
    }
}

/// [`units`] of an ASCII character, by table.
fn ascii_units(b: u8, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => usize::from(GSM_ASCII[usize::from(b & 0x7f)].max(1)),
        Encoding::Ucs2 => 1,
    }
}

fn units(c: char, encoding: Encoding) -> usize {
    match encoding {
        Encoding::Gsm7 => gsm_units(c).unwrap_or(1),
        Encoding::Ucs2 => c.len_utf16(),
    }
}

/// Splits `text` into pages that each fit in `max_segments` once `more` (e.g. "Reply MORE for
/// more.") is appended, on a new line, to every page but the last. Pages break at line ends where
/// possible, else at spaces, else anywhere; no page is empty. Linear in the length of `text`: each
/// page reads only as far as a page can reach.
///
/// A page is counted in the encoding of the text still to send, which is exact for GSM-7 text and
/// errs on the short side when only part of a UCS-2 text needs UCS-2.
pub fn paginate(text: &str, max_segments: usize, more: &str) -> Vec<String> {
    let max_segments = max_segments.max(1);
    let whole = count(text);
    if whole.segments <= max_segments {
        return vec![text.to_string()];
    }
    // Plain text, every byte one septet (ASCII, in GSM-7, no extension character), is the
    // common case of a long reply (a list of sessions); its pages are found without reading it
    // character by character ([`scan_plain`]). So is any part of it, trimmed or not.
    let plain = whole.encoding == Encoding::Gsm7 && whole.units == text.len() && text.is_ascii();
    let text = text.trim();
    // The text still to send is UCS-2 while it starts before the end of the last character
    // outside GSM-7 (the rest is always a suffix of `text`).
    let ascii = text.is_ascii();
    let ucs2_until = if plain {
        0
    } else if ascii {
        text.bytes()
            .rposition(|b| GSM_ASCII[usize::from(b)] == 0)
            .map_or(0, |i| i + 1)
    } else {
        text.char_indices()
            .rfind(|&(_, c)| gsm_units(c).is_none())
            .map_or(0, |(i, c)| i + c.len_utf8())
    };
    let mut pages = Vec::new();
    let mut rest = text;
    while !rest.is_empty() {
        let encoding = if text.len() - rest.len() < ucs2_until {
            Encoding::Ucs2
        } else {
            Encoding::Gsm7
        };
        let capacity = capacity(encoding, max_segments);
        let footer: usize = 1 + more.chars().map(|c| units(c, encoding)).sum::<usize>();
        let budget = capacity.saturating_sub(footer);
        // One pass, no further than a whole page can reach: the longest prefix within the
        // budget (a page with the footer), the last line end and space in it, and whether
        // the rest fits whole (the last page, no footer). ASCII text is read byte by byte.
        let Scan {
            fits,
            mut cut,
            last_newline,
            last_space,
        } = if plain {
            scan_plain(rest.as_bytes(), budget, capacity)
        } else if ascii {
            let bytes = rest.bytes().enumerate();
            scan(
                bytes.map(|(i, b)| (i, char::from(b))),
                |c| ascii_units(c as u8, encoding),
                budget,
                capacity,
            )
        } else {
            scan(
                rest.char_indices(),
                |c| units(c, encoding),
                budget,
                capacity,
            )
        };
        if fits {
            pages.push(rest.to_string());
            break;
        }
        if cut == 0 {
            // Not even one character fits beside the footer: send it without.
            cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
        }
        let at = last_newline.or(last_space).unwrap_or(cut);
        let page = rest[..at].trim_end();
        let mut out = String::with_capacity(page.len() + 1 + more.len());
        out.push_str(page);
        out.push('\n');
        out.push_str(more);
        pages.push(out);
        rest = rest[at..].trim_start();
    }
    pages
}

/// What [`paginate`] reads of the text still to send.
struct Scan {
    /// The whole text fits in `capacity`.
    fits: bool,
    /// The end of the longest prefix within `budget`.
    cut: usize,
    last_newline: Option<usize>,
    last_space: Option<usize>,
}

/// [`scan`] of text whose every byte is one septet: the prefix within `budget` is that many
/// bytes, and its last line end and space are found by `memrchr`.
fn scan_plain(bytes: &[u8], budget: usize, capacity: usize) -> Scan {
    let cut = bytes.len().min(budget);
    // A line end or space at the very start is no place to break (as in `scan`).
    let last = |b: u8| memchr::memrchr(b, &bytes[..cut]).filter(|&i| i > 0);
    Scan {
        fits: bytes.len() <= capacity,
        cut,
        last_newline: last(b'\n'),
        last_space: last(b' '),
    }
}

/// Reads `chars` (with their byte offsets) as far as a page can reach; `units` counts each.
fn scan(
    chars: impl Iterator<Item = (usize, char)>,
    units: impl Fn(char) -> usize,
    budget: usize,
    capacity: usize,
) -> Scan {
    let mut at = Scan {
        fits: true,
        cut: 0,
        last_newline: None,
        last_space: None,
    };
    let mut used = 0;
    for (i, c) in chars {
        used += units(c);
        if used > capacity {
            at.fits = false;
            break;
        }
        if used > budget {
            continue;
        }
        match c {
            '\n' if i > 0 => at.last_newline = Some(i),
            ' ' if i > 0 => at.last_space = Some(i),
            _ => {}
        }
        at.cut = i + c.len_utf8();
    }
    at
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_ascii_table_agrees_with_the_alphabet() {
        for b in 0u8..128 {
            let c = char::from(b);
            let slow = if GSM_BASIC.contains(c) {
                Some(1)
            } else if GSM_EXTENSION.contains(c) {
                Some(2)
            } else {
                None
            };
            assert_eq!(gsm_units(c), slow, "{c:?}");
        }
        assert_eq!(gsm_units('`'), None);
        assert_eq!(gsm_units('{'), Some(2));
        assert_eq!(gsm_units('a'), Some(1));
    }

    #[test]
    fn counting_ascii_by_chunks_agrees_with_counting_by_characters() {
        let slow = |text: &str| -> Option<usize> { text.chars().map(gsm_units).sum() };
        for b in 0u8..128 {
            let c = char::from(b);
            for at in 0..17 {
                let text = format!("{}{c}{}", &"Sessions at 10:30"[..at], " in Room 4, then");
                assert_eq!(gsm_ascii_units(text.as_bytes()), slow(&text), "{text:?}");
                let twice = format!("{text}{c}{text}");
                assert_eq!(gsm_ascii_units(twice.as_bytes()), slow(&twice), "{twice:?}");
            }
        }
    }

    #[test]
    fn counting_table() {
        let a = |n: usize| "a".repeat(n);
        let cases: Vec<(String, Encoding, usize, usize)> = vec![
            (String::new(), Encoding::Gsm7, 0, 0),
            (a(160), Encoding::Gsm7, 160, 1),
            (a(161), Encoding::Gsm7, 161, 2),
            (a(306), Encoding::Gsm7, 306, 2),
            (a(307), Encoding::Gsm7, 307, 3),
            // Extension characters count twice: 80 euro signs are 160 septets.
            ("€".repeat(80), Encoding::Gsm7, 160, 1),
            ("€".repeat(81), Encoding::Gsm7, 162, 2),
            ("{[x]}".into(), Encoding::Gsm7, 9, 1),
            ("Café à Zürich ¿qué?".into(), Encoding::Gsm7, 19, 1),
            // One character outside GSM-7 makes the whole text UCS-2.
            (format!("{}ć", a(69)), Encoding::Ucs2, 70, 1),
            (format!("{}ć", a(70)), Encoding::Ucs2, 71, 2),
            (format!("{}ć", a(133)), Encoding::Ucs2, 134, 2),
            (format!("{}ć", a(134)), Encoding::Ucs2, 135, 3),
            // An emoji is two UTF-16 units; curly quotes are not GSM-7.
            ("hi 👋".into(), Encoding::Ucs2, 5, 1),
            ("what’s next".into(), Encoding::Ucs2, 11, 1),
        ];
        for (text, encoding, units, segments) in cases {
            assert_eq!(
                count(&text),
                Count {
                    encoding,
                    units,
                    segments
                },
                "{text:?}"
            );
        }
    }

    #[test]
    fn pages_fit_and_lose_nothing() {
        let lines: Vec<String> = (1..=12)
            .map(|i| format!("{i}) 10:30 Golden Gate Hall: Scaling WebRTC to 10,000 Viewers"))
            .collect();
        let text = lines.join("\n");
        let more = "Reply MORE for more.";
        for max in [1, 2, 3] {
            let pages = paginate(&text, max, more);
            assert!(pages.len() > 1);
            for (i, page) in pages.iter().enumerate() {
                assert!(count(page).segments <= max, "page {i} of {max}: {page:?}");
                assert_eq!(page.ends_with(more), i + 1 < pages.len());
            }
            let joined: String = pages
                .iter()
                .map(|p| p.trim_end_matches(more).trim())
                .collect::<Vec<_>>()
                .join("\n");
            assert_eq!(joined, text, "max {max}");
        }
        assert_eq!(paginate("short", 2, more), vec!["short".to_string()]);
        // Unicode pages are counted in UCS-2.
        let pages = paginate(&"ñandú 🦙 ".repeat(40), 2, more);
        assert!(pages.iter().all(|p| count(p).segments <= 2));
    }

    /// The page splitter as it was before it read only as far as a page can reach: what the
    /// linear one must agree with.
    fn paginate_reference(text: &str, max_segments: usize, more: &str) -> Vec<String> {
        let max_segments = max_segments.max(1);
        if count(text).segments <= max_segments {
            return vec![text.to_string()];
        }
        let mut pages = Vec::new();
        let mut rest = text.trim();
        while !rest.is_empty() {
            let whole = count(rest);
            if whole.segments <= max_segments {
                pages.push(rest.to_string());
                break;
            }
            let encoding = whole.encoding;
            let footer: usize = 1 + more.chars().map(|c| units(c, encoding)).sum::<usize>();
            let budget = capacity(encoding, max_segments).saturating_sub(footer);
            // The longest prefix within the budget, and the last line end and space in it.
            let (mut used, mut cut, mut last_newline, mut last_space) = (0, 0, None, None);
            for (i, c) in rest.char_indices() {
                used += units(c, encoding);
                if used > budget {
                    break;
                }
                match c {
                    '\n' if i > 0 => last_newline = Some(i),
                    ' ' if i > 0 => last_space = Some(i),
                    _ => {}
                }
                cut = i + c.len_utf8();
            }
            if cut == 0 {
                // Not even one character fits beside the footer: send it without.
                cut = rest.chars().next().map_or(rest.len(), char::len_utf8);
            }
            let at = last_newline.or(last_space).unwrap_or(cut);
            pages.push(format!("{}\n{more}", rest[..at].trim_end()));
            rest = rest[at..].trim_start();
        }
        pages
    }

    #[test]
    fn pages_agree_with_the_reference_splitter() {
        // Texts drawn at random from words in GSM-7 (extension characters, Latin-1 and Greek
        // letters among them) and, up to a random point, characters outside it too (curly quotes,
        // dashes, emoji, an ideographic space that `trim` removes), so the text still to send
        // turns from UCS-2 to GSM-7 at some page; at line ends and spaces or none.
        const GSM: &[&str] = &[
            "talk", "Keynote", "10:30", "Hall A", "{room}", "€5", "ñandú", "Ωmega", "café", "x",
            "\n", " ", "  ", "\n\n", "é",
        ];
        const OTHER: &[&str] = &["what’s", "a–b", "🦙", "\u{3000}"];
        let mut seed = 0x9e37_79b9_7f4a_7c15_u64;
        let mut next = |n: usize| {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            (seed % n as u64) as usize
        };
        for round in 0..4_000 {
            let words = next(400);
            // A quarter of the texts are ASCII only (read byte by byte), and a quarter plain:
            // ASCII without extension characters (every byte one septet, read by `memrchr`).
            let plain = round % 4 == 1;
            let ascii_only = round % 4 == 0 || plain;
            let other_until = if ascii_only { 0 } else { next(words + 1) };
            let mut text = String::new();
            for w in 0..words {
                let pieces = if w < other_until && next(4) == 0 {
                    OTHER
                } else {
                    GSM
                };
                let piece = pieces[next(pieces.len())];
                let extended = |p: &str| p.contains(|c| GSM_EXTENSION.contains(c));
                text.push_str(if plain && (!piece.is_ascii() || extended(piece)) {
                    "plain"
                } else if ascii_only && !piece.is_ascii() {
                    "{ascii}"
                } else {
                    piece
                });
                if next(3) > 0 {
                    text.push(if next(8) == 0 { '\n' } else { ' ' });
                }
            }
            let max = 1 + next(4);
            let more = ["Reply MORE for more.", "Más: MORE", "MORE 👉"][next(3)];
            assert_eq!(
                paginate(&text, max, more),
                paginate_reference(&text, max, more),
                "round {round}, max {max}: {text:?}"
            );
        }
    }

    #[test]
    fn characters_outside_the_table_ranges_are_not_gsm() {
        for c in GSM_BASIC.chars() {
            assert_eq!(gsm_units(c), Some(1), "{c:?}");
        }
        for c in GSM_EXTENSION.chars() {
            assert_eq!(gsm_units(c), Some(2), "{c:?}");
        }
        for c in ['’', '–', '·', 'ć', '👋', '\u{3000}', 'Ā'] {
            assert_eq!(gsm_units(c), None, "{c:?}");
        }
    }
}
