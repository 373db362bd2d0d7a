//! Time expressions in English and Spanish: "now", "later", "at 3pm", "at 15:30", "a las 3",
//! "tomorrow", "this afternoon", "mañana por la tarde", "tonight", "day 2", "in 20 minutes",
//! "en media hora", "after lunch", "después del almuerzo".
//!
//! [`find`] reads them from a normalised message (words, with the folded text for `15:30`) and
//! returns what was said, not when it is: [`TimeExpr`]. [`resolve`] turns an expression into a window
//! of time given the current instant and the agenda (so "after lunch" is the end of the lunch
//! session, and "day 2" is the schedule's second day). Both are pure.
//!
//! Rules worth knowing:
//! - A bare number is a time only with a marker: "at"/"a las"/"around"/"by", a colon ("15:30"),
//!   "am"/"pm", or "o'clock". So "reply 2" is not a time.
//! - An hour from 1 to 7 without am/pm means the afternoon (conferences run in the day): "at 3" is
//!   15:00. "de la mañana"/"de la tarde" say which.
//! - "mañana" alone is tomorrow; "la mañana"/"esta mañana"/"por la mañana" is the morning.

use std::ops::Range;

use jiff::civil::{Date, Time};
use jiff::{SignedDuration, Timestamp};
use serde::Serialize;

use super::normalize::Normalized;
use crate::agenda::{AgendaIndex, SessionKind};

/// A part of the day. Morning is 06:00 to 12:00, afternoon 12:00 to 17:00, evening 17:00 to the
/// end of the day.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum PartOfDay {
    Morning,
    Afternoon,
    Evening,
}

/// A point of the programme that "after …" refers to.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Milestone {
    Lunch,
    Break,
    Keynote,
}

/// A time expression as said.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum TimeExpr {
    Now,
    /// "later": from an hour from now.
    Later,
    /// A clock time (24-hour), on a day relative to today when one was said.
    At {
        hour: u8,
        minute: u8,
        day: Option<i8>,
    },
    /// "today", "tomorrow".
    Day {
        offset: i8,
    },
    /// "this afternoon", "tomorrow morning", "tonight".
    Part {
        offset: i8,
        part: PartOfDay,
    },
    /// "day 2": the schedule's day with that index.
    ConferenceDay {
        index: u8,
    },
    /// "in 20 minutes".
    In {
        minutes: u32,
    },
    /// "after lunch".
    After {
        milestone: Milestone,
    },
}

/// A time expression and the words it took.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct TimeMatch {
    pub expr: TimeExpr,
    /// Token positions in the normalised message.
    pub tokens: Range<usize>,
}

/// A window of time: `from`, and `to` when the expression names a span.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Window {
    pub from: Timestamp,
    pub to: Option<Timestamp>,
}

const NUMBER_WORDS: &[(&str, u32)] = &[
    ("one", 1),
    ("two", 2),
    ("three", 3),
    ("four", 4),
    ("five", 5),
    ("six", 6),
    ("ten", 10),
    ("fifteen", 15),
    ("twenty", 20),
    ("thirty", 30),
    ("forty", 40),
    ("fifty", 50),
    ("a", 1),
    ("an", 1),
    ("uno", 1),
    ("una", 1),
    ("un", 1),
    ("dos", 2),
    ("tres", 3),
    ("cuatro", 4),
    ("cinco", 5),
    ("seis", 6),
    ("diez", 10),
    ("quince", 15),
    ("veinte", 20),
    ("treinta", 30),
    ("cuarenta", 40),
    ("cincuenta", 50),
];

const ORDINAL_WORDS: &[(&str, u8)] = &[
    ("first", 1),
    ("second", 2),
    ("third", 3),
    ("fourth", 4),
    ("fifth", 5),
    ("1st", 1),
    ("2nd", 2),
    ("3rd", 3),
    ("4th", 4),
    ("5th", 5),
    ("primer", 1),
    ("primero", 1),
    ("primera", 1),
    ("segundo", 2),
    ("segunda", 2),
    ("tercer", 3),
    ("tercero", 3),
    ("tercera", 3),
    ("cuarto", 4),
    ("cuarta", 4),
    ("quinto", 5),
    ("quinta", 5),
];

