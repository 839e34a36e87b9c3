//! A strength estimate for sign-up and password-change pages.
//!
//! [`strength`] is a small estimator of our own rather than the `zxcvbn` crate: it is
//! synchronous and cheap (input truncated to 100 characters, DEPENDENCIES P-20, then a
//! minimum-cost segmentation over at most a few thousand blocklist look-ups), so it needs no
//! `spawn_blocking`, adds no dependency or second dictionary, and agrees with
//! [`super::policy::PasswordPolicy`] because it uses the same blocklist. It knows fewer
//! patterns than zxcvbn (no dictionaries of names or English words beyond what the blocklist
//! holds, no dates other than years).

use super::blocklist::{BLOCKLIST_MIN_CHARS, blocklist, is_blocklisted, unleet};
use super::patterns::is_trivial_pattern;
use unicode_normalization::UnicodeNormalization;

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

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::{Duration, Instant};

    const PASSPHRASE: &str = "violet kettle drifts past seven quiet harbours";

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
}
