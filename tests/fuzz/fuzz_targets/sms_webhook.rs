//! See `concierge::fuzzing::sms_webhook`.
#![no_main]
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| concierge::fuzzing::sms_webhook(data));
