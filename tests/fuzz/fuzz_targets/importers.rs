//! See `concierge::fuzzing::importers`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| concierge::fuzzing::importers(data));
