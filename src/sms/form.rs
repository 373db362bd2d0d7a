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

fn decode(part: &[u8]) -> Result<Cow<'_, str>, FormError> {
    if !part.iter().any(|&b| b == b'+' || b == b'%') {
        return std::str::from_utf8(part)
            .map(Cow::Borrowed)
            .map_err(|_| FormError("the form is not valid UTF-8".into()));
    }
    let mut out = Vec::with_capacity(part.len());
    let mut i = 0;
    while i < part.len() {
        match part[i] {
            b'+' => out.push(b' '),
            b'%' => {
                let hex = part
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

/// Parses a form body into name/value pairs, in order.
pub fn parse(body: &[u8]) -> Result<Params<'_>, FormError> {
    body.split(|&b| b == b'&')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let mut kv = pair.splitn(2, |&b| b == b'=');
            let name = decode(kv.next().unwrap_or_default())?;
            let value = decode(kv.next().unwrap_or_default())?;
            Ok((name, value))
        })
        .collect()
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
