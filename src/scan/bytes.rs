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

/// True when `body`, drawn from an alphabet of `symbols` characters, looks
/// generated rather than written: a token is random, while the bytes that
/// follow an anchor in a binary's read-only data, a documentation example or
/// a table of prefixes are words, repeats and runs.
///
/// Four tests, each of which a random body fails about once in ten thousand
/// or less (measured on 10^5 bodies per length and alphabet): its character
/// entropy reaches `min(log2 n, log2 symbols) - 1.3` bits (1.7 for hex;
/// capped at 4, where short samples stop telling); few neighbours are
/// consecutive characters (`abcdef`, `0123`: a third of the pairs beyond
/// chance); a body of a mixed-case alphabet mixes two of capitals, small
/// letters and digits and, from 36 characters, switches between them often.
pub(super) fn looks_generated(body: &[u8], symbols: usize) -> bool {
    let n = body.len();
    if n < 8 {
        return false;
    }
    let mut counts = [0u32; 256];
    for b in body {
        counts[usize::from(*b)] += 1;
    }
    let entropy: f64 = counts
        .iter()
        .filter(|c| **c > 0)
        .map(|c| {
            let p = f64::from(*c) / n as f64;
            -p * p.log2()
        })
        .sum();
    // A small alphabet repeats more by chance: hex gets a wider margin.
    let margin = if symbols <= 16 { 1.7 } else { 1.3 };
    let threshold = ((n.min(symbols) as f64).log2() - margin).min(4.0);
    let steps = body.windows(2).filter(|w| w[0].abs_diff(w[1]) == 1).count();
    let classes = [
        body.iter().any(u8::is_ascii_uppercase),
        body.iter().any(u8::is_ascii_lowercase),
        body.iter().any(u8::is_ascii_digit),
    ]
    .iter()
    .filter(|c| **c)
    .count();
    // A random pair is consecutive about 2 times in `symbols`: allow a
    // third of the pairs and a margin on top of that.
    let steps_allowed = n / 3 + 2 * n / symbols + 2;
    // Random mixed-case text switches between capitals, small letters and
    // digits at about 6 pairs in 10; names run together in a binary
    // (`platformROLLBACKREGISTRYKeyShare…`) switch only between words.
    let switches = body
        .windows(2)
        .filter(|w| class_of(w[0]) != class_of(w[1]))
        .count();
    let mixed_case = symbols >= 52;
    entropy >= threshold
        && steps < steps_allowed
        && (!mixed_case || classes >= 2)
        && (!mixed_case || n < 36 || switches + 1 >= n / 4 + 2)
}

/// Capitals, small letters, digits, and the rest.
fn class_of(b: u8) -> u8 {
    match b {
        b'A'..=b'Z' => 0,
        b'a'..=b'z' => 1,
        b'0'..=b'9' => 2,
        _ => 3,
    }
}

/// True when the last six characters of `body` are the CRC32 of the rest in
/// base62 (digits, capitals, small letters), as GitHub's `ghp_`… and npm's
/// `npm_` tokens carry: a body that fails it was never issued.
pub(super) fn has_base62_crc32(body: &[u8]) -> bool {
    let Some(split) = body.len().checked_sub(6) else {
        return false;
    };
    let (random, check) = body.split_at(split);
    let mut value: u64 = 0;
    for b in check {
        let digit = match b {
            b'0'..=b'9' => b - b'0',
            b'A'..=b'Z' => b - b'A' + 10,
            b'a'..=b'z' => b - b'a' + 36,
            _ => return false,
        };
        value = value * 62 + u64::from(digit);
    }
    value == u64::from(crc32fast::hash(random))
}