fn number(word: &str) -> Option<u32> {
    if !word.is_empty() && word.len() <= 4 && word.bytes().all(|b| b.is_ascii_digit()) {
        return word.parse().ok();
    }
    NUMBER_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, n)| *n)
}

fn ordinal(word: &str) -> Option<u8> {
    ORDINAL_WORDS
        .iter()
        .find(|(w, _)| *w == word)
        .map(|(_, n)| *n)
}

/// Finds the time expressions in a message, left to right, without overlaps.
pub fn find(message: &Normalized) -> Vec<TimeMatch> {
    let words: Vec<&str> = message.words().collect();
    let mut found = Vec::new();
    let mut i = 0;
    while i < words.len() {
        match match_at(message, &words, i) {
            Some(m) => {
                i = m.tokens.end;
                found.push(m);
            }
            None => i += 1,
        }
    }
    // "tomorrow" + "morning", "tomorrow" + "at 3": merge a day with what follows it.
    let mut merged: Vec<TimeMatch> = Vec::with_capacity(found.len());
    for m in found {
        if let Some(prev) = merged.last_mut() {
            if let TimeExpr::Day { offset } = prev.expr {
                let adjacent = m.tokens.start <= prev.tokens.end + 2;
                let combined = match m.expr {
                    TimeExpr::Part { part, .. } => Some(TimeExpr::Part { offset, part }),
                    TimeExpr::At { hour, minute, .. } => Some(TimeExpr::At {
                        hour,
                        minute,
                        day: Some(offset),
                    }),
                    _ => None,
                };
                if let (true, Some(expr)) = (adjacent, combined) {
                    prev.expr = expr;
                    prev.tokens.end = m.tokens.end;
                    continue;
                }
            }
            if let (
                TimeExpr::At {
                    hour,
                    minute,
                    day: None,
                },
                TimeExpr::Day { offset },
            ) = (prev.expr, m.expr)
            {
                if m.tokens.start <= prev.tokens.end + 1 {
                    prev.expr = TimeExpr::At {
                        hour,
                        minute,
                        day: Some(offset),
                    };
                    prev.tokens.end = m.tokens.end;
                    continue;
                }
            }
        }
        merged.push(m);
    }
    merged
}

fn at(expr: TimeExpr, tokens: Range<usize>) -> Option<TimeMatch> {
    Some(TimeMatch { expr, tokens })
}

/// The expression starting at word `i`, if any.
fn match_at(message: &Normalized, w: &[&str], i: usize) -> Option<TimeMatch> {
    let word = |k: usize| w.get(k).copied().unwrap_or("");
    let part = |s: &str| match s {
        "morning" => Some(PartOfDay::Morning),
        "afternoon" | "tarde" => Some(PartOfDay::Afternoon),
        "evening" | "night" | "noche" => Some(PartOfDay::Evening),
        _ => None,
    };
    match word(i) {
        "now" | "ahora" | "ahorita" => at(TimeExpr::Now, i..i + 1),
        "right" if word(i + 1) == "now" => at(TimeExpr::Now, i..i + 2),
        "later" | "luego" => at(TimeExpr::Later, i..i + 1),
        "mas" if word(i + 1) == "tarde" => at(TimeExpr::Later, i..i + 2),
        "today" | "hoy" => at(TimeExpr::Day { offset: 0 }, i..i + 1),
        "tomorrow" => at(TimeExpr::Day { offset: 1 }, i..i + 1),
        "tonight" => at(
            TimeExpr::Part {
                offset: 0,
                part: PartOfDay::Evening,
            },
            i..i + 1,
        ),
        // "mañana" is tomorrow unless it follows "la", "esta" or "por la" (then it is the morning).
        "manana" => {
            let prev = if i > 0 { word(i - 1) } else { "" };
            if matches!(prev, "la" | "esta") {
                at(
                    TimeExpr::Part {
                        offset: 0,
                        part: PartOfDay::Morning,
                    },
                    i - 1..i + 1,
                )
            } else {
                at(TimeExpr::Day { offset: 1 }, i..i + 1)
            }
        }
        "this" | "esta" | "in" | "en" | "por" if part(word(i + 1)).is_some() => at(
            TimeExpr::Part {
                offset: 0,
                part: part(word(i + 1))?,
            },
            i..i + 2,
        ),
        "in" | "en" | "por"
            if matches!(word(i + 1), "the" | "la") && part(word(i + 2)).is_some() =>
        {
            at(
                TimeExpr::Part {
                    offset: 0,
                    part: part(word(i + 2))?,
                },
                i..i + 3,
            )
        }
        "por" | "en" if word(i + 1) == "la" && word(i + 2) == "manana" => at(
            TimeExpr::Part {
                offset: 0,
                part: PartOfDay::Morning,
            },
            i..i + 3,
        ),
        "morning" | "afternoon" | "evening" => at(
            TimeExpr::Part {
                offset: 0,
                part: part(word(i))?,
            },
            i..i + 1,
        ),
        "day" | "dia" => {
            let n = number(word(i + 1)).or_else(|| ordinal(word(i + 1)).map(u32::from))?;
            let index = u8::try_from(n).ok().filter(|n| (1..=14).contains(n))?;
            at(TimeExpr::ConferenceDay { index }, i..i + 2)
        }
        w if ordinal(w).is_some() && matches!(word(i + 1), "day" | "dia") => {
            at(TimeExpr::ConferenceDay { index: ordinal(w)? }, i..i + 2)
        }
        "in" | "en" => duration_at(w, i),
        "after" | "despues" => milestone_at(w, i),
        _ => clock_at(message, w, i),
    }
}

