//! concierge: a conference concierge that answers attendees over SMS and web chat.
//!
//! See `ARCHITECTURE.md` for the map of the code, its layers and its invariants.

pub mod agenda;
pub mod cli;
pub mod clock;
pub mod config;
pub mod conversation;
pub mod desk;
pub mod fuzzing;
pub mod http;
pub mod ical;
pub mod import;
pub mod inbox;
pub mod intents;
pub mod limits;
pub mod live_intents;
pub mod load;
pub mod locks;
pub mod metrics;
pub mod notices;
pub mod outbound;
pub mod routing;
pub mod sched;
pub mod sms;
pub mod state;
pub mod store;
pub mod text;
