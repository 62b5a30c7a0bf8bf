//! Byte scans both readers repeat for every line: line ends found with `memchr` (SIMD, where
//! `str::split` tests a byte at a time after each match) and indentation eight spaces at a
//! time.

/// The pieces between line ends, as `text.split('\n')` gives them.
pub(crate) fn split_lines(text: &str) -> impl Iterator<Item = &str> {
    let ends = memchr::memchr_iter(b'\n', text.as_bytes()).chain([text.len()]);
    let mut start = 0;
    ends.map(move |end| {
        let line = &text[start..end];
        start = end + 1;
        line
    })
}

/// The lines with their line ends, as `text.split_inclusive('\n')` gives them.
pub(crate) fn lines_inclusive(text: &str) -> impl Iterator<Item = &str> {
    let mut rest = text;
    std::iter::from_fn(move || {
        if rest.is_empty() {
            return None;
        }
        let end = memchr::memchr(b'\n', rest.as_bytes()).map_or(rest.len(), |at| at + 1);
        let (line, after) = rest.split_at(end);
        rest = after;
        Some(line)
    })
}

/// How many spaces `bytes` starts with, eight at a time.
pub(crate) fn leading_spaces(bytes: &[u8]) -> usize {
    const SPACES: u64 = u64::from_le_bytes([b' '; 8]);
    let mut words = bytes.chunks_exact(8);
    let mut at = 0;
    for word in words.by_ref() {
        let differs = u64::from_le_bytes(word.try_into().unwrap_or_default()) ^ SPACES;
        if differs != 0 {
            // Little-endian: the lowest differing byte is the first non-space.
            return at + (differs.trailing_zeros() / 8) as usize;
        }
        at += 8;
    }
    at + words.remainder().iter().take_while(|&&b| b == b' ').count()
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    proptest! {
        /// The scans are the standard library's, faster.
        #[test]
        fn scans_match_the_standard_library(text in "[ a\n\r:é]{0,40}") {
            prop_assert_eq!(split_lines(&text).collect::<Vec<_>>(), text.split('\n').collect::<Vec<_>>());
            prop_assert_eq!(lines_inclusive(&text).collect::<Vec<_>>(), text.split_inclusive('\n').collect::<Vec<_>>());
            prop_assert_eq!(leading_spaces(text.as_bytes()), text.len() - text.trim_start_matches(' ').len());
        }
    }
}
