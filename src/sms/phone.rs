//! Phone numbers: parsed once into [`Phone`], which holds only E.164 (`+` and 7 to 15 digits), and
//! shown in logs by [`Phone::redacted`] (last four digits) only.

use std::fmt;

#[derive(Clone, PartialEq, Eq, Hash)]
pub struct Phone(String);

impl Phone {
    /// Parses an E.164 number. Spaces, dashes and brackets are not accepted: Twilio sends E.164.
    pub fn parse(s: &str) -> Option<Phone> {
        let digits = s.strip_prefix('+')?;
        let ok = (7..=15).contains(&digits.len())
            && digits.bytes().all(|b| b.is_ascii_digit())
            && !digits.starts_with('0');
        ok.then(|| Phone(s.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The last four digits, for logs: `…1234`.
    pub fn redacted(&self) -> String {
        format!("…{}", &self.0[self.0.len() - 4..])
    }

    /// The key of this number's conversation in the store.
    pub fn attendee_key(&self) -> String {
        // Concatenated, not `format!`: it is made for every message.
        ["sms:", self.0.as_str()].concat()
    }
}

/// Debug shows the redacted form, so a number never reaches a log by accident.
impl fmt::Debug for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "Phone({})", self.redacted())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parse_table() {
        let cases = [
            ("+15551234567", true),
            ("+447700900513", true),
            ("+1234567", true),
            ("15551234567", false),
            ("+1 555 123 4567", false),
            ("+0123456789", false),
            ("+1234567890123456", false),
            ("whatsapp:+15551234567", false),
            ("", false),
            ("+", false),
        ];
        for (input, ok) in cases {
            assert_eq!(Phone::parse(input).is_some(), ok, "{input:?}");
        }
        let p = Phone::parse("+15551234567").unwrap();
        assert_eq!(p.redacted(), "…4567");
        assert_eq!(format!("{p:?}"), "Phone(…4567)");
        assert_eq!(p.attendee_key(), "sms:+15551234567");
    }
}
