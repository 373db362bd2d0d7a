//! Eight bytes at a time: whether any of them falls in given ranges of ASCII values, in a few
//! arithmetic steps on one `u64` (SWAR). The scans of SMS text (TwiML escaping, segment counting)
//! use it to pass over plain runs instead of looking at every byte; only a chunk that has
//! something in the ranges is then read byte by byte.

const LOW: u64 = 0x0101_0101_0101_0101;
const HIGH: u64 = 0x8080_8080_8080_8080;

/// Eight bytes of a text.
#[derive(Clone, Copy, Debug)]
pub struct Chunk(u64);

impl Chunk {
    /// The eight bytes of `bytes` from `i`, if there are eight.
    #[inline]
    pub fn at(bytes: &[u8], i: usize) -> Option<Chunk> {
        let eight: [u8; 8] = bytes.get(i..i.checked_add(8)?)?.try_into().ok()?;
        Some(Chunk(u64::from_le_bytes(eight)))
    }

    /// Whether any byte is not ASCII (0x80 and above).
    #[inline]
    pub fn any_non_ascii(self) -> bool {
        self.0 & HIGH != 0
    }

    /// Whether any ASCII byte is in one of `ranges` (inclusive, each below 0x80). Bytes 0x80 and
    /// above are in none ([`Chunk::any_non_ascii`] asks about them).
    #[inline]
    pub fn any_in(self, ranges: &[(u8, u8)]) -> bool {
        let ascii = !self.0 & HIGH;
        let seven = self.0 & !HIGH;
        // A 7-bit byte plus (0x80 - k) never carries into the next byte, and its high bit is set
        // exactly when the byte is at least k (for k from 0 to 0x80).
        let at_least = |k: u8| seven.wrapping_add(LOW * u64::from(0x80 - k)) & HIGH;
        let mut hits = 0;
        for &(lo, hi) in ranges {
            debug_assert!(lo <= hi && hi < 0x80, "{lo:#x}..={hi:#x}");
            hits |= at_least(lo) & !at_least(hi + 1);
        }
        hits & ascii != 0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_byte_at_every_place_is_found_exactly_by_its_ranges() {
        let ranges: &[&[(u8, u8)]] = &[
            &[(0, 0x1f)],
            &[(0x21, 0x27), (0x3c, 0x3c), (0x3e, 0x3e), (0x7f, 0x7f)],
            &[(0x5b, 0x60), (0x7b, 0x7f)],
            &[(0, 0x7f)],
        ];
        for ranges in ranges {
            for b in 0u8..=255 {
                let inside = ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&b));
                // Among bytes that are in no range (a space, a letter) and bytes that are.
                for filler in [b' ', b'a', 0x00, 0x7f, 0xff] {
                    for at in 0..8 {
                        let mut eight = [filler; 8];
                        eight[at] = b;
                        let chunk = Chunk::at(&eight, 0).unwrap();
                        let filler_inside =
                            ranges.iter().any(|&(lo, hi)| (lo..=hi).contains(&filler));
                        assert_eq!(
                            chunk.any_in(ranges),
                            inside || filler_inside,
                            "{b:#x} at {at} among {filler:#x} in {ranges:x?}"
                        );
                        assert_eq!(chunk.any_non_ascii(), b >= 0x80 || filler >= 0x80);
                    }
                }
            }
        }
        assert!(Chunk::at(b"seven b", 0).is_none());
        assert!(Chunk::at(b"eight by", 1).is_none());
        assert!(Chunk::at(b"eight by", usize::MAX).is_none());
    }
}
