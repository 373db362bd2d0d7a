//! The SMS channel's pure parts: segment counting and paging, Twilio signatures, TwiML, phone
//! numbers. The HTTP handlers that use them are in `crate::http::sms`.

pub mod chunk;
pub mod form;
pub mod phone;
pub mod segments;
pub mod signature;
pub mod twiml;

/// `count` texts for differential tests, each up to `most - 1` of `pieces` drawn at random
/// (xorshift from `seed`), concatenated.
#[cfg(test)]
fn concatenations<'a>(
    pieces: &'a [&'a [u8]],
    mut seed: u64,
    count: usize,
    most: u64,
) -> impl Iterator<Item = Vec<u8>> + 'a {
    (0..count).map(move |_| {
        let mut text = Vec::new();
        for _ in 0..(seed % most) {
            seed ^= seed << 13;
            seed ^= seed >> 7;
            seed ^= seed << 17;
            text.extend_from_slice(pieces[(seed % pieces.len() as u64) as usize]);
        }
        seed = seed.wrapping_add(1);
        text
    })
}
