//! Patterned passwords, at any length: the password policy refuses, and the strength
//! estimator scores as trivial, a password that is (after at most two digits or symbols are
//! taken off its ends) nothing but
//!
//! - a repetition: one unit of at most [`MAX_REPEAT_UNIT`] characters repeated at least
//!   twice ("aaaaaaaa", "abcabcabcabc", "Tr0ub4dor&3Tr0ub4dor&3"), the last copy possibly
//!   cut short (a longer unit is as strong as itself, which is enough); or
//! - runs of at least [`MIN_RUN`] characters, each taking one constant step: the same
//!   character ("aaaa"), the next or previous letter or digit with wrap-around
//!   ("123456789012345", "zyxw", "xyzabc"), or the same move between neighbouring keys of a
//!   US QWERTY keyboard along a row, a column or a diagonal ("qwertyuiop" + "asdfgh",
//!   "1qaz" + "2wsx" + "3edc" + "4rfv", "zaq1"); shifted symbols count as their keys
//!   ("!QAZ@WSX").
//!
//! Spaces and other characters off the keyboard break runs, so passphrases of ordinary words
//! are never refused here.

/// Shortest run counted as a pattern (shorter ones are too likely in a random password).
pub const MIN_RUN: usize = 4;

/// Longest unit whose repetition counts as a pattern.
pub const MAX_REPEAT_UNIT: usize = 12;

/// Most digits or symbols taken off the ends ("abcdefghijklmnop1!").
const MAX_DECORATION: usize = 2;

/// Keyboard rows (US QWERTY) and their shifted forms; columns line up as people walk them:
/// "1qaz", "2wsx", … are one column each (so the number row is shifted by one).
const ROWS: [(&str, &str, i32); 4] = [
    ("`1234567890-=", "~!@#$%^&*()_+", -1),
    ("qwertyuiop[]\\", "QWERTYUIOP{}|", 0),
    ("asdfghjkl;'", "ASDFGHJKL:\"", 0),
    ("zxcvbnm,./", "ZXCVBNM<>?", 0),
];

/// Row and column of a key, if it is on the keyboard.
fn key(c: char) -> Option<(i32, i32)> {
    ROWS.iter().zip(0i32..).find_map(|((plain, shifted, offset), row)| {
        let col = plain.chars().position(|k| k == c).or_else(|| shifted.chars().position(|k| k == c))?;
        i32::try_from(col).ok().map(|col| (row, col + offset))
    })
}

/// One step between two characters.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Step {
    /// The same character.
    Same,
    /// Next (+1) or previous (−1) in the alphabet or among the digits, wrapping around.
    Alphabet(i32),
    /// A move to a neighbouring key: (rows, columns).
    Key(i32, i32),
}

/// Every step that leads from `a` to `b` (a pair can be, say, both "next letter" and a key
/// move: "e" → "f").
fn steps(a: char, b: char) -> Vec<Step> {
    let mut out = Vec::with_capacity(2);
    if a == b {
        out.push(Step::Same);
        return out;
    }
    let cyclic = |a: char, b: char, first: char, len: i32| {
        let (x, y) = (u32::from(a).wrapping_sub(u32::from(first)), u32::from(b).wrapping_sub(u32::from(first)));
        let (x, y) = (i32::try_from(x).ok()?, i32::try_from(y).ok()?);
        if !(0..len).contains(&x) || !(0..len).contains(&y) {
            return None;
        }
        match (y - x).rem_euclid(len) {
            1 => Some(1),
            d if d == len - 1 => Some(-1),
            _ => None,
        }
    };
    let (la, lb) = (a.to_ascii_lowercase(), b.to_ascii_lowercase());
    if let Some(d) = cyclic(la, lb, 'a', 26).or_else(|| cyclic(a, b, '0', 10)) {
        out.push(Step::Alphabet(d));
    }
    if let (Some((ra, ca)), Some((rb, cb))) = (key(a), key(b)) {
        let (dr, dc) = (rb - ra, cb - ca);
        if dr.abs() <= 1 && dc.abs() <= 1 && (dr, dc) != (0, 0) {
            out.push(Step::Key(dr, dc));
        }
    }
    out
}

/// Whether the whole of `c` is one short unit repeated at least twice (the last copy may be
/// cut).
fn is_repetition(c: &[char]) -> bool {
    let n = c.len();
    (1..=(n / 2).min(MAX_REPEAT_UNIT)).any(|p| c.iter().zip(c.iter().skip(p)).all(|(a, b)| a == b))
}

