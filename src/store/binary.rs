//! A compact binary encoding for the records every message writes: the attendee's state, the
//! turn's transcript entries and the idempotency record. JSON made each message pay for escaping
//! and parsing its text twice (written, then read back on the attendee's next message); these are
//! length-prefixed copies.
//!
//! The encoding: integers are LEB128 varints (signed ones zigzagged), a string is its length and
//! its UTF-8 bytes, an `Option` a 0/1 byte then the value, a list its length then the items, a
//! timestamp its seconds since the epoch and nanoseconds. Fields are written in a fixed order with
//! no names: a change to a record's fields is a new format version (the encoders destructure their
//! record, so adding a field does not compile until the encoding has it).
//!
//! Decoding never trusts the input: every length is checked against the bytes left, strings must
//! be UTF-8, and a value must be consumed exactly. A bad value is an error, never a panic or a
//! misread.

use jiff::Timestamp;

use crate::conversation::{Attendee, Context, Pending};
use crate::intents::Lang;

use super::{Processed, Reply, TranscriptEntry};

/// A value's bytes: its format version byte, then what `put` writes (`capacity`: a guess of the
/// length, so the buffer is allocated once).
pub(super) fn encode(version: u8, capacity: usize, put: impl FnOnce(&mut Out<'_>)) -> Vec<u8> {
    let mut bytes = Vec::with_capacity(capacity);
    bytes.push(version);
    put(&mut Out(&mut bytes));
    bytes
}

/// Appends the encoding of values to a buffer.
pub(super) struct Out<'a>(pub(super) &'a mut Vec<u8>);

impl Out<'_> {
    fn u64(&mut self, mut v: u64) {
        while v >= 0x80 {
            self.0.push((v as u8) | 0x80);
            v >>= 7;
        }
        self.0.push(v as u8);
    }

    fn i64(&mut self, v: i64) {
        self.u64(((v << 1) ^ (v >> 63)) as u64);
    }

    fn byte(&mut self, b: u8) {
        self.0.push(b);
    }

    fn bool(&mut self, b: bool) {
        self.byte(u8::from(b));
    }

    fn str(&mut self, s: &str) {
        self.u64(s.len() as u64);
        self.0.extend_from_slice(s.as_bytes());
    }

    fn strs(&mut self, list: &[String]) {
        self.u64(list.len() as u64);
        for s in list {
            self.str(s);
        }
    }

    fn opt<T>(&mut self, v: Option<T>, put: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.byte(0),
            Some(v) => {
                self.byte(1);
                put(self, v);
            }
        }
    }

    fn time(&mut self, t: Timestamp) {
        self.i64(t.as_second());
        // Within ±999,999,999, with the sign of the seconds (jiff keeps them in step).
        self.i64(i64::from(t.subsec_nanosecond()));
    }
}

/// Reads values back, checking each against what is left.
pub(super) struct In<'a>(&'a [u8]);

