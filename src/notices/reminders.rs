//! Reminders before saved sessions: when one is due and, when it comes up, whether to send it.
//!
//! A reminder is due `lead` before its session starts. When due it is sent unless the session is
//! gone, no longer saved, already started, or the number opted out; inside quiet hours it waits
//! for their end if the session has not started by then, else it is dropped. A reminder found late
//! (the service was down) is still sent while the session has not started, never after.

use jiff::civil::Time;
use jiff::{SignedDuration, Timestamp};
use serde::{Deserialize, Serialize};

use crate::agenda::{AgendaIndex, Session};
use crate::conversation::render;
use crate::intents::Lang;

/// One attendee's reminder for one session.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Reminder {
    pub attendee: String,
    pub session: String,
    pub due: Timestamp,
}

/// How reminders behave.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// How long before the start.
    pub lead: SignedDuration,
    /// Local (conference) hours when nothing is sent.
    pub quiet: Option<QuietHours>,
}

impl Default for Settings {
    fn default() -> Settings {
        Settings {
            lead: SignedDuration::from_mins(10),
            quiet: None,
        }
    }
}

/// A span of the conference's local day, such as 22:00–07:00 (it may wrap past midnight).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QuietHours {
    pub from: Time,
    pub to: Time,
}

impl QuietHours {
    /// Parses `HH:MM-HH:MM`.
    pub fn parse(s: &str) -> Result<QuietHours, String> {
        let bad = || format!("{s:?} is not a span of hours such as \"22:00-07:00\"");
        let (from, to) = s.trim().split_once('-').ok_or_else(bad)?;
        let time = |t: &str| {
            let (h, m) = t.trim().split_once(':').ok_or_else(bad)?;
            let (h, m): (i8, i8) = (h.parse().map_err(|_| bad())?, m.parse().map_err(|_| bad())?);
            Time::new(h, m, 0, 0).map_err(|_| bad())
        };
        let q = QuietHours {
            from: time(from)?,
            to: time(to)?,
        };
        if q.from == q.to {
            return Err(format!("{s:?} starts and ends at the same time"));
        }
        Ok(q)
    }

    pub fn contains(&self, t: Time) -> bool {
        if self.from < self.to {
            self.from <= t && t < self.to
        } else {
            t >= self.from || t < self.to
        }
    }

    /// The first end of quiet hours after `at`, in the conference's zone.
    pub fn end_after(&self, agenda: &AgendaIndex, at: Timestamp) -> Timestamp {
        let zone = &agenda.agenda().conference.time_zone;
        let local = zone.at(at);
        let mut end = local.date().at(self.to.hour(), self.to.minute(), 0, 0);
        if end <= local.datetime() {
            end = end
                .checked_add(SignedDuration::from_hours(24))
                .unwrap_or(end);
        }
        end.to_zoned(zone.tz().clone())
            .map(|z| z.timestamp())
            .unwrap_or(at)
    }
}

/// When a reminder for `session` is due.
pub fn due(session: &Session, settings: &Settings) -> Timestamp {
    session
        .start
        .checked_sub(settings.lead)
        .unwrap_or(session.start)
}

/// What to do with a reminder that has come up.
#[derive(Clone, Debug, PartialEq)]
pub enum Verdict {
    Send(String),
    /// Not now: come back at this time.
    Later(Timestamp),
    /// Never: why.
    Drop(&'static str),
}

/// What the attendee's state says about a reminder.
#[derive(Clone, Debug)]
pub struct Recipient<'a> {
    pub saved: &'a [String],
    pub language: Lang,
    pub opted_out: bool,
}

/// Decides a reminder that has come up at `now`.
pub fn decide(
    r: &Reminder,
    agenda: &AgendaIndex,
    who: &Recipient,
    settings: &Settings,
    now: Timestamp,
) -> Verdict {
    let Some(s) = agenda.session(&r.session) else {
        return Verdict::Drop("the session is no longer in the agenda");
    };
    if !who.saved.contains(&r.session) {
        return Verdict::Drop("the session is no longer saved");
    }
    if now >= s.start {
        return Verdict::Drop("the session has started");
    }
    if who.opted_out {
        return Verdict::Drop("the number opted out");
    }
    let due = due(s, settings);
    if now < due {
        // The session moved later since the reminder was scheduled.
        return Verdict::Later(due);
    }
    if let Some(q) = &settings.quiet {
        let local = agenda.agenda().conference.time_zone.at(now).time();
        if q.contains(local) {
            let end = q.end_after(agenda, now);
            return if end < s.start {
                Verdict::Later(end)
            } else {
                Verdict::Drop("quiet hours last until the session starts")
            };
        }
    }
    Verdict::Send(text(agenda, s, now, who.language))
}

/// "Reminder: Passkeys for Real Users starts at 10:30 in Sutro Room. https://…"
pub fn text(agenda: &AgendaIndex, s: &Session, now: Timestamp, lang: Lang) -> String {
    let time = render::clock(agenda, s.start, now, lang);
    let mut out = match (lang, &s.room) {
        (Lang::Es, Some(room)) => {
            format!("Recordatorio: {} empieza a las {time} en {room}.", s.title)
        }
        (Lang::Es, None) => format!("Recordatorio: {} empieza a las {time}.", s.title),
        (_, Some(room)) => format!("Reminder: {} starts at {time} in {room}.", s.title),
        (_, None) => format!("Reminder: {} starts at {time}.", s.title),
    };
    if let Some(url) = s.url.as_ref().or(s.stream_url.as_ref()) {
        out.push(' ');
        out.push_str(url);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn quiet_hours_parse_and_wrap_past_midnight() {
        let q = QuietHours::parse("22:00-07:00").unwrap();
        let at = |h, m| Time::new(h, m, 0, 0).unwrap();
        assert!(q.contains(at(22, 0)) && q.contains(at(3, 0)) && q.contains(at(6, 59)));
        assert!(!q.contains(at(7, 0)) && !q.contains(at(12, 0)) && !q.contains(at(21, 59)));
        let day = QuietHours::parse(" 12:00 - 13:30 ").unwrap();
        assert!(day.contains(at(12, 0)) && !day.contains(at(13, 30)));
        for bad in ["", "22:00", "25:00-07:00", "22:00-07", "7-8", "10:00-10:00"] {
            assert!(QuietHours::parse(bad).is_err(), "{bad}");
        }
    }
}
