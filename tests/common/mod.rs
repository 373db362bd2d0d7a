//! Helpers shared by the integration tests.
#![allow(dead_code)]

use std::path::PathBuf;

use concierge::agenda::Agenda;
use concierge::import::{self, ImportOptions};
use jiff::Timestamp;

/// `../shared/data/schedules/NAME`: the real conference schedules beside the project.
pub fn schedule(name: &str) -> PathBuf {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("../shared/data/schedules")
        .join(name);
    assert!(
        path.is_file(),
        "{} is missing: the tests read the real schedules from ../shared beside the project",
        path.display()
    );
    path
}

pub fn fixture(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("fixtures")
        .join(name)
}

pub fn import_schedule(name: &str) -> Agenda {
    import::import_file(&schedule(name), &ImportOptions::default())
        .unwrap_or_else(|err| panic!("{err}"))
        .agenda
}

pub fn ts(s: &str) -> Timestamp {
    s.parse()
        .unwrap_or_else(|err| panic!("bad timestamp {s:?} in test: {err}"))
}