impl<'a> In<'a> {
    pub(super) fn new(bytes: &'a [u8]) -> In<'a> {
        In(bytes)
    }

    fn byte(&mut self) -> Result<u8, String> {
        let (&b, rest) = self.0.split_first().ok_or("the value ends early")?;
        self.0 = rest;
        Ok(b)
    }

    fn u64(&mut self) -> Result<u64, String> {
        let mut v: u64 = 0;
        for shift in (0..64).step_by(7) {
            let b = self.byte()?;
            let bits = u64::from(b & 0x7f);
            if shift == 63 && bits > 1 {
                return Err("an integer is too large".into());
            }
            v |= bits << shift;
            if b & 0x80 == 0 {
                return Ok(v);
            }
        }
        Err("an integer is too long".into())
    }

    fn i64(&mut self) -> Result<i64, String> {
        let z = self.u64()?;
        Ok(((z >> 1) as i64) ^ -((z & 1) as i64))
    }

    fn bool(&mut self) -> Result<bool, String> {
        match self.byte()? {
            0 => Ok(false),
            1 => Ok(true),
            b => Err(format!("{b} is not a boolean")),
        }
    }

    /// A length, checked against the bytes left (each item takes at least `least` bytes).
    fn len(&mut self, least: usize) -> Result<usize, String> {
        let n = self.u64()?;
        usize::try_from(n)
            .ok()
            .filter(|&n| n.saturating_mul(least) <= self.0.len())
            .ok_or_else(|| format!("a length of {n} runs past the value"))
    }

    fn str(&mut self) -> Result<String, String> {
        let n = self.len(1)?;
        let (bytes, rest) = self.0.split_at(n);
        self.0 = rest;
        std::str::from_utf8(bytes)
            .map(str::to_string)
            .map_err(|_| "a string is not UTF-8".into())
    }

    fn strs(&mut self) -> Result<Vec<String>, String> {
        let n = self.len(1)?;
        (0..n).map(|_| self.str()).collect()
    }

    fn opt<T>(
        &mut self,
        get: impl FnOnce(&mut Self) -> Result<T, String>,
    ) -> Result<Option<T>, String> {
        match self.byte()? {
            0 => Ok(None),
            1 => get(self).map(Some),
            b => Err(format!("{b} is not an option's tag")),
        }
    }

    fn time(&mut self) -> Result<Timestamp, String> {
        let seconds = self.i64()?;
        let nanos = i32::try_from(self.i64()?).map_err(|_| "nanoseconds out of range")?;
        Timestamp::new(seconds, nanos).map_err(|err| format!("a time out of range: {err}"))
    }

    /// The end of a value: nothing may be left.
    pub(super) fn end(&self) -> Result<(), String> {
        if self.0.is_empty() {
            Ok(())
        } else {
            Err(format!("{} bytes after the value", self.0.len()))
        }
    }
}

/// The attendee's state. Destructured so a new field is a compile error here.
pub(super) fn put_attendee(out: &mut Out<'_>, attendee: &Attendee) {
    let Attendee {
        context,
        saved,
        language,
        handoff,
    } = attendee;
    let Context {
        last_at,
        list,
        pages,
        pending,
        fallbacks,
    } = context;
    out.opt(*last_at, Out::time);
    out.strs(list);
    out.strs(pages);
    out.opt(pending.as_ref(), |out, Pending { intent, slot }| {
        out.str(intent);
        out.str(slot);
    });
    out.byte(*fallbacks);
    out.strs(saved);
    out.opt(*language, |out, lang| {
        out.byte(match lang {
            Lang::En => 0,
            Lang::Es => 1,
        })
    });
    out.opt(*handoff, Out::u64);
}

pub(super) fn get_attendee(input: &mut In<'_>) -> Result<Attendee, String> {
    let context = Context {
        last_at: input.opt(In::time)?,
        list: input.strs()?,
        pages: input.strs()?,
        pending: input.opt(|input| {
            Ok(Pending {
                intent: input.str()?,
                slot: input.str()?,
            })
        })?,
        fallbacks: input.byte()?,
    };
    Ok(Attendee {
        context,
        saved: input.strs()?,
        language: input.opt(|input| match input.byte()? {
            0 => Ok(Lang::En),
            1 => Ok(Lang::Es),
            b => Err(format!("{b} is not a language")),
        })?,
        handoff: input.opt(In::u64)?,
    })
}

/// One transcript entry. Destructured so a new field is a compile error here.
pub(super) fn put_entry(out: &mut Out<'_>, entry: &TranscriptEntry) {
    let TranscriptEntry {
        at,
        inbound,
        text,
        message_id,
        intent,
        sessions,
        by,
    } = entry;
    out.time(*at);
    out.bool(*inbound);
    out.str(text);
    out.opt(message_id.as_deref(), Out::str);
    out.opt(intent.as_deref(), Out::str);
    out.strs(sessions);
    out.opt(by.as_deref(), Out::str);
}

pub(super) fn get_entry(input: &mut In<'_>) -> Result<TranscriptEntry, String> {
    Ok(TranscriptEntry {
        at: input.time()?,
        inbound: input.bool()?,
        text: input.str()?,
        message_id: input.opt(In::str)?,
        intent: input.opt(In::str)?,
        sessions: input.strs()?,
        by: input.opt(In::str)?,
    })
}

/// An idempotency record (version 3): the time first, so it can be read alone
/// ([`get_processed_at`]), then the replies, each its text and its sessions.
pub(super) fn put_processed<'r>(
    out: &mut Out<'_>,
    at: Timestamp,
    replies: impl ExactSizeIterator<Item = (&'r str, &'r [String])>,
) {
    out.time(at);
    out.u64(replies.len() as u64);
    for (text, sessions) in replies {
        out.str(text);
        out.strs(sessions);
    }
}

pub(super) fn get_processed(input: &mut In<'_>) -> Result<Processed, String> {
    let at = input.time()?;
    // Each reply takes two bytes at least (two lengths).
    let n = input.len(2)?;
    let replies = (0..n)
        .map(|_| {
            Ok(Reply {
                text: input.str()?,
                sessions: input.strs()?,
            })
        })
        .collect::<Result<_, String>>()?;
    Ok(Processed { at, replies })
}

/// An idempotency record of version 2: the time and the replies as a JSON string.
#[cfg(test)]
pub(super) fn put_processed_v2(out: &mut Out<'_>, at: Timestamp, json: &str) {
    out.time(at);
    out.str(json);
}

/// An idempotency record of version 2 ([`put_processed_v2`]).
pub(super) fn get_processed_v2(input: &mut In<'_>) -> Result<(Timestamp, String), String> {
    Ok((input.time()?, input.str()?))
}

