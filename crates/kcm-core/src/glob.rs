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
        match (0..=rest.len().saturating_sub(piece.len()))
            .find(|&at| rest.len() >= piece.len() && piece_at(piece, &rest[at..]))
        {
            Some(at) => rest = &rest[at + piece.len()..],
            None => return false,
        }
    }
    rest.len() >= last.len() && piece_at(last, &rest[rest.len() - last.len()..])
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
}
