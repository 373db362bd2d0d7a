//! What a re-import changed for the people who saved sessions: a session moved (time or room) or
//! removed. Each attendee who saved a changed session gets one message listing their changes;
//! nobody hears about sessions they did not save.

use jiff::Timestamp;

use crate::agenda::{Agenda, AgendaIndex, Session};
use crate::conversation::render;
use crate::intents::Lang;

/// A change to one session.
#[derive(Clone, Debug, PartialEq)]
pub struct Change {
    pub session: String,
    pub kind: ChangeKind,
}

#[derive(Clone, Debug, PartialEq)]
pub enum ChangeKind {
    /// The time or the room changed (or both).
    Moved {
        old_start: Timestamp,
        new_start: Timestamp,
        old_room: Option<String>,
        new_room: Option<String>,
    },
    Removed,
}

/// The sessions of `old` whose start or room differs in `new`, or that `new` lacks. Sessions are
/// matched by id; titles, abstracts and speakers do not count.
pub fn diff(old: &Agenda, new: &Agenda) -> Vec<Change> {
    let mut changes = Vec::new();
    for s in &old.sessions {
        match new.session(&s.id) {
            None => changes.push(Change {
                session: s.id.clone(),
                kind: ChangeKind::Removed,
            }),
            Some(n) if n.start != s.start || n.room != s.room => changes.push(Change {
                session: s.id.clone(),
                kind: ChangeKind::Moved {
                    old_start: s.start,
                    new_start: n.start,
                    old_room: s.room.clone(),
                    new_room: n.room.clone(),
                },
            }),
            Some(_) => {}
        }
    }
    changes
}

/// At most this many changes are spelled out in one message.
const LISTED: usize = 3;

/// The message for an attendee who saved `saved`, or `None` if no change touches them.
pub fn notice(
    changes: &[Change],
    saved: &[String],
    old: &AgendaIndex,
    new: &AgendaIndex,
    lang: Lang,
    now: Timestamp,
) -> Option<String> {
    let mine: Vec<&Change> = changes
        .iter()
        .filter(|c| saved.contains(&c.session))
        .collect();
    if mine.is_empty() {
        return None;
    }
    let es = lang == Lang::Es;
    let mut out = String::from(if es {
        "Cambios en tu agenda:"
    } else {
        "Changes to your agenda:"
    });
    for c in mine.iter().take(LISTED) {
        let Some(was) = old.session(&c.session) else {
            continue;
        };
        out.push('\n');
        out.push_str(&line(c, was, new.session(&c.session), old, new, lang, now));
    }
    if mine.len() > LISTED {
        let more = mine.len() - LISTED;
        out.push('\n');
        out.push_str(&if es {
            format!("Y {more} más. Escribe MI AGENDA para verla.")
        } else {
            format!("And {more} more. Text MY AGENDA to see it.")
        });
    }
    Some(out)
}

fn line(
    c: &Change,
    was: &Session,
    now_is: Option<&Session>,
    old: &AgendaIndex,
    new: &AgendaIndex,
    lang: Lang,
    now: Timestamp,
) -> String {
    let es = lang == Lang::Es;
    let at = |index: &AgendaIndex, ts: Timestamp, room: &Option<String>| {
        let mut s = render::clock(index, ts, now, lang);
        if let Some(room) = room {
            s.push_str(", ");
            s.push_str(room);
        }
        s
    };
    match (&c.kind, now_is) {
        (
            ChangeKind::Moved {
                old_start,
                new_start,
                old_room,
                new_room,
            },
            Some(n),
        ) => {
            let before = at(old, *old_start, old_room);
            let after = at(new, *new_start, new_room);
            if es {
                format!("- {}: ahora {after} (antes {before})", n.title)
            } else {
                format!("- {}: now {after} (was {before})", n.title)
            }
        }
        _ => {
            let before = at(old, was.start, &was.room);
            if es {
                format!("- {} ({before}): cancelada", was.title)
            } else {
                format!("- {} ({before}): canceled", was.title)
            }
        }
    }
}
