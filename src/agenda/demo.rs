//! The demo conference, embedded in the binary from `fixtures/agenda.json`.
//!
//! The fixture is written with fixed dates. So that the demo works on whatever day someone tries it,
//! [`demo_agenda`] moves it, whole days at a time, so that its first day is the date asked for
//! (`serve` asks for today in the conference's zone). Wall-clock times stay as written: a 09:00
//! keynote is at 09:00 local time on the new date, across daylight-saving changes too.

use jiff::civil::Date;
use jiff::{Span, Timestamp};

use super::{Agenda, Zone};
use crate::import::{self, Format, ImportError, ImportOptions};

/// The demo fixture's text.
pub const DEMO_JSON: &str = include_str!("../../fixtures/agenda.json");

/// The name the demo's import is recorded under.
pub const DEMO_SOURCE: &str = "fixtures/agenda.json (embedded demo)";

/// The demo conference with its first day on `first_day`.
pub fn demo_agenda(first_day: Date) -> Result<Agenda, ImportError> {
    let options = ImportOptions {
        format: Some(Format::Native),
        ..ImportOptions::default()
    };
    let imported = import::import_bytes(DEMO_SOURCE, DEMO_JSON.as_bytes(), &options)?;
    Ok(shift_to(imported.agenda, first_day))
}

/// Today's date in the demo's zone: the date `serve` places the demo on.
pub fn today_for_demo(now: Timestamp) -> Result<Date, ImportError> {
    let zone = demo_zone()?;
    Ok(zone.at(now).date())
}

fn demo_zone() -> Result<Zone, ImportError> {
    #[derive(serde::Deserialize)]
    struct Head {
        conference: HeadConference,
    }
    #[derive(serde::Deserialize)]
    struct HeadConference {
        time_zone: Zone,
    }
    let head: Head = serde_json::from_str(DEMO_JSON)
        .map_err(|err| ImportError::whole(DEMO_SOURCE, err.to_string()))?;
    Ok(head.conference.time_zone)
}

/// Moves every time in `agenda` by whole days so that its first day falls on `first_day`, keeping
/// local wall-clock times.
pub fn shift_to(mut agenda: Agenda, first_day: Date) -> Agenda {
    let Some(first) = agenda.conference.days.first().map(|d| d.date) else {
        return agenda;
    };
    let days = match first.until(first_day) {
        Ok(span) => span.get_days(),
        Err(_) => return agenda,
    };
    if days == 0 {
        return agenda;
    }
    let zone = agenda.conference.time_zone.clone();
    let shift = |ts: Timestamp| -> Timestamp {
        let local = zone.at(ts).datetime();
        local
            .checked_add(Span::new().days(days))
            .map(|dt| crate::import::FlexTime::Local(dt).resolve(&zone))
            .unwrap_or(ts)
    };
    for day in &mut agenda.conference.days {
        day.date = day
            .date
            .checked_add(Span::new().days(days))
            .unwrap_or(day.date);
        day.start = shift(day.start);
        day.end = shift(day.end);
    }
    for session in &mut agenda.sessions {
        session.start = shift(session.start);
        session.end = shift(session.end);
    }
    agenda
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn demo_is_placed_on_the_asked_date_keeping_local_times() {
        // 2027-03-14 is the day US daylight-saving time starts: local times must still be kept.
        for first_day in ["2026-11-24", "2027-03-13", "2027-03-14", "2030-01-01"] {
            let first_day: Date = first_day.parse().unwrap();
            let agenda = demo_agenda(first_day).unwrap();
            let zone = &agenda.conference.time_zone;
            assert_eq!(agenda.conference.days[0].date, first_day);
            let first = &agenda.sessions[0];
            assert_eq!(zone.at(first.start).date(), first_day);
            let original = demo_agenda(agenda_first_date()).unwrap();
            for (a, b) in agenda.sessions.iter().zip(&original.sessions) {
                assert_eq!(a.id, b.id);
                assert_eq!(zone.at(a.start).time(), zone.at(b.start).time(), "{}", a.id);
            }
        }
    }

    fn agenda_first_date() -> Date {
        let options = ImportOptions::default();
        import::import_bytes("demo", DEMO_JSON.as_bytes(), &options)
            .unwrap()
            .agenda
            .conference
            .days[0]
            .date
    }
}