/// The time of an idempotency record, without copying its reply.
pub(super) fn get_processed_at(input: &mut In<'_>) -> Result<Timestamp, String> {
    input.time()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn encode(put: impl FnOnce(&mut Out<'_>)) -> Vec<u8> {
        let mut bytes = Vec::new();
        put(&mut Out(&mut bytes));
        bytes
    }

    fn full_attendee() -> Attendee {
        Attendee {
            context: Context {
                last_at: Some("2026-11-25T08:30:00.123456789Z".parse().unwrap()),
                list: vec!["s1".into(), "ß-ü 🎤".into()],
                pages: vec!["page two\nwith \"quotes\" and \\".into()],
                pending: Some(Pending {
                    intent: "search".into(),
                    slot: "topic".into(),
                }),
                fallbacks: 3,
            },
            saved: vec!["s9".into()],
            language: Some(Lang::Es),
            handoff: Some(u64::MAX),
        }
    }

    #[test]
    fn attendees_round_trip() {
        for attendee in [full_attendee(), Attendee::default()] {
            let bytes = encode(|out| put_attendee(out, &attendee));
            let mut input = In::new(&bytes);
            assert_eq!(get_attendee(&mut input).unwrap(), attendee);
            input.end().unwrap();
        }
    }

    #[test]
    fn entries_round_trip() {
        let full = TranscriptEntry {
            at: "1969-12-31T23:59:59.5Z".parse().unwrap(),
            inbound: false,
            text: "Next: Keynote 9:00".into(),
            message_id: Some("SM123".into()),
            intent: Some("next".into()),
            sessions: vec!["k1".into(), "k2".into()],
            by: Some("Ana".into()),
        };
        let bare = TranscriptEntry {
            at: Timestamp::MAX,
            inbound: true,
            text: String::new(),
            message_id: None,
            intent: None,
            sessions: vec![],
            by: None,
        };
        let bytes = encode(|out| {
            put_entry(out, &full);
            put_entry(out, &bare);
        });
        let mut input = In::new(&bytes);
        assert_eq!(get_entry(&mut input).unwrap(), full);
        assert_eq!(get_entry(&mut input).unwrap(), bare);
        input.end().unwrap();
    }

    /// How many bytes the time of an idempotency record takes.
    fn get_processed_at_len(bytes: &[u8]) -> usize {
        let mut input = In::new(bytes);
        get_processed_at(&mut input).unwrap();
        bytes.len() - input.0.len()
    }

    #[test]
    fn processed_records_round_trip_and_their_time_reads_alone() {
        let processed = Processed {
            at: Timestamp::MIN,
            replies: vec![
                Reply {
                    text: "ß-ü 🎤 <b>".into(),
                    sessions: vec!["s1".into(), "s2".into()],
                },
                Reply {
                    text: String::new(),
                    sessions: Vec::new(),
                },
            ],
        };
        let bytes = encode(|out| {
            put_processed(
                out,
                processed.at,
                processed
                    .replies
                    .iter()
                    .map(|r| (r.text.as_str(), r.sessions.as_slice())),
            )
        });
        let mut input = In::new(&bytes);
        assert_eq!(get_processed(&mut input).unwrap(), processed);
        input.end().unwrap();
        // A count of replies larger than the bytes that follow is an error, not an allocation.
        let mut short = bytes.clone();
        short[get_processed_at_len(&bytes)] = 0x7f;
        assert!(get_processed(&mut In::new(&short)).is_err());
        assert_eq!(
            get_processed_at(&mut In::new(&bytes)).unwrap(),
            Timestamp::MIN
        );
    }

    #[test]
    fn integers_round_trip_at_their_edges() {
        for v in [0, 1, 127, 128, 16_383, 16_384, u64::MAX - 1, u64::MAX] {
            let bytes = encode(|out| out.u64(v));
            assert_eq!(In::new(&bytes).u64().unwrap(), v, "{v}");
        }
        for v in [0, -1, 1, i64::MIN, i64::MAX] {
            let bytes = encode(|out| out.i64(v));
            assert_eq!(In::new(&bytes).i64().unwrap(), v, "{v}");
        }
        // Eleven continuation bytes, or a tenth byte with more than one bit: refused.
        assert!(In::new(&[0xff; 11]).u64().is_err());
        assert!(
            In::new(&[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x02])
                .u64()
                .is_err()
        );
    }

    #[test]
    fn every_truncation_and_bad_byte_is_an_error_not_a_panic() {
        let bytes = encode(|out| put_attendee(out, &full_attendee()));
        for cut in 0..bytes.len() {
            let mut input = In::new(&bytes[..cut]);
            assert!(get_attendee(&mut input).is_err(), "cut at {cut}");
        }
        for i in 0..bytes.len() {
            for b in [0x00, 0x02, 0x7f, 0x80, 0xc3, 0xff] {
                let mut changed = bytes.clone();
                changed[i] = b;
                // Either an error or some attendee: never a panic.
                let mut input = In::new(&changed);
                let _ = get_attendee(&mut input).and_then(|_| input.end());
            }
        }
        // A length larger than what is left is refused before anything is allocated.
        let huge = encode(|out| out.u64(u64::MAX));
        assert!(In::new(&huge).strs().is_err());
        // Bytes after the value.
        let mut long = bytes.clone();
        long.push(0);
        let mut input = In::new(&long);
        get_attendee(&mut input).unwrap();
        assert!(input.end().is_err());
    }
}
