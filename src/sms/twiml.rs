//! TwiML replies: `<Response>` with one `<Message>` per reply, XML-escaped; `<Response/>` when there
//! is nothing to say.

use super::chunk::Chunk;

/// Escapes text for XML element content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text` to `out` escaped for XML: runs of plain text are copied whole. Eight bytes at
/// a time are checked for anything that needs a look ([`Chunk`]); only eight that have some are
/// then read byte by byte.
fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0;
    let mut i = 0;
    while i < bytes.len() {
        if Chunk::at(bytes, i).is_some_and(|chunk| !needs_a_look(chunk)) {
            i += 8;
            continue;
        }
        let end = (i + 8).min(bytes.len());
        while i < end {
            let b = bytes[i];
            let (replacement, skip) = match b {
                b'&' => ("&amp;", 1),
                b'<' => ("&lt;", 1),
                b'>' => ("&gt;", 1),
                b'"' => ("&quot;", 1),
                b'\'' => ("&apos;", 1),
                // Control characters other than tab and line breaks are not allowed in XML 1.0:
                // C0 and DEL are one byte, dropped; C1 (U+0080 to U+009F) is 0xC2 and a second
                // byte below 0xA0, both dropped (the second byte is no character's first).
                b'\t' | b'\n' | b'\r' => {
                    i += 1;
                    continue;
                }
                0..0x20 | 0x7f => ("", 1),
                0xc2 if bytes.get(i + 1).is_some_and(|&next| next < 0xa0) => ("", 2),
                _ => {
                    i += 1;
                    continue;
                }
            };
            out.push_str(&text[plain..i]);
            out.push_str(replacement);
            i += skip;
            plain = i;
        }
    }
    out.push_str(&text[plain..]);
}

/// Bytes that may need escaping or dropping: control characters, `"` `&` `'` (with `!` `#` `$`
/// `%` of the same range, which are then read and kept), `<`, `>`, DEL; and every non-ASCII
/// byte (C1 controls are among them).
const LOOK: &[(u8, u8)] = &[
    (0, 0x1f),
    (0x21, 0x27),
    (0x3c, 0x3c),
    (0x3e, 0x3e),
    (0x7f, 0x7f),
];

fn needs_a_look(chunk: Chunk) -> bool {
    chunk.any_non_ascii() || chunk.any_in(LOOK)
}

/// The TwiML document for these messages.
pub fn response<I>(messages: I) -> String
where
    I: IntoIterator<Item: AsRef<str>, IntoIter: Clone>,
{
    const HEAD: &str = "<?xml version=\"1.0\" encoding=\"UTF-8\"?>";
    let messages = messages.into_iter();
    let size: usize = messages.clone().map(|m| m.as_ref().len() + 19).sum();
    if size == 0 {
        return format!("{HEAD}<Response/>");
    }
    let mut out = String::with_capacity(size + HEAD.len() + 21);
    out.push_str(HEAD);
    out.push_str("<Response>");
    for m in messages {
        out.push_str("<Message>");
        escape_into(&mut out, m.as_ref());
        out.push_str("</Message>");
    }
    out.push_str("</Response>");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_shape() {
        assert_eq!(
            response::<[&str; 0]>([]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
        );
        assert_eq!(
            response(["Q&A <b>\"now\"</b> it's \u{7}ok"]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Q&amp;A &lt;b&gt;&quot;now&quot;&lt;/b&gt; it&apos;s ok</Message></Response>"
        );
        // C1 controls are dropped whole; other characters, multi-byte ones too, are kept.
        assert_eq!(
            escape("a\u{85}b\u{9f}\u{a0}ñ\u{7f}c\u{80}\u{80}é’👋\t\r\n"),
            "ab\u{a0}ñcé’👋\t\r\n"
        );
        assert_eq!(escape("\u{80}"), "");
        let two = response(["a", "b"]);
        assert_eq!(response([""]).matches("<Message></Message>").count(), 1);
        assert!(two.contains("<Message>a</Message><Message>b</Message>"));
    }

    #[test]
    fn the_eight_byte_check_misses_no_byte_that_needs_a_look() {
        for b in 0u8..=255 {
            let must = matches!(b, 0..0x20 | b'"' | b'&' | b'\'' | b'<' | b'>' | 0x7f..);
            for at in 0..8 {
                let mut chunk = *b"plain ok";
                chunk[at] = b;
                let chunk = Chunk::at(&chunk, 0).unwrap();
                if must {
                    assert!(needs_a_look(chunk), "{b:#x} at {at}");
                }
            }
        }
        assert!(!needs_a_look(Chunk::at(b"Room 12:", 0).unwrap()));
        assert!(!needs_a_look(Chunk::at(b"AZaz09()", 0).unwrap()));
    }

    #[test]
    fn escaping_agrees_with_a_character_by_character_escape() {
        let slow = |text: &str| -> String {
            text.chars()
                .filter(|&c| !c.is_control() || matches!(c, '\n' | '\r' | '\t'))
                .map(|c| match c {
                    '&' => "&amp;".to_string(),
                    '<' => "&lt;".to_string(),
                    '>' => "&gt;".to_string(),
                    '"' => "&quot;".to_string(),
                    '\'' => "&apos;".to_string(),
                    c => c.to_string(),
                })
                .collect()
        };
        // Every character up to U+07FF (one and two bytes, C0 and C1 among them) and some
        // longer ones, each alone and between others.
        let chars: Vec<char> = (0..0x800)
            .filter_map(char::from_u32)
            .chain(['’', '€', '👋', '\u{fffd}'])
            .collect();
        for &c in &chars {
            for text in [
                c.to_string(),
                format!("a{c}"),
                format!("{c}b"),
                format!("\u{85}{c}\u{c2}"),
            ] {
                assert_eq!(escape(&text), slow(&text), "{text:?}");
            }
            // At every place of the eight-byte chunks, and across their edges.
            for at in 0..17 {
                let text = format!("{}{c}{}", &"Sessions at 10:30"[..at], " in Room 4, then");
                assert_eq!(escape(&text), slow(&text), "{text:?}");
            }
        }
        // Long texts of random pieces: plain runs, markup, controls, C1 and other characters.
        let pieces = [
            "Keynote at 09:00 in Main Hall",
            "\n",
            " & ",
            "<b>",
            "it's \"now\"",
            "\u{7}",
            "\u{85}\u{9f}",
            "\u{a0}ñé",
            "’👋",
            "\u{c2}",
            "x",
            "\t\r",
            "!#$%",
        ];
        let pieces: Vec<&[u8]> = pieces.iter().map(|p| p.as_bytes()).collect();
        for text in crate::sms::concatenations(&pieces, 0x2545_f491_4f6c_dd1d, 3000, 12) {
            let text = String::from_utf8(text).expect("pieces of UTF-8");
            assert_eq!(escape(&text), slow(&text), "{text:?}");
        }
    }
}