/// "in 20 minutes", "in an hour", "in half an hour", "en media hora".
fn duration_at(w: &[&str], i: usize) -> Option<TimeMatch> {
    let word = |k: usize| w.get(k).copied().unwrap_or("");
    if matches!(word(i + 1), "half" | "media") {
        let hour_at = if word(i + 2) == "an" { i + 3 } else { i + 2 };
        if matches!(word(hour_at), "hour" | "hora") {
            return at(TimeExpr::In { minutes: 30 }, i..hour_at + 1);
        }
        return None;
    }
    let n = number(word(i + 1))?;
    let minutes = match word(i + 2) {
        "minutes" | "minute" | "mins" | "min" | "minutos" | "minuto" => n,
        "hours" | "hour" | "hrs" | "hr" | "horas" | "hora" => n * 60,
        _ => return None,
    };
    (minutes <= 24 * 60).then(|| TimeMatch {
        expr: TimeExpr::In { minutes },
        tokens: i..i + 3,
    })
}

/// "after lunch", "after the keynote", "después del almuerzo", "después de comer".
fn milestone_at(w: &[&str], i: usize) -> Option<TimeMatch> {
    let mut k = i + 1;
    while matches!(w.get(k).copied(), Some("the" | "de" | "del" | "la" | "el")) {
        k += 1;
    }
    let milestone = match w.get(k).copied()? {
        "lunch" | "almuerzo" | "comida" | "comer" | "almorzar" => Milestone::Lunch,
        "break" | "coffee" | "descanso" | "pausa" | "cafe" => Milestone::Break,
        "keynote" | "keynotes" | "magistral" => Milestone::Keynote,
        _ => return None,
    };
    at(TimeExpr::After { milestone }, i..k + 1)
}

