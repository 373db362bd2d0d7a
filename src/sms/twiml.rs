//! TwiML replies: `<Response>` with one `<Message>` per reply, XML-escaped; `<Response/>` when there
//! is nothing to say.

/// Escapes text for XML element content and attributes.
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&apos;"),
            // Control characters other than tab and line breaks are not allowed in XML 1.0.
            c if c.is_control() && !matches!(c, '\n' | '\r' | '\t') => {}
            c => out.push(c),
        }
    }
    out
}

/// The TwiML document for these messages.
pub fn response(messages: &[String]) -> String {
    let mut out = String::from("<?xml version=\"1.0\" encoding=\"UTF-8\"?>");
    if messages.is_empty() {
        out.push_str("<Response/>");
        return out;
    }
    out.push_str("<Response>");
    for m in messages {
        out.push_str("<Message>");
        out.push_str(&escape(m));
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
            response(&[]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response/>"
        );
        assert_eq!(
            response(&["Q&A <b>\"now\"</b> it's \u{7}ok".into()]),
            "<?xml version=\"1.0\" encoding=\"UTF-8\"?><Response><Message>Q&amp;A &lt;b&gt;&quot;now&quot;&lt;/b&gt; it&apos;s ok</Message></Response>"
        );
        let two = response(&["a".into(), "b".into()]);
        assert!(two.contains("<Message>a</Message><Message>b</Message>"));
    }
}
