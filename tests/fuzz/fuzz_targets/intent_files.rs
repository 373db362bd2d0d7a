//! See `concierge::fuzzing::intent_files`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| concierge::fuzzing::intent_files(data));
