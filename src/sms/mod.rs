//! The SMS channel's pure parts: segment counting and paging, Twilio signatures, TwiML, phone
//! numbers. The HTTP handlers that use them are in `crate::http::sms`.

pub mod chunk;
pub mod form;
pub mod phone;
pub mod segments;
pub mod signature;
pub mod twiml;
