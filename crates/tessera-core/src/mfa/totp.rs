//! TOTP authenticators (RFC 6238) through `totp-rs`: the interoperable defaults every
//! authenticator app understands (HMAC-SHA-1, 6 digits, 30 s steps), ±1 step of clock skew,
//! `otpauth://` URIs and their QR codes. Replay protection (a step accepted once) is the
//! store's job: [`check`] returns the matched step.

use crate::CoreError;
use qrcode::QrCode;
use qrcode::render::svg;
use time::OffsetDateTime;
use totp_rs::{Builder, Secret, Totp};

/// Bytes of a new shared secret (160 bits, RFC 4226 §4's recommendation).
pub const SECRET_BYTES: usize = 20;
/// Seconds per step.
pub const STEP_SECONDS: i64 = 30;

/// What a user needs to add the authenticator to an app.
#[derive(Debug, Clone)]
pub struct TotpSetup {
    /// The secret in base32, to type in by hand.
    pub manual_key: String,
    /// The `otpauth://totp/…` URI.
    pub uri: String,
    /// The URI as a QR code (an SVG document).
    pub qr_svg: String,
}

/// A new random shared secret.
pub fn new_secret() -> Result<Vec<u8>, CoreError> {
    let mut b = vec![0u8; SECRET_BYTES];
    crate::secret::fill_random(&mut b)?;
    Ok(b)
}

fn totp(secret: &[u8], issuer: &str, account: &str) -> Result<Totp, CoreError> {
    // `:` separates issuer and account in the URI label, so neither may contain one.
    let clean = |s: &str| s.replace(':', "_");
    Builder::new()
        .with_secret(Secret::from(secret.to_vec()))
        .with_issuer(Some(clean(issuer)))
        .with_account_name(clean(account))
        .build()
        .map_err(|e| CoreError::Internal(format!("totp: {e}")))
}

/// The setup data for a secret.
pub fn setup(secret: &[u8], issuer: &str, account: &str) -> Result<TotpSetup, CoreError> {
    let t = totp(secret, issuer, account)?;
    let uri = t.to_url().map_err(|e| CoreError::Internal(format!("totp uri: {e}")))?;
    let manual = t.secret().to_base32();
    let code = QrCode::new(uri.as_bytes()).map_err(|e| CoreError::Internal(format!("qr: {e}")))?;
    let qr_svg = code
        .render::<svg::Color<'_>>()
        .min_dimensions(200, 200)
        .quiet_zone(true)
        .dark_color(svg::Color("#000000"))
        .light_color(svg::Color("#ffffff"))
        .build();
    // Groups of four are easier to type.
    let manual_key = manual.as_bytes().chunks(4).map(|c| String::from_utf8_lossy(c).into_owned()).collect::<Vec<_>>().join(" ");
    Ok(TotpSetup { manual_key, uri, qr_svg })
}

/// Normalises a typed code: digits only, spaces and dashes dropped; `None` if it cannot be one.
pub fn normalise(code: &str) -> Option<String> {
    let c: String = code.chars().filter(|c| !c.is_whitespace() && *c != '-').collect();
    (c.len() == 6 && c.chars().all(|c| c.is_ascii_digit())).then_some(c)
}

/// The step `code` matches at `now` (within ±1 step), if any.
pub fn check(secret: &[u8], code: &str, now: OffsetDateTime) -> Result<Option<i64>, CoreError> {
    let Some(code) = normalise(code) else { return Ok(None) };
    let Ok(unix) = u64::try_from(now.unix_timestamp()) else { return Ok(None) };
    let t = totp(secret, "tessera", "user")?;
    Ok(t.check(&code, unix).and_then(|step| i64::try_from(step).ok()))
}

#[cfg(test)]
mod tests {
    use super::*;

    // RFC 6238 Appendix B, SHA-1 secret "12345678901234567890", truncated to 6 digits.
    const RFC_SECRET: &[u8] = b"12345678901234567890";

    fn at(unix: i64) -> OffsetDateTime {
        OffsetDateTime::from_unix_timestamp(unix).unwrap()
    }

    #[test]
    fn rfc_6238_vectors_match_with_their_step() {
        assert_eq!(check(RFC_SECRET, "287082", at(59)).unwrap(), Some(1));
        assert_eq!(check(RFC_SECRET, "081804", at(1_111_111_109)).unwrap(), Some(1_111_111_109 / 30));
        assert_eq!(check(RFC_SECRET, "050471", at(1_111_111_111)).unwrap(), Some(1_111_111_111 / 30));
        assert_eq!(check(RFC_SECRET, "005924", at(1_234_567_890)).unwrap(), Some(1_234_567_890 / 30));
    }

    #[test]
    fn one_step_of_skew_either_way_and_no_more() {
        // 287082 is the code of step 1 (t = 30..59).
        assert_eq!(check(RFC_SECRET, "287082", at(89)).unwrap(), Some(1));
        assert_eq!(check(RFC_SECRET, "287082", at(5)).unwrap(), Some(1));
        assert_eq!(check(RFC_SECRET, "287082", at(95)).unwrap(), None);
    }

    #[test]
    fn malformed_codes_are_no_match() {
        for bad in ["", "12345", "1234567", "abcdef", "２８７０８２"] {
            assert_eq!(check(RFC_SECRET, bad, at(59)).unwrap(), None, "{bad:?}");
        }
        assert_eq!(check(RFC_SECRET, "287 082", at(59)).unwrap(), Some(1));
    }

    #[test]
    fn setup_gives_an_otpauth_uri_and_a_qr_code() {
        let s = setup(&new_secret().unwrap(), "Tessera", "alice:x").unwrap();
        assert!(s.uri.starts_with("otpauth://totp/Tessera:alice_x?"), "{}", s.uri);
        assert!(s.uri.contains("issuer=Tessera"));
        assert!(s.qr_svg.contains("<svg"));
        assert_eq!(s.manual_key.replace(' ', "").len(), 32);
    }
}
