//! How sessions and the engine's own sentences are written, in English and Spanish, short enough
//! for SMS. What the engine writes itself stays in the GSM-7 alphabet where it can (a hyphen, not
//! an en dash), since one other character makes the whole SMS cost twice as many segments. Times are in the conference's local time; a day name is added when the session is not
//! on the day of the message.

use jiff::Timestamp;
use jiff::civil::Date;

use crate::agenda::query::RoomId;
use crate::agenda::{AgendaIndex, Filter, Session};
use crate::intents::Lang;

const DAYS_EN: [&str; 7] = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"];
// Day names stay in the GSM-7 alphabet (no "á"), so a reply is not switched to UCS-2 for them.
const DAYS_ES: [&str; 7] = ["lun", "mar", "mié", "jue", "vie", "sab", "dom"];

/// A reply template with each `{name}` that `value` knows replaced by its value, in one pass: a
/// value is never read as a template itself (a session titled "Why {when} matters" stays so).
/// Braces around a name `value` does not know are kept as written.
pub fn substitute<'v>(template: &str, value: impl Fn(&str) -> Option<&'v str>) -> String {
    let mut out = String::with_capacity(template.len() + 64);
    let mut rest = template;
    while let Some(open) = rest.find('{') {
        out.push_str(&rest[..open]);
        let after = &rest[open + 1..];
        match after
            .find('}')
            .and_then(|close| Some((value(&after[..close])?, close)))
        {
            Some((v, close)) => {
                out.push_str(v);
                rest = &after[close + 1..];
            }
            None => {
                out.push('{');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

/// "10:30", or "Wed 10:30" when `ts` is on another local day than `now`.
pub fn clock(agenda: &AgendaIndex, ts: Timestamp, now: Timestamp, lang: Lang) -> String {
    let mut out = String::with_capacity(9);
    write_clock(&mut out, agenda, ts, local_day(agenda, now), lang);
    out
}

/// The conference's local date at `now`: what [`write_line`] and [`write_clock`] compare with.
pub fn local_day(agenda: &AgendaIndex, now: Timestamp) -> Date {
    agenda.agenda().conference.time_zone.at(now).date()
}

/// Writes [`clock`] to `out`, `today` being the local date of the message.
fn write_clock(out: &mut String, agenda: &AgendaIndex, ts: Timestamp, today: Date, lang: Lang) {
    let at = agenda.agenda().conference.time_zone.at(ts);
    if at.date() != today {
        let day = at.weekday().to_monday_zero_offset() as usize;
        let names = if lang == Lang::Es { DAYS_ES } else { DAYS_EN };
        out.push_str(names[day]);
        out.push(' ');
    }
    write_hh_mm(out, &at);
}

/// "09:05", written directly: `strftime` parses its format string on every call, and lists
/// write one per line.
pub fn hh_mm(at: &jiff::Zoned) -> String {
    let mut out = String::with_capacity(5);
    write_hh_mm(&mut out, at);
    out
}

fn write_hh_mm(out: &mut String, at: &jiff::Zoned) {
    // Hours and minutes are 0-59: two digits each.
    let digits = |n: i8| [n / 10, n % 10].map(|d| char::from(b'0' + d as u8));
    out.extend(digits(at.hour()));
    out.push(':');
    out.extend(digits(at.minute()));
}

/// Writes "1) 10:30 Bay Room: Designing SMS Conversations People Answer" to `out` (straight into
/// the reply: a list writes one per session), `today` being [`local_day`] of the message.
pub fn write_line(
    out: &mut String,
    agenda: &AgendaIndex,
    s: &Session,
    n: usize,
    today: Date,
    lang: Lang,
) {
    // Lists are numbered from 1 and short: a digit is pushed, not formatted.
    match u8::try_from(n) {
        Ok(digit @ 0..=9) => out.push(char::from(b'0' + digit)),
        _ => {
            use std::fmt::Write;
            let _ = write!(out, "{n}");
        }
    }
    out.push_str(") ");
    write_clock(out, agenda, s.start, today, lang);
    if let Some(room) = &s.room {
        out.push(' ');
        out.push_str(room);
    }
    out.push_str(": ");
    out.push_str(&s.title);
}

/// "Designing SMS Conversations People Answer (10:30, Bay Room)"
pub fn short(agenda: &AgendaIndex, s: &Session, now: Timestamp, lang: Lang) -> String {
    let mut out = format!("{} ({}", s.title, clock(agenda, s.start, now, lang));
    if let Some(room) = &s.room {
        out.push_str(", ");
        out.push_str(room);
    }
    out.push(')');
    out
}

/// Title, time span, room, speakers and the stream link.
pub fn session_detail(agenda: &AgendaIndex, s: &Session, now: Timestamp, lang: Lang) -> String {
    let zone = &agenda.agenda().conference.time_zone;
    let mut out = format!(
        "{}: {}-{}",
        s.title,
        clock(agenda, s.start, now, lang),
        hh_mm(&zone.at(s.end))
    );
    if let Some(room) = &s.room {
        out.push_str(if lang == Lang::Es { " en " } else { " in " });
        out.push_str(room);
    }
    let speakers: Vec<&str> = agenda.speakers_of(s).map(|sp| sp.name.as_str()).collect();
    if !speakers.is_empty() {
        out.push_str(if lang == Lang::Es {
            ", con "
        } else {
            ", with "
        });
        out.push_str(&speakers.join(", "));
    }
    out.push('.');
    if let Some(url) = s.stream_url.as_ref().or(s.recording_url.as_ref()) {
        out.push_str(if lang == Lang::Es {
            " Ver: "
        } else {
            " Watch: "
        });
        out.push_str(url);
    }
    out
}

/// What is on in a room now and next, and its stream.
pub fn room_detail(agenda: &AgendaIndex, room: RoomId, now: Timestamp, lang: Lang) -> String {
    let filter = Filter {
        room: Some(room),
        include_breaks: true,
        ..Filter::default()
    };
    let name = agenda.room_name(room);
    let es = lang == Lang::Es;
    let mut out = name.to_string();
    let on = agenda.now(now, &filter);
    let next = agenda.next(now, &filter, 1);
    if let Some(s) = on.first() {
        out.push_str(if es { ". Ahora: " } else { ". Now: " });
        out.push_str(&s.title);
    }
    if let Some(s) = next.first() {
        out.push_str(if es { ". Después: " } else { ". Next: " });
        out.push_str(&format!(
            "{} {}",
            clock(agenda, s.start, now, lang),
            s.title
        ));
    }
    if on.is_empty() && next.is_empty() {
        out.push_str(if es {
            ": no queda nada programado aquí."
        } else {
            ": nothing more is scheduled here."
        });
        return out;
    }
    out.push('.');
    // The link goes last, with nothing after it, so phones recognise it.
    if let Some(url) = on
        .first()
        .or(next.first())
        .and_then(|s| s.stream_url.as_ref())
    {
        out.push_str(if es { " Ver: " } else { " Watch: " });
        out.push_str(url);
    }
    out
}

/// The engine's own sentences.
pub struct Texts {
    es: bool,
}

impl Texts {
    pub fn new(lang: Lang) -> Texts {
        Texts {
            es: lang == Lang::Es,
        }
    }

    pub fn more_hint(&self) -> &'static str {
        if self.es {
            "Responde MAS para ver el resto."
        } else {
            "Reply MORE for more."
        }
    }

    pub fn save_hint(&self, n: usize) -> String {
        match (self.es, n) {
            (false, 1) => "Reply 1 to save it.".into(),
            (false, n) => format!("Reply 1-{n} to save one."),
            (true, 1) => "Responde 1 para guardarla.".into(),
            (true, n) => format!("Responde 1-{n} para guardar una."),
        }
    }

    pub fn media_only(&self) -> &'static str {
        if self.es {
            "Solo puedo leer texto. Escríbeme tu pregunta."
        } else {
            "I can only read text. Please type your question."
        }
    }

    pub fn offer_expert(&self) -> &'static str {
        if self.es {
            "Sigo sin entenderte. ¿Quieres hablar con un experto? Responde SI."
        } else {
            "I'm still not getting it. Want to talk to an expert? Reply YES."
        }
    }

    pub fn already_saved(&self, title: &str) -> String {
        if self.es {
            format!("Ya está en tu agenda: {title}")
        } else {
            format!("Already in your agenda: {title}")
        }
    }

    pub fn not_saved(&self, title: &str) -> String {
        if self.es {
            format!("No está en tu agenda: {title}")
        } else {
            format!("That's not in your agenda: {title}")
        }
    }

    /// Several sessions fit the words; the list follows.
    pub fn which_one(&self) -> &'static str {
        if self.es {
            "¿Cuál? Responde con su número:"
        } else {
            "Which one? Reply with its number:"
        }
    }

    pub fn next_for_you(&self, short: &str) -> String {
        if self.es {
            format!("Siguiente para ti: {short}")
        } else {
            format!("Next for you: {short}")
        }
    }

    pub fn overlaps(&self, title: &str) -> String {
        if self.es {
            format!("Se solapa con {title}.")
        } else {
            format!("It overlaps with {title}.")
        }
    }

    pub fn overlaps_number(&self, n: usize) -> String {
        if self.es {
            format!("se solapa con {n}")
        } else {
            format!("overlaps with {n}")
        }
    }

    pub fn expert(&self, skill: Option<&str>) -> String {
        match (self.es, skill) {
            (false, Some(s)) => {
                let article = if s.starts_with(['a', 'e', 'i', 'o', 'u']) {
                    "an"
                } else {
                    "a"
                };
                format!("{article} {s} expert")
            }
            (false, None) => "an expert".into(),
            (true, Some(s)) => format!("un experto en {s}"),
            (true, None) => "un experto".into(),
        }
    }

    /// Sent when an expert accepts the attendee's hand-off.
    pub fn expert_joined(&self, name: &str) -> String {
        if self.es {
            format!("Te atiende {name}. Escribe aquí tu pregunta; BOT para volver conmigo.")
        } else {
            format!("You're now talking with {name}. Reply here; text BOT to come back to me.")
        }
    }

    /// Sent when the expert completes the conversation.
    pub fn expert_done(&self) -> &'static str {
        if self.es {
            "La conversación con el experto ha terminado. Vuelves a estar conmigo; pregúntame lo que quieras."
        } else {
            "Your conversation with the expert has ended. You're back with me; ask me anything."
        }
    }

    /// Sent when no expert took a hand-off in time.
    pub fn expired(&self) -> &'static str {
        if self.es {
            "Lo siento, ningún experto pudo atenderte a tiempo. Vuelves a estar conmigo; puedes pedir un experto otra vez más tarde."
        } else {
            "Sorry, no expert could take your question in time. You're back with me; you can ask for an expert again later."
        }
    }

    pub fn still_waiting(&self) -> &'static str {
        if self.es {
            "Lo he añadido para el experto. Sigues en la cola; escribe BOT para volver conmigo."
        } else {
            "Added for the expert. You're still in line; text BOT to come back to me."
        }
    }

    /// The queue position and wait, or that nobody is online (then, with a skill, the talks on it
    /// as the next best thing).
    pub fn wait(&self, q: &crate::routing::Estimate, who: &str, skill: Option<&str>) -> String {
        let meanwhile = match (q.minutes, skill, self.es) {
            (None, Some(s), false) => format!(" Meanwhile, try \"talks about {s}\"."),
            (None, Some(s), true) => format!(" Mientras tanto, prueba \"charlas sobre {s}\"."),
            _ => String::new(),
        };
        let text = match (self.es, q.minutes) {
            (false, None) => format!(
                "No one is online for that right now; I'll keep your question and text you when {who} can take it."
            ),
            (true, None) => format!(
                "Ahora no hay nadie conectado para eso; guardo tu pregunta y te escribo cuando {who} pueda atenderte."
            ),
            (false, Some(0)) => "Someone is free now.".into(),
            (true, Some(0)) => "Hay alguien libre ahora.".into(),
            (false, Some(m)) => format!("You're #{} in line, about {m} min.", q.position),
            (true, Some(m)) => format!("Eres el #{} en la cola, unos {m} min.", q.position),
        };
        text + &meanwhile
    }

    pub fn in_word(&self) -> &'static str {
        if self.es { "en" } else { "in" }
    }

    pub fn about_word(&self) -> &'static str {
        if self.es { "sobre" } else { "about" }
    }

    pub fn from_word(&self, when: &str) -> String {
        if self.es {
            format!("desde {when}")
        } else {
            format!("from {when}")
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_are_filled_in_one_pass() {
        let values = [
            ("when", "10:30"),
            ("title", "Why {when} matters"),
            ("x", ""),
        ];
        let fill = |template: &str| {
            substitute(template, |name| {
                values.iter().find(|(k, _)| *k == name).map(|(_, v)| *v)
            })
        };
        assert_eq!(fill("{title} at {when}."), "Why {when} matters at 10:30.");
        assert_eq!(fill("{when}{when}{x}!"), "10:3010:30!");
        // Unknown names, lone and unclosed braces stay as written.
        assert_eq!(fill("{nope} { {when"), "{nope} { {when");
        assert_eq!(fill("{{when}}"), "{10:30}");
        assert_eq!(fill("ñ{when}é"), "ñ10:30é");
        assert_eq!(fill(""), "");
    }

    #[test]
    fn hh_mm_pads_hours_and_minutes() {
        let at = |s: &str| s.parse::<jiff::Zoned>().unwrap();
        assert_eq!(
            hh_mm(&at("2026-06-09T09:05:59-07:00[America/Los_Angeles]")),
            "09:05"
        );
        assert_eq!(
            hh_mm(&at("2026-06-09T23:50:00+02:00[Europe/Brussels]")),
            "23:50"
        );
        assert_eq!(hh_mm(&at("2026-06-09T00:00:00+00:00[UTC]")), "00:00");
    }
}