/// "at 3pm", "3 pm", "15:30", "at 3", "a las 3", "3 o'clock", "a las 5 de la tarde".
fn clock_at(message: &Normalized, w: &[&str], i: usize) -> Option<TimeMatch> {
    let word = |k: usize| w.get(k).copied().unwrap_or("");
    let (marker, start) = match word(i) {
        "at" | "around" | "by" | "from" | "before" | "until" => (true, i + 1),
        "a" | "sobre" | "hacia" if matches!(word(i + 1), "las" | "la") => (true, i + 2),
        "las" => (true, i + 1),
        _ => (false, i),
    };
    let first = word(start);
    // "3pm" and "3am" arrive as one word.
    let (digits, glued) = match first
        .strip_suffix("pm")
        .or_else(|| first.strip_suffix("am"))
    {
        Some(d) => (d, Some(first.ends_with("pm"))),
        None => (first, None),
    };
    if digits.is_empty() || digits.len() > 2 || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    let mut hour: u32 = digits.parse().ok()?;
    let mut minute: u32 = 0;
    let mut end = start + 1;
    let mut has_colon = false;
    // "15:30": the next word is the minutes when a colon separates them in the folded text.
    if glued.is_none() && end < message.tokens.len() {
        let gap =
            &message.folded[message.tokens[start].source.end..message.tokens[end].source.start];
        let next = word(end);
        if (gap == ":" || gap == "h" || gap == ".")
            && next.len() == 2
            && next.bytes().all(|b| b.is_ascii_digit())
        {
            minute = next.parse().ok()?;
            has_colon = true;
            end += 1;
        }
    }
    let mut pm = glued;
    if pm.is_none() {
        match (word(end), word(end + 1)) {
            ("pm", _) | ("p", "m") => pm = Some(true),
            ("am", _) | ("a", "m") => pm = Some(false),
            _ => {}
        }
        if pm.is_some() {
            end += if word(end).len() == 2 { 1 } else { 2 };
        }
    }
    let oclock =
        matches!(word(end), "oclock" | "o") && (word(end) == "oclock" || word(end + 1) == "clock");
    if oclock {
        end += if word(end) == "oclock" { 1 } else { 2 };
    }
    if pm.is_none() && word(end) == "de" && word(end + 1) == "la" {
        match word(end + 2) {
            "tarde" | "noche" => {
                pm = Some(true);
                end += 3;
            }
            "manana" => {
                pm = Some(false);
                end += 3;
            }
            _ => {}
        }
    }
    if !(marker || has_colon || pm.is_some() || oclock) || hour > 23 || minute > 59 {
        return None;
    }
    match pm {
        Some(true) if hour < 12 => hour += 12,
        Some(false) if hour == 12 => hour = 0,
        None if (1..=7).contains(&hour) => hour += 12,
        _ => {}
    }
    at(
        TimeExpr::At {
            hour: hour as u8,
            minute: minute as u8,
            day: None,
        },
        i..end,
    )
}

