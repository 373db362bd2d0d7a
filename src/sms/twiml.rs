//! TwiML replies: `<Response>` with one `<Message>` per reply, XML-escaped; `<Response/>` when there
//! is nothing to say.

/// Escapes text for XML element content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    escape_into(&mut out, text);
    out
}

/// Appends `text` to `out` escaped for XML: runs of plain text are copied whole.
fn escape_into(out: &mut String, text: &str) {
    let bytes = text.as_bytes();
    let mut plain = 0;
    for (i, &b) in bytes.iter().enumerate() {
        let replacement = match b {
            b'&' => "&amp;",
            b'<' => "&lt;",
            b'>' => "&gt;",
            b'"' => "&quot;",
            b'\'' => "&apos;",
            // Control characters other than tab and line breaks are not allowed in XML 1.0:
            // C0 and DEL are one byte, dropped; C1 (U+0080 to U+009F) is 0xC2 and a second byte
            // below 0xA0, both dropped (the second byte is no character's first).
            b'\t' | b'\n' | b'\r' => continue,
            0..0x20 | 0x7f => "",
            0xc2 if bytes.get(i + 1).is_some_and(|&next| next < 0xa0) => {
                out.push_str(&text[plain..i]);
                plain = i + 2;
                continue;
            }
            _ => continue,
        };
        out.push_str(&text[plain..i]);
        out.push_str(replacement);
        plain = i + 1;
    }
    out.push_str(&text[plain..]);
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
        }
    }
}
