//! Recovery codes: ten single-use look-up secrets, shown once and stored as SHA-256 hashes
//! (each carries 80 random bits, so a fast hash suffices, as for tokens).

use crate::CoreError;
use crate::secret::TokenHash;
use std::fmt;

/// How many codes a user gets.
pub const COUNT: usize = 10;
/// Characters per code (5 bits each: 80 bits).
const LEN: usize = 16;
/// Crockford's base32 alphabet, lower case (no i, l, o, u).
const ALPHABET: &[u8; 32] = b"0123456789abcdefghjkmnpqrstvwxyz";

/// One recovery code, to be shown to the user once. Redacted `Debug`, no `Display`.
#[derive(Clone)]
pub struct RecoveryCode(String);

impl fmt::Debug for RecoveryCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("RecoveryCode(<redacted>)")
    }
}

impl RecoveryCode {
    /// The code as shown: four groups of four, e.g. `7k2m-q9x4-…`.
    pub fn expose(&self) -> String {
        self.0.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join("-")
    }
    /// What the store keeps.
    pub fn hash(&self) -> TokenHash {
        TokenHash::of(self.0.as_bytes())
    }
}

/// Ten fresh codes.
pub fn generate() -> Result<Vec<RecoveryCode>, CoreError> {
    (0..COUNT)
        .map(|_| {
            let mut raw = [0u8; LEN];
            crate::secret::fill_random(&mut raw)?;
            let s: String = raw.iter().map(|b| char::from(ALPHABET.get(usize::from(b & 31)).copied().unwrap_or(b'0'))).collect();
            Ok(RecoveryCode(s))
        })
        .collect()
}

/// The hash of a typed code: case, spaces and dashes do not matter, and the letters people
/// confuse with digits (o, i, l) are read as the digits; `None` if it cannot be a code.
pub fn hash_typed(typed: &str) -> Option<TokenHash> {
    let s: String = typed
        .chars()
        .filter(|c| !c.is_whitespace() && *c != '-')
        .map(|c| match c.to_ascii_lowercase() {
            'o' => '0',
            'i' | 'l' => '1',
            other => other,
        })
        .collect();
    (s.len() == LEN && s.bytes().all(|b| ALPHABET.contains(&b))).then(|| TokenHash::of(s.as_bytes()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ten_distinct_codes_that_read_back_however_typed() {
        let codes = generate().unwrap();
        assert_eq!(codes.len(), COUNT);
        let mut seen: Vec<_> = codes.iter().map(|c| c.expose()).collect();
        seen.sort();
        seen.dedup();
        assert_eq!(seen.len(), COUNT);
        let c = &codes[0];
        assert_eq!(c.expose().len(), 19);
        assert_eq!(hash_typed(&c.expose()), Some(c.hash()));
        assert_eq!(hash_typed(&c.expose().to_uppercase().replace('-', " ")), Some(c.hash()));
        assert!(!format!("{c:?}").contains(&c.expose()));
    }

    #[test]
    fn confusable_letters_and_garbage() {
        assert_eq!(hash_typed("0000-1111-0000-1111"), hash_typed("oooo-iiii-OOOO-llll"));
        assert_eq!(hash_typed("short"), None);
        assert_eq!(hash_typed("uuuu-uuuu-uuuu-uuuu"), None);
    }
}
