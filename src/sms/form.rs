//! Strict `application/x-www-form-urlencoded` parsing: `+` is a space, `%XX` a byte, and the result
//! must be UTF-8. Unlike lenient parsers, a bad escape or invalid UTF-8 is an error, so garbage is
//! refused instead of being passed on with replacement characters (which would also break the
//! signature check in confusing ways).

use std::borrow::Cow;
use std::fmt;

#[derive(Debug, PartialEq, Eq)]
pub struct FormError(String);

impl fmt::Display for FormError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl std::error::Error for FormError {}

/// A form's name/value pairs, borrowed from the body where nothing needed decoding.
pub type Params<'a> = Vec<(Cow<'a, str>, Cow<'a, str>)>;

/// One name or value that has a `+` or `%` at `first` or after: decoded. A decoded part is checked
/// for UTF-8 again, since `%XX` can make any byte.
fn decode(part: &str, first: usize) -> Result<Cow<'_, str>, FormError> {
    let bytes = part.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    out.extend_from_slice(&bytes[..first]);
    let mut i = first;
    while i < bytes.len() {
        match bytes[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = bytes
                    .get(i + 1..i + 3)
                    .and_then(|h| std::str::from_utf8(h).ok())
                    .and_then(|h| u8::from_str_radix(h, 16).ok())
                    .ok_or_else(|| FormError(format!("invalid percent-encoding at byte {i}")))?;
                out.push(hex);
                i += 2;
            }
            b => out.push(b),
        }
        i += 1;
    }
    String::from_utf8(out)
        .map(Cow::Owned)
        .map_err(|_| FormError("the form is not valid UTF-8".into()))
}

/// Parses a form body into name/value pairs, in order. Parts with nothing to decode (no `+` or
/// `%`) are borrowed from the body.
pub fn parse(body: &[u8]) -> Result<Params<'_>, FormError> {
    // The whole body is checked once: every part of UTF-8 between `&` and `=` is UTF-8 too.
    let body =
        std::str::from_utf8(body).map_err(|_| FormError("the form is not valid UTF-8".into()))?;
    let bytes = body.as_bytes();
    // The next `+` or `%` in the body: a part before it has nothing to decode. Found once for
    // each part that has one, rather than looked for in every part.
    let find =
        |from: usize| memchr::memchr2(b'+', b'%', &bytes[from..]).map_or(bytes.len(), |i| from + i);
    let mut next = find(0);
    let mut part = |start: usize, end: usize| -> Result<Cow<'_, str>, FormError> {
        let text = &body[start..end];
        if next >= end {
            return Ok(Cow::Borrowed(text));
        }
        let decoded = decode(text, next - start);
        next = find(end);
        decoded
    };
    let mut params = Vec::with_capacity(memchr::memchr_iter(b'&', bytes).count() + 1);
    let mut start = 0;
    for end in memchr::memchr_iter(b'&', bytes).chain([bytes.len()]) {
        if end > start {
            let pair = &bytes[start..end];
            let (name, value) = match memchr::memchr(b'=', pair) {
                Some(eq) => (part(start, start + eq)?, part(start + eq + 1, end)?),
                None => (part(start, end)?, Cow::Borrowed("")),
            };
            params.push((name, value));
        }
        start = end + 1;
    }
    Ok(params)
}

/// The first value of `name`.
pub fn get<'a>(params: &'a [(Cow<'_, str>, Cow<'_, str>)], name: &str) -> Option<&'a str> {
    params
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_ref())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Parsing part by part, each decoded on its own: what `parse` must agree with.
    fn reference(body: &[u8]) -> Option<Vec<(String, String)>> {
        let decode = |part: &[u8]| -> Option<String> {
            let mut out = Vec::new();
            let mut i = 0;
            while i < part.len() {
                match part[i] {
                    b'+' => out.push(b' '),
                    b'%' => {
                        let hex = std::str::from_utf8(part.get(i + 1..i + 3)?).ok()?;
                        out.push(u8::from_str_radix(hex, 16).ok()?);
                        i += 2;
                    }
                    b => out.push(b),
                }
                i += 1;
            }
            String::from_utf8(out).ok()
        };
        body.split(|&b| b == b'&')
            .filter(|pair| !pair.is_empty())
            .map(|pair| {
                let mut kv = pair.splitn(2, |&b| b == b'=');
                Some((decode(kv.next()?)?, decode(kv.next().unwrap_or_default())?))
            })
            .collect()
    }

    #[test]
    fn parse_agrees_with_decoding_each_part_alone() {
        let pieces: [&[u8]; 16] = [
            b"&",
            b"=",
            b"+",
            b"%2B",
            b"%3d",
            b"%26",
            b"%C3%A9",
            b"%C3",
            b"%ZZ",
            b"%4",
            b"Body",
            b"From",
            b"hello",
            "é".as_bytes(),
            b"\xff",
            b"&&",
        ];
        for body in crate::sms::concatenations(&pieces, 0x9e37_79b9_7f4a_7c15, 20_000, 14) {
            let parsed = parse(&body).ok().map(|params| {
                params
                    .into_iter()
                    .map(|(k, v)| (k.into_owned(), v.into_owned()))
                    .collect::<Vec<_>>()
            });
            assert_eq!(
                parsed,
                reference(&body),
                "{:?}",
                String::from_utf8_lossy(&body)
            );
        }
    }

    #[test]
    fn parse_table() {
        fn ok(s: &str) -> Params<'_> {
            parse(s.as_bytes()).unwrap()
        }
        assert_eq!(
            ok("a=1&b=two+words"),
            [("a".into(), "1".into()), ("b".into(), "two words".into())]
        );
        assert_eq!(
            ok("Body=%C2%BFQu%C3%A9%3F&From=%2B15551234567"),
            [
                ("Body".into(), "¿Qué?".into()),
                ("From".into(), "+15551234567".into())
            ]
        );
        assert_eq!(
            ok("Body=&x"),
            [("Body".into(), "".into()), ("x".into(), "".into())]
        );
        assert_eq!(ok(""), Params::new());
        // Parts without escapes are borrowed from the body, decoded ones are not.
        let params = ok("From=%2B1555&Body=hi");
        assert!(matches!(params[0], (Cow::Borrowed(_), Cow::Owned(_))));
        assert!(matches!(params[1], (Cow::Borrowed(_), Cow::Borrowed(_))));
        assert_eq!(ok("a=%F0%9F%91%8B"), [("a".into(), "👋".into())]);
        assert!(parse(b"a=%ZZ").is_err());
        assert!(parse(b"a=%4").is_err());
        assert!(parse(b"a=%FF%FE").is_err());
        assert!(parse(b"a=\xff").is_err());
    }
}
