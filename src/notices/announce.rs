//! Announcements from the organisers: who they go to.
//!
//! Everyone concierge has talked to and who has not opted out; or those who saved a given session;
//! or those interested in a track (who saved a session of it). The same announcement id is only
//! ever sent once.

use serde::{Deserialize, Serialize};

use crate::agenda::AgendaIndex;
use crate::conversation::Attendee;

/// Who an announcement is for.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Audience {
    Everyone,
    /// Those who saved this session (by id).
    Session {
        session: String,
    },
    /// Those who saved a session of this track (by name, any case).
    Track {
        track: String,
    },
}

impl Audience {
    /// Checks the audience names something in the agenda.
    pub fn check(&self, agenda: &AgendaIndex) -> Result<(), String> {
        match self {
            Audience::Everyone => Ok(()),
            Audience::Session { session } => agenda
                .session(session)
                .map(|_| ())
                .ok_or_else(|| format!("there is no session {session:?} in the agenda")),
            Audience::Track { track } => agenda
                .track(track)
                .map(|_| ())
                .ok_or_else(|| format!("there is no track {track:?} in the agenda")),
        }
    }

    /// Whether an attendee is in the audience (opt-outs are the caller's to check).
    pub fn includes(&self, attendee: &Attendee, agenda: &AgendaIndex) -> bool {
        match self {
            Audience::Everyone => true,
            Audience::Session { session } => attendee.saved.contains(session),
            Audience::Track { track } => {
                let track = crate::text::fold(track);
                attendee.saved.iter().any(|id| {
                    agenda
                        .session(id)
                        .and_then(|s| s.track.as_deref())
                        .is_some_and(|t| crate::text::fold(t) == track)
                })
            }
        }
    }
}

/// The longest announcement, in characters (ten SMS segments of GSM-7).
pub const MAX_TEXT: usize = 1530;

/// Checks an announcement's id and text.
pub fn check(id: &str, text: &str) -> Result<(), String> {
    let id_ok = (1..=64).contains(&id.len())
        && id
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'-' | b'_' | b'.'));
    if !id_ok {
        return Err("id must be 1 to 64 letters, digits, '-', '_' or '.'".into());
    }
    let n = text.trim().chars().count();
    if n == 0 || n > MAX_TEXT {
        return Err(format!("text must be 1 to {MAX_TEXT} characters"));
    }
    Ok(())
}
