//! Where a value ends, found without parsing it: the reading thread cuts List items out this
//! way for the other thread to parse. It scans every byte of a dump, so inside objects and
//! arrays it reads 64 bytes at a time as bit masks (one bit per byte, as simdjson's first
//! stage does): strings are masked out with a prefix XOR of the quote bits, and brackets are
//! counted only in a block where the value might end. A block holding a backslash, where an
//! escape decides what a quote means, goes byte by byte.

/// How far a scan has got through one value; kept across buffer refills.
#[derive(Debug, Default)]
pub(super) struct Cutter {
    depth: usize,
    in_string: bool,
    escaped: bool,
}

/// What [`Cutter::scan`] found in the bytes it was given.
#[derive(Debug, PartialEq, Eq)]
pub(super) struct Scanned {
    /// The bytes that belong to the value.
    pub taken: usize,
    /// Line ends among them.
    pub newlines: usize,
    /// Whether the value ended within them.
    pub ended: bool,
}

impl Scanned {
    fn ended(taken: usize, newlines: usize) -> Scanned {
        Scanned {
            taken,
            newlines,
            ended: true,
        }
    }

    fn running(taken: usize, newlines: usize) -> Scanned {
        Scanned {
            taken,
            newlines,
            ended: false,
        }
    }
}

const BLOCK: usize = 64;

impl Cutter {
    /// Scans on through the value: an object or array ends after its closing bracket, a
    /// scalar before the `,` `]` `}` or whitespace that follows it.
    pub(super) fn scan(&mut self, bytes: &[u8]) -> Scanned {
        let mut at = 0;
        let mut newlines = 0;
        while at < bytes.len() {
            let end = bytes.len().min(at + BLOCK);
            if self.depth > 0
                && !self.escaped
                && let Ok(block) = <&[u8; BLOCK]>::try_from(&bytes[at..end])
            {
                let masks = Masks::of(block);
                if masks.backslashes == 0 {
                    match self.block(&masks) {
                        Some(last) => {
                            let before = masks.newlines & ((1u64 << last) - 1);
                            return Scanned::ended(
                                at + last as usize + 1,
                                newlines + before.count_ones() as usize,
                            );
                        }
                        None => {
                            newlines += masks.newlines.count_ones() as usize;
                            at = end;
                            continue;
                        }
                    }
                }
            }
            let scanned = self.bytewise(&bytes[at..end]);
            newlines += scanned.newlines;
            if scanned.ended {
                return Scanned::ended(at + scanned.taken, newlines);
            }
            at = end;
        }
        Scanned::running(bytes.len(), newlines)
    }

    /// One block without backslashes, inside an object or array: the position of the
    /// bracket that closes the value, if it is in the block.
    fn block(&mut self, masks: &Masks) -> Option<u32> {
        let mut inside = prefix_xor(masks.quotes);
        if self.in_string {
            inside = !inside;
        }
        self.in_string = inside >> 63 == 1;
        let opens = masks.opens & !inside;
        let closes = masks.closes & !inside;
        if (closes.count_ones() as usize) < self.depth {
            self.depth = self.depth + opens.count_ones() as usize - closes.count_ones() as usize;
            return None;
        }
        let mut brackets = opens | closes;
        while brackets != 0 {
            let bit = brackets.trailing_zeros();
            brackets &= brackets - 1;
            if opens >> bit & 1 == 1 {
                self.depth += 1;
            } else {
                self.depth -= 1;
                if self.depth == 0 {
                    return Some(bit);
                }
            }
        }
        None
    }

    /// The same scan, one byte at a time.
    fn bytewise(&mut self, bytes: &[u8]) -> Scanned {
        let mut newlines = 0;
        for (at, &byte) in bytes.iter().enumerate() {
            if self.in_string {
                match (self.escaped, byte) {
                    (true, _) => self.escaped = false,
                    (false, b'\\') => self.escaped = true,
                    (false, b'"') => self.in_string = false,
                    (false, b'\n') => newlines += 1,
                    _ => {}
                }
                continue;
            }
            let ended = |taken| Scanned::ended(taken, newlines);
            match byte {
                b'"' => self.in_string = true,
                b'{' | b'[' => self.depth += 1,
                b'}' | b']' if self.depth == 0 => return ended(at),
                b'}' | b']' => {
                    self.depth -= 1;
                    if self.depth == 0 {
                        return ended(at + 1);
                    }
                }
                b',' | b' ' | b'\t' | b'\r' | b'\n' if self.depth == 0 => return ended(at),
                b'\n' => newlines += 1,
                _ => {}
            }
        }
        Scanned::running(bytes.len(), newlines)
    }
}

/// Bit `i` set where byte `i` of a block is the character named.
#[derive(Debug, Default, PartialEq, Eq)]
struct Masks {
    quotes: u64,
    backslashes: u64,
    /// `{` or `[`.
    opens: u64,
    /// `}` or `]`.
    closes: u64,
    newlines: u64,
}

