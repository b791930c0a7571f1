//! Test secrets shaped like the real ones (random bodies, valid checksums,
//! real macaroon structure), assembled at run time so no source file holds one.

use base64::Engine as _;

const ALNUM: &[u8] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";

/// `n` characters drawn from `alphabet` by a pseudo-random sequence fixed by `seed`.
pub fn random_text(alphabet: &str, n: usize, seed: u64) -> String {
    let symbols = alphabet.as_bytes();
    let mut state = seed.wrapping_mul(0x2545_f491_4f6c_dd1d) | 1;
    (0..n)
        .map(|_| {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            char::from(symbols[(state >> 11) as usize % symbols.len()])
        })
        .collect()
}

/// A token as GitHub (`ghp_`…) or npm (`npm_`) issue them: 30 random base62
/// characters and their CRC32 in six base62 digits.
pub fn checksummed_token(prefix: &str, seed: u64) -> String {
    let random = random_text(std::str::from_utf8(ALNUM).unwrap(), 30, seed);
    let mut crc = crc32fast::hash(random.as_bytes());
    let mut check = [b'0'; 6];
    for slot in check.iter_mut().rev() {
        *slot = ALNUM[(crc % 62) as usize];
        crc /= 62;
    }
    format!("{prefix}{random}{}", String::from_utf8_lossy(&check))
}

/// A PyPI upload token: a version-2 macaroon located at pypi.org with an
/// identifier, a caveat and a signature.
pub fn pypi_token(seed: u64) -> String {
    let identifier = random_text("0123456789abcdef", 36, seed);
    let caveat = br#"{"version": 1, "permissions": "user"}"#;
    let mut macaroon = vec![2u8, 1, 8];
    macaroon.extend_from_slice(b"pypi.org");
    macaroon.extend_from_slice(&[2, 36]);
    macaroon.extend_from_slice(identifier.as_bytes());
    macaroon.extend_from_slice(&[0, 2, caveat.len() as u8]);
    macaroon.extend_from_slice(caveat);
    macaroon.extend_from_slice(&[0, 0, 6, 32]);
    macaroon.extend(random_text(std::str::from_utf8(ALNUM).unwrap(), 32, seed + 1).bytes());
    format!(
        "pypi-{}",
        base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(macaroon)
    )
}
