//! What concierge tells attendees without being asked: reminders before saved sessions, notices
//! when a re-import changes a session they saved, and organisers' announcements.
//!
//! The deciding is pure and lives in [`reminders`], [`changes`] and [`announce`]: given the agenda,
//! what the attendee saved and the time, what should be said and when. [`worker`] is the IO: it
//! schedules through the store, runs the reminder loop and hands messages to the channels (the
//! outbox for SMS, the transcript and live push for the web chat). Every message is written in the
//! same sled transaction as the record that stops it from being sent twice.

pub mod announce;
pub mod changes;
pub mod reminders;
pub mod worker;