/// Whether `c` splits into runs of at least [`MIN_RUN`] characters with one step each.
fn is_runs(c: &[char]) -> bool {
    let n = c.len();
    if n < MIN_RUN {
        return false;
    }
    // step_sets[k]: the steps from c[k] to c[k + 1].
    let step_sets: Vec<Vec<Step>> = c.windows(2).map(|w| match w {
        [a, b] => steps(*a, *b),
        _ => Vec::new(),
    }).collect();
    // covered[j]: the first j characters split into runs.
    let mut covered = vec![false; n + 1];
    if let Some(first) = covered.first_mut() {
        *first = true;
    }
    for i in 0..n {
        if !covered.get(i).copied().unwrap_or(false) {
            continue;
        }
        // Extend a run from i while some step is shared by all its pairs.
        let mut common: Vec<Step> = match step_sets.get(i) {
            Some(s) => s.clone(),
            None => continue,
        };
        let mut j = i + 1; // c[i..=j] is the run so far
        while !common.is_empty() {
            if j + 1 - i >= MIN_RUN
                && let Some(slot) = covered.get_mut(j + 1)
            {
                *slot = true;
            }
            let Some(next) = step_sets.get(j) else { break };
            common.retain(|s| next.contains(s));
            j += 1;
        }
    }
    covered.last().copied().unwrap_or(false)
}

fn is_decoration(c: char) -> bool {
    c.is_ascii_digit() || c.is_ascii_punctuation()
}

fn is_patterned(c: &[char]) -> bool {
    is_repetition(c) || is_runs(c)
}

/// Whether a (normalised) password is a sequence, a repetition or a keyboard walk, possibly
/// with up to two digits or symbols added at its ends.
pub fn is_trivial_pattern(normalised: &str) -> bool {
    let c: Vec<char> = normalised.chars().collect();
    if c.is_empty() {
        return false;
    }
    if is_patterned(&c) {
        return true;
    }
    let lead = c.iter().take(MAX_DECORATION).take_while(|x| is_decoration(**x)).count();
    let trail = c.iter().rev().take(MAX_DECORATION).take_while(|x| is_decoration(**x)).count();
    for l in 0..=lead {
        for t in 0..=trail {
            if l + t == 0 || l + t + MIN_RUN > c.len() {
                continue;
            }
            if c.get(l..c.len() - t).is_some_and(is_patterned) {
                return true;
            }
        }
    }
    false
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequences_are_patterns_at_any_length() {
        for pw in [
            "123456789012345", "1234567890123456789012345678901234567890", "0987654321098765", "abcdefghijklmnop",
            "zyxwvutsrqponmlk", "uvwxyzabcdefghij", "abcdefghijklmnopqrstuvwxyzabcdefghijklmnopqrstuvwxyz",
            "9876543210987654321", "abcdefghijklmnop1!", "!abcdefghijklmno", "12345678abcdefgh", "abcdefgh87654321",
        ] {
            assert!(is_trivial_pattern(pw), "{pw} is a sequence");
        }
    }

    #[test]
    fn repeats_are_patterns() {
        for pw in [
            "aaaaaaaaaaaaaaa", "abcabcabcabcabc", "abababababababab", "passwordpassword", "tr0ub4dor&3tr0ub4dor&3",
            "xyz1xyz1xyz1xyz1", "aaaabbbbccccdddd", "1111111111111111", "!!!!!!!!!!!!!!!!", "a1!a1!a1!a1!a1!a1!",
            "abcdeabcdeabcdeab",
        ] {
            assert!(is_trivial_pattern(pw), "{pw} is a repetition");
        }
    }

    #[test]
    fn keyboard_walks_are_patterns() {
        for pw in [
            "qwertyuiopasdfgh", "qwertyuiop[]asdfghjkl", "1qaz2wsx3edc4rfv", "zaq1xsw2cde3vfr4", "!qaz@wsx#edc$rfv",
            "poiuytrewqlkjhgf", "asdfghjkl;'zxcvb", "zxcvbnm,./asdfgh", "`1234567890-=qwer", "qwertyqwertyqwerty",
            "1qaz2wsx3edc4rfv5tgb", "mnbvcxzlkjhgfdsa", "1qaz1qaz1qaz1qaz",
        ] {
            assert!(is_trivial_pattern(pw), "{pw} is a keyboard walk");
        }
    }

    #[test]
    fn ordinary_passwords_are_not_patterns() {
        for pw in [
            "correct horse battery staple", "an unusual passphrase 7391 for sign-up", "another long passphrase for root",
            "xk4#jq9!vl2@mz7p", "zq7vm2kx9wpl4rt", "correcthorsebatterystaple", "monkey banana kettle", "tr0ub4dor&3",
            "were dress trees", "qwerty is not my password", "abc def ghi jkl mno", "abcd efgh ijkl mnop",
            "my 1qaz walk is in here", "ilovemydog1", "january1990", "qwe123asd456zxc7", "",
            "zq7vm2kx9wpl4rt zq7vm2kx9wpl4rt ",
        ] {
            assert!(!is_trivial_pattern(pw), "{pw:?} is not a pattern");
        }
    }

    #[test]
    fn keys_line_up_in_columns() {
        assert_eq!(key('1').map(|k| k.1), key('q').map(|k| k.1));
        assert_eq!(key('q').map(|k| k.1), key('a').map(|k| k.1));
        assert_eq!(key('a').map(|k| k.1), key('z').map(|k| k.1));
        assert_eq!(key('!'), key('1'));
        assert_eq!(key('é'), None);
    }
}
