//! Wildcard patterns, as AWS policies write them: `*` matches any run of characters
//! (none included); in IAM's string and ARN patterns `?` also matches any one
//! character. Every other character matches itself.
//!
//! The matcher splits the pattern at its `*`s and finds each piece leftmost in what is
//! left of the value: no backtracking, so a hostile pattern cannot make it slow
//! (lengths times pieces at worst).

/// Which characters are wildcards.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Wildcards {
    /// `*` only (the XKS proxy's rules).
    Star,
    /// `*` and `?` (IAM policies' `StringLike`, `ArnLike`, actions and resources).
    StarAndQuestionMark,
}

/// Whether `value` matches `pattern` with `wildcards`.
pub fn matches(pattern: &str, value: &str, wildcards: Wildcards) -> bool {
    let question = wildcards == Wildcards::StarAndQuestionMark;
    if !question || !pattern.contains('?') {
        return matches_stars(pattern, value);
    }
    let value: Vec<char> = value.chars().collect();
    let mut pieces = pattern.split('*').map(|p| p.chars().collect::<Vec<_>>());
    let first = pieces.next().unwrap_or_default();
    if !piece_at(&first, &value) {
        return false;
    }
    let mut rest = &value[first.len()..];
    let pieces: Vec<Vec<char>> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty(); // no `*`: the whole value was the first piece
    };
    for piece in middle {
        match find_piece(piece, rest) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && piece_at(last, &rest[rest.len() - last.len()..])
}

/// Where `piece` (with `?` for any one character) first occurs in `text`, by the
/// Shift-And search: one pass over `text` at ⌈piece/64⌉ words a character. A policy's
/// pattern may be 32 KiB and a request's value (an encryption context) 128 KiB;
/// trying the piece at every position would be their product.
fn find_piece(piece: &[char], text: &[char]) -> Option<usize> {
    let len = piece.len();
    if len == 0 {
        return Some(0);
    }
    let words = len.div_ceil(64);
    // Bit j of a character's mask: the piece's j-th character may be it (`?` may be
    // any, so its bits are in every mask, and alone in the mask of the others).
    let mut any = vec![0u64; words];
    for (j, _) in piece.iter().enumerate().filter(|(_, c)| **c == '?') {
        any[j / 64] |= 1 << (j % 64);
    }
    let mut masks: std::collections::HashMap<char, Vec<u64>> = std::collections::HashMap::new();
    for (j, c) in piece.iter().enumerate().filter(|(_, c)| **c != '?') {
        masks.entry(*c).or_insert_with(|| any.clone())[j / 64] |= 1 << (j % 64);
    }
    let (last_word, last_bit) = ((len - 1) / 64, 1u64 << ((len - 1) % 64));
    // Bit j of the state: the piece's first j + 1 characters end here.
    let mut state = vec![0u64; words];
    for (i, t) in text.iter().enumerate() {
        let mask = masks.get(t).unwrap_or(&any);
        let mut carry = 1u64;
        for (word, allowed) in state.iter_mut().zip(mask) {
            let next_carry = *word >> 63;
            *word = ((*word << 1) | carry) & allowed;
            carry = next_carry;
        }
        if state[last_word] & last_bit != 0 {
            return Some(i + 1 - len);
        }
    }
    None
}

/// Whether `piece` (with `?` for any one character) matches the start of `value`.
fn piece_at(piece: &[char], value: &[char]) -> bool {
    value.len() >= piece.len() && piece.iter().zip(value).all(|(p, v)| *p == '?' || p == v)
}

