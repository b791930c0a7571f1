//! The byte classes tokens are made of, and runs of them in a line: shared by the anchor checks and the service rules.

/// A letter or digit.
pub(super) fn is_alnum(b: u8) -> bool {
    b.is_ascii_alphanumeric()
}
/// A letter, digit or `_`.
pub(super) fn is_word(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_'
}
/// A letter, digit, `_` or `-`.
pub(super) fn is_token(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'_' || b == b'-'
}
/// A byte of base64 text (the padding aside).
pub(super) fn is_b64(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'/' || b == b'+'
}

/// How many bytes from `from` satisfy `pred`.
pub(super) fn run(line: &[u8], from: usize, pred: fn(u8) -> bool) -> usize {
    line.get(from..)
        .map_or(0, |rest| rest.iter().take_while(|b| pred(**b)).count())
}

/// True when the byte before `at` does not continue a token of `pred`.
pub(super) fn starts_token(line: &[u8], at: usize, pred: fn(u8) -> bool) -> bool {
    at == 0 || !pred(line[at - 1])
}