/// The window an expression names, at `now`, for this agenda. `None` when it names nothing in it
/// (a "day 5" of a two-day conference, "after lunch" with no lunch left).
pub fn resolve(expr: TimeExpr, now: Timestamp, index: &AgendaIndex) -> Option<Window> {
    let zone = &index.agenda().conference.time_zone;
    let today = zone.at(now).date();
    let local = |date: Date, time: Time| {
        crate::import::FlexTime::Local(date.to_datetime(time)).resolve(zone)
    };
    let day_window = |date: Date| {
        // A schedule day on that date (it may run past midnight) wins over the calendar day.
        match index
            .agenda()
            .conference
            .days
            .iter()
            .find(|d| d.date == date)
        {
            Some(d) => Window {
                from: d.start,
                to: Some(d.end),
            },
            None => Window {
                from: local(date, Time::midnight()),
                to: date.tomorrow().ok().map(|t| local(t, Time::midnight())),
            },
        }
    };
    let shifted = |offset: i8| {
        today
            .checked_add(jiff::Span::new().days(i64::from(offset)))
            .ok()
    };
    match expr {
        TimeExpr::Now => Some(Window {
            from: now,
            to: None,
        }),
        TimeExpr::Later => Some(Window {
            from: now.checked_add(SignedDuration::from_hours(1)).ok()?,
            to: None,
        }),
        TimeExpr::In { minutes } => Some(Window {
            from: now
                .checked_add(SignedDuration::from_mins(i64::from(minutes)))
                .ok()?,
            to: None,
        }),
        TimeExpr::At { hour, minute, day } => {
            let date = shifted(day.unwrap_or(0))?;
            let time = Time::new(hour as i8, minute as i8, 0, 0).ok()?;
            Some(Window {
                from: local(date, time),
                to: None,
            })
        }
        TimeExpr::Day { offset } => Some(day_window(shifted(offset)?)),
        TimeExpr::Part { offset, part } => {
            let date = shifted(offset)?;
            let (a, b) = match part {
                PartOfDay::Morning => (6, Some(12)),
                PartOfDay::Afternoon => (12, Some(17)),
                PartOfDay::Evening => (17, None),
            };
            let from = local(date, Time::new(a, 0, 0, 0).ok()?);
            let to = match b {
                Some(h) => local(date, Time::new(h, 0, 0, 0).ok()?),
                None => day_window(date).to?.max(from),
            };
            Some(Window { from, to: Some(to) })
        }
        TimeExpr::ConferenceDay { index: n } => {
            let day = index.day(u32::from(n))?;
            Some(Window {
                from: day.start,
                to: Some(day.end),
            })
        }
        TimeExpr::After { milestone } => {
            // The milestone on the schedule day of `now` (or the first day, before the conference)
            // that ends after `now`; failing that, the last one that day.
            let day = index.day_at(now).or_else(|| {
                index
                    .agenda()
                    .conference
                    .days
                    .iter()
                    .find(|d| d.start > now)
            })?;
            let is = |s: &crate::agenda::Session| match milestone {
                Milestone::Lunch => {
                    s.kind == SessionKind::Meal && {
                        let t = crate::text::fold(&s.title);
                        t.contains("lunch")
                            || t.contains("almuerzo")
                            || t.contains("comida")
                            || t.contains("mittag")
                    }
                }
                Milestone::Break => s.kind == SessionKind::Break,
                Milestone::Keynote => s.kind == SessionKind::Keynote,
            };
            let that_day: Vec<_> = index
                .agenda()
                .sessions
                .iter()
                .filter(|s| s.day == day.index && is(s))
                .collect();
            let chosen = that_day.iter().find(|s| s.end > now).or(that_day.last())?;
            Some(Window {
                from: chosen.end,
                to: None,
            })
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::intents::normalize::Normalizer;

    fn find_in(text: &str) -> Vec<(TimeExpr, String)> {
        let n = Normalizer::new([("tmrw".to_string(), "tomorrow".to_string())]).message(text);
        find(&n)
            .into_iter()
            .map(|m| {
                let words: Vec<&str> = m.tokens.clone().map(|i| n.word(i)).collect();
                (m.expr, words.join(" "))
            })
            .collect()
    }

    #[test]
    fn expressions_table() {
        use PartOfDay::*;
        use TimeExpr::*;
        let at = |hour, minute| At {
            hour,
            minute,
            day: None,
        };
        let cases: Vec<(&str, Vec<TimeExpr>)> = vec![
            ("what's on now", vec![Now]),
            ("right now", vec![Now]),
            ("later", vec![Later]),
            ("mas tarde", vec![Later]),
            ("at 3pm", vec![at(15, 0)]),
            ("at 3 pm", vec![at(15, 0)]),
            ("at 15:30", vec![at(15, 30)]),
            ("15:30", vec![at(15, 30)]),
            ("at 9", vec![at(9, 0)]),
            ("at 3", vec![at(15, 0)]),
            ("at 12am", vec![at(0, 0)]),
            ("a las 5 de la tarde", vec![at(17, 0)]),
            ("a las 10 de la manana", vec![at(10, 0)]),
            ("3 o'clock", vec![at(15, 0)]),
            ("reply 2", vec![]),
            ("save 3", vec![]),
            ("tomorrow", vec![Day { offset: 1 }]),
            ("tmrw", vec![Day { offset: 1 }]),
            ("today", vec![Day { offset: 0 }]),
            ("manana", vec![Day { offset: 1 }]),
            (
                "esta manana",
                vec![Part {
                    offset: 0,
                    part: Morning,
                }],
            ),
            (
                "manana por la manana",
                vec![Part {
                    offset: 1,
                    part: Morning,
                }],
            ),
            (
                "this afternoon",
                vec![Part {
                    offset: 0,
                    part: Afternoon,
                }],
            ),
            (
                "tomorrow morning",
                vec![Part {
                    offset: 1,
                    part: Morning,
                }],
            ),
            (
                "tonight",
                vec![Part {
                    offset: 0,
                    part: Evening,
                }],
            ),
            (
                "esta tarde",
                vec![Part {
                    offset: 0,
                    part: Afternoon,
                }],
            ),
            (
                "tomorrow at 10",
                vec![At {
                    hour: 10,
                    minute: 0,
                    day: Some(1),
                }],
            ),
            ("day 2", vec![ConferenceDay { index: 2 }]),
            ("day two", vec![ConferenceDay { index: 2 }]),
            ("second day", vec![ConferenceDay { index: 2 }]),
            ("dia 2", vec![ConferenceDay { index: 2 }]),
            ("in 20 minutes", vec![In { minutes: 20 }]),
            ("in 20 min", vec![In { minutes: 20 }]),
            ("in an hour", vec![In { minutes: 60 }]),
            ("in half an hour", vec![In { minutes: 30 }]),
            ("en media hora", vec![In { minutes: 30 }]),
            ("en 10 minutos", vec![In { minutes: 10 }]),
            (
                "after lunch",
                vec![After {
                    milestone: Milestone::Lunch,
                }],
            ),
            (
                "after the keynote",
                vec![After {
                    milestone: Milestone::Keynote,
                }],
            ),
            (
                "despues del almuerzo",
                vec![After {
                    milestone: Milestone::Lunch,
                }],
            ),
            (
                "despues de comer",
                vec![After {
                    milestone: Milestone::Lunch,
                }],
            ),
            ("in the bay room", vec![]),
        ];
        for (text, expected) in cases {
            let got: Vec<TimeExpr> = find_in(text).into_iter().map(|(e, _)| e).collect();
            assert_eq!(got, expected, "{text:?}");
        }
        assert_eq!(find_in("whats on at 3pm in bay room")[0].1, "at 3pm");
    }

    #[test]
    fn resolution_against_the_demo_agenda() {
        let first_day: jiff::civil::Date = "2026-06-09".parse().unwrap();
        let index = AgendaIndex::new(crate::agenda::demo::demo_agenda(first_day).unwrap());
        let zone = index.agenda().conference.time_zone.clone();
        let now: Timestamp = "2026-06-09T10:05:00-07:00".parse().unwrap();
        let local =
            |w: Option<Window>| w.map(|w| (zone.rfc3339(w.from), w.to.map(|t| zone.rfc3339(t))));
        type Case<'a> = (TimeExpr, Option<(&'a str, Option<&'a str>)>);
        let cases: Vec<Case> = vec![
            (TimeExpr::Now, Some(("2026-06-09T10:05:00-07:00", None))),
            (
                TimeExpr::In { minutes: 20 },
                Some(("2026-06-09T10:25:00-07:00", None)),
            ),
            (
                TimeExpr::At {
                    hour: 15,
                    minute: 30,
                    day: None,
                },
                Some(("2026-06-09T15:30:00-07:00", None)),
            ),
            (
                TimeExpr::At {
                    hour: 9,
                    minute: 0,
                    day: Some(1),
                },
                Some(("2026-06-10T09:00:00-07:00", None)),
            ),
            (
                TimeExpr::Day { offset: 1 },
                Some((
                    "2026-06-10T08:00:00-07:00",
                    Some("2026-06-10T18:15:00-07:00"),
                )),
            ),
            (
                TimeExpr::Part {
                    offset: 0,
                    part: PartOfDay::Afternoon,
                },
                Some((
                    "2026-06-09T12:00:00-07:00",
                    Some("2026-06-09T17:00:00-07:00"),
                )),
            ),
            (
                TimeExpr::ConferenceDay { index: 2 },
                Some((
                    "2026-06-10T08:00:00-07:00",
                    Some("2026-06-10T18:15:00-07:00"),
                )),
            ),
            (TimeExpr::ConferenceDay { index: 5 }, None),
            (
                TimeExpr::After {
                    milestone: Milestone::Lunch,
                },
                Some(("2026-06-09T13:15:00-07:00", None)),
            ),
            (
                TimeExpr::After {
                    milestone: Milestone::Break,
                },
                Some(("2026-06-09T10:30:00-07:00", None)),
            ),
            (
                TimeExpr::After {
                    milestone: Milestone::Keynote,
                },
                Some(("2026-06-09T10:00:00-07:00", None)),
            ),
        ];
        for (expr, expected) in cases {
            let got = local(resolve(expr, now, &index));
            let expected = expected.map(|(a, b)| (a.to_string(), b.map(str::to_string)));
            assert_eq!(got, expected, "{expr:?}");
        }
    }
}