impl Masks {
    /// Sixteen bytes at a time with SSE2, which every x86_64 processor has.
    #[cfg(target_arch = "x86_64")]
    fn of(block: &[u8; BLOCK]) -> Masks {
        use std::arch::x86_64::{
            __m128i, _mm_cmpeq_epi8, _mm_loadu_si128, _mm_movemask_epi8, _mm_or_si128,
            _mm_set1_epi8,
        };
        let mut masks = Masks::default();
        for (lane, bytes) in block.chunks_exact(16).enumerate() {
            let shift = 16 * lane;
            // SAFETY: `bytes` is 16 readable bytes, and an unaligned load needs nothing
            // more; the other intrinsics only compute on registers (SSE2 is part of x86_64).
            unsafe {
                let v = _mm_loadu_si128(bytes.as_ptr().cast::<__m128i>());
                let bits = |v: __m128i, c: u8| {
                    let equal = _mm_cmpeq_epi8(v, _mm_set1_epi8(c as i8));
                    u64::from(_mm_movemask_epi8(equal) as u16) << shift
                };
                // `{` and `[` (and `}` and `]`) differ only in bit 5.
                let folded = _mm_or_si128(v, _mm_set1_epi8(0x20));
                masks.quotes |= bits(v, b'"');
                masks.backslashes |= bits(v, b'\\');
                masks.opens |= bits(folded, b'{');
                masks.closes |= bits(folded, b'}');
                masks.newlines |= bits(v, b'\n');
            }
        }
        masks
    }

    #[cfg(not(target_arch = "x86_64"))]
    fn of(block: &[u8; BLOCK]) -> Masks {
        Masks::bytewise(block)
    }

    #[cfg(any(test, not(target_arch = "x86_64")))]
    fn bytewise(block: &[u8; BLOCK]) -> Masks {
        let mut masks = Masks::default();
        for (i, &byte) in block.iter().enumerate() {
            let bit = 1u64 << i;
            match byte {
                b'"' => masks.quotes |= bit,
                b'\\' => masks.backslashes |= bit,
                b'{' | b'[' => masks.opens |= bit,
                b'}' | b']' => masks.closes |= bit,
                b'\n' => masks.newlines |= bit,
                _ => {}
            }
        }
        masks
    }
}

/// Bit `i` of the result is the XOR of bits `0..=i`: set from an opening quote up to (not
/// including) its closing one.
fn prefix_xor(mut bits: u64) -> u64 {
    for shift in [1, 2, 4, 8, 16, 32] {
        bits ^= bits << shift;
    }
    bits
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// `bytes` fed to `step` in pieces of `piece`, the results added up as one scan.
    fn in_pieces(bytes: &[u8], piece: usize, mut step: impl FnMut(&[u8]) -> Scanned) -> Scanned {
        let mut at = 0;
        let mut newlines = 0;
        for chunk in bytes.chunks(piece.max(1)) {
            let scanned = step(chunk);
            newlines += scanned.newlines;
            if scanned.ended {
                return Scanned::ended(at + scanned.taken, newlines);
            }
            at += chunk.len();
        }
        Scanned::running(bytes.len(), newlines)
    }

    fn json_like() -> impl Strategy<Value = Vec<u8>> {
        let byte = prop_oneof![
            4 => Just(b' '),
            2 => Just(b'"'),
            1 => Just(b'\\'),
            2 => Just(b'{'),
            2 => Just(b'}'),
            1 => Just(b'['),
            1 => Just(b']'),
            1 => Just(b'\n'),
            1 => Just(b','),
            3 => Just(b'a'),
            1 => any::<u8>(),
        ];
        prop::collection::vec(byte, 0..400)
    }

    #[test]
    fn a_pretty_printed_object_ends_at_its_closing_brace() {
        let text = serde_json::to_vec_pretty(&serde_json::json!({
            "metadata": {"name": "web", "annotations": {"a": "}}} \" {{"}},
            "spec": {"ports": [{"port": 80}, {"port": 443}], "padding": "x".repeat(200)},
        }))
        .unwrap_or_default();
        let mut input = text.clone();
        input.extend_from_slice(b",\n{\"next\": 1}");
        let scanned = Cutter::default().scan(&input);
        assert_eq!(
            scanned,
            Scanned::ended(text.len(), text.iter().filter(|&&b| b == b'\n').count())
        );
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(2000))]
        /// Blocks at a time, fed in any pieces, find what the byte-by-byte scan finds.
        #[test]
        fn blocks_find_what_bytes_find(body in json_like(), open in prop_oneof![Just(b'{'), Just(b'['), Just(b'a')], nested in 1usize..40, pieces in 1usize..300) {
            // Opened deep, so that the value runs over many blocks.
            let mut bytes = vec![open; nested];
            bytes.extend(body);
            let mut reference = Cutter::default();
            let expected = in_pieces(&bytes, bytes.len(), |chunk| reference.bytewise(chunk));
            let mut cutter = Cutter::default();
            let found = in_pieces(&bytes, pieces, |chunk| cutter.scan(chunk));
            prop_assert_eq!(found, expected);
        }

        /// The SSE2 masks are the byte-by-byte ones.
        #[test]
        fn masks_match_bytewise(block in prop::collection::vec(any::<u8>(), BLOCK)) {
            let block: &[u8; BLOCK] = block.as_slice().try_into().unwrap_or(&[0; BLOCK]);
            prop_assert_eq!(Masks::of(block), Masks::bytewise(block));
        }
    }
}
