//! See `concierge::fuzzing::chat_frame`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| concierge::fuzzing::chat_frame(data));