/// [`matches`] with `*` the only wildcard, on the bytes as they are.
fn matches_stars(pattern: &str, value: &str) -> bool {
    let mut pieces = pattern.split('*');
    let first = pieces.next().unwrap_or("");
    let Some(mut rest) = value.strip_prefix(first) else {
        return false;
    };
    let pieces: Vec<&str> = pieces.collect();
    let Some((last, middle)) = pieces.split_last() else {
        return rest.is_empty(); // no `*`: the whole value was the prefix
    };
    for piece in middle {
        match rest.find(piece) {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && rest.ends_with(last)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn stars_match_any_run() {
        let star = |p, v| matches(p, v, Wildcards::Star);
        assert!(star(
            "arn:aws:iam::1:role/app-*",
            "arn:aws:iam::1:role/app-x"
        ));
        assert!(star(
            "arn:aws:iam::1:role/app-*",
            "arn:aws:iam::1:role/app-"
        ));
        assert!(!star("arn:aws:iam::1:role/app-*", "arn:aws:iam::1:role/ap"));
        assert!(star("*", ""));
        assert!(star("Encrypt", "Encrypt"));
        assert!(!star("Encrypt", "Encrypts"));
        assert!(!star("Encrypt", "Encryp"));
        assert!(star("a*b*c", "a-b-b-c"));
        assert!(!star("a*b*c", "a-c-b"));
        assert!(star("*.amazonaws.com", "s3.us-east-1.amazonaws.com"));
        assert!(!star("ab*ba", "aba"), "the pieces may not overlap");
        assert!(!star("a?c", "abc"), "? is itself here");
        assert!(star("a?c", "a?c"));
        let long = "a".repeat(10_000);
        assert!(!star(&format!("{}b", "*a".repeat(100)), &long));
    }

    #[test]
    fn question_marks_match_one_character() {
        let iam = |p, v| matches(p, v, Wildcards::StarAndQuestionMark);
        assert!(iam("a?c", "abc"));
        assert!(iam("a?c", "aéc"), "one character, not one byte");
        assert!(!iam("a?c", "ac"));
        assert!(!iam("a?c", "abbc"));
        assert!(iam("?", "x"));
        assert!(!iam("?", ""));
        assert!(iam("*?", "x"));
        assert!(!iam("*?", ""));
        assert!(iam("kms:Gen*Key?", "kms:GenerateDataKeyX"));
        assert!(iam("a*?c*d", "abcxcd"));
        assert!(!iam("a*?c*d", "acd"));
        assert!(iam("ab*ba", "abba"));
        assert!(!iam("ab*b?", "abb"), "the pieces may not overlap");
        assert!(iam("no wildcards", "no wildcards"));
        let long = "a".repeat(10_000);
        assert!(!iam(&format!("{}?b", "*a".repeat(100)), &long));
    }

    /// The plain definition: `*` any run, `?` any one character, by recursion.
    fn reference(pattern: &[char], value: &[char]) -> bool {
        match pattern.split_first() {
            None => value.is_empty(),
            Some(('*', rest)) => (0..=value.len()).any(|i| reference(rest, &value[i..])),
            Some((p, rest)) => value
                .split_first()
                .is_some_and(|(v, tail)| (*p == '?' || p == v) && reference(rest, tail)),
        }
    }

    #[test]
    fn the_search_agrees_with_the_definition() {
        // Every pattern and value of up to 6 characters over a small alphabet.
        let alphabet = ['a', 'b', '?', '*'];
        let mut checked = 0;
        for pattern_len in 0..=5u32 {
            for code in 0..4usize.pow(pattern_len) {
                let pattern: String = (0..pattern_len)
                    .map(|i| alphabet[(code / 4usize.pow(i)) % 4])
                    .collect();
                for value_len in 0..=6u32 {
                    for v in 0..2usize.pow(value_len) {
                        let value: String = (0..value_len)
                            .map(|i| if (v >> i) & 1 == 1 { 'b' } else { 'a' })
                            .collect();
                        let p: Vec<char> = pattern.chars().collect();
                        let x: Vec<char> = value.chars().collect();
                        assert_eq!(
                            matches(&pattern, &value, Wildcards::StarAndQuestionMark),
                            reference(&p, &x),
                            "{pattern:?} ~ {value:?}"
                        );
                        checked += 1;
                    }
                }
            }
        }
        assert!(checked > 100_000);
    }

    #[test]
    fn long_pieces_span_several_words() {
        let piece = format!("{}?{}", "x".repeat(100), "y".repeat(100));
        let value = format!(
            "{}{}z{}{}",
            "q".repeat(500),
            "x".repeat(100),
            "y".repeat(100),
            "q"
        );
        assert!(matches(
            &format!("*{piece}*"),
            &value,
            Wildcards::StarAndQuestionMark
        ));
        let wrong = value.replace('z', "zz");
        assert!(!matches(
            &format!("*{piece}*"),
            &wrong,
            Wildcards::StarAndQuestionMark
        ));
        // A hostile pair: a 32 Ki-character pattern against a 128 Ki-character value.
        let pattern = format!("*{}b*", "a?".repeat(16_000));
        let value = "a".repeat(128 * 1024);
        assert!(!matches(&pattern, &value, Wildcards::StarAndQuestionMark));
    }
}
