//! Passkeys through `webauthn-rs`: the relying party derived from the issuer, and the
//! ceremonies (registration, passwordless sign-in with discoverable credentials, and a
//! passkey as second factor). Ceremony state is returned to the caller to be kept in the
//! store; nothing here touches the store, HTTP or the clock.

use crate::CoreError;
use crate::ids::UserId;
use serde_json::Value;
use std::sync::Arc;
use webauthn_rs::prelude::{
    AuthenticationResult, DiscoverableAuthentication, Passkey, PasskeyAuthentication, PasskeyRegistration,
    PublicKeyCredential, RegisterPublicKeyCredential, Url, Webauthn, WebauthnBuilder,
};

/// Longest name a user may give a passkey.
pub const MAX_NAME_CHARS: usize = 64;

/// The WebAuthn relying party: its id is the issuer's host, its origin the issuer's origin.
#[derive(Clone)]
pub struct Passkeys {
    webauthn: Arc<Webauthn>,
    rp_id: String,
}

impl std::fmt::Debug for Passkeys {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Passkeys").field("rp_id", &self.rp_id).finish()
    }
}

/// Why an issuer cannot be a WebAuthn relying party.
#[derive(Debug, thiserror::Error)]
#[error("passkeys are unavailable: {0}")]
pub struct PasskeysUnavailable(pub String);

fn bad(e: impl std::fmt::Display) -> CoreError {
    CoreError::Invalid(format!("The passkey could not be verified ({e})."))
}

fn internal(e: impl std::fmt::Display) -> CoreError {
    CoreError::Internal(format!("webauthn: {e}"))
}

/// What a verified passkey assertion proved.
#[derive(Debug, Clone)]
pub struct Assertion {
    /// The authenticator's credential id.
    pub credential_id: Vec<u8>,
    /// The credential with its updated counter and flags (to be stored), if it changed.
    pub updated: Option<String>,
    /// The authenticator reports the credential as backed up / synced.
    pub synced: bool,
}

impl Passkeys {
    /// The relying party for `issuer` (`https://host[:port]`, or `http://localhost:port`).
    /// IP-address hosts cannot be relying-party ids (browsers refuse them).
    pub fn for_issuer(issuer: &str, rp_name: &str) -> Result<Self, PasskeysUnavailable> {
        let url = Url::parse(issuer).map_err(|e| PasskeysUnavailable(format!("issuer {issuer:?}: {e}")))?;
        let host = url.host_str().ok_or_else(|| PasskeysUnavailable("the issuer has no host".into()))?.to_owned();
        if host.parse::<std::net::IpAddr>().is_ok() || host.starts_with('[') {
            return Err(PasskeysUnavailable(format!(
                "the issuer's host {host} is an IP address; WebAuthn needs a domain name (e.g. localhost)"
            )));
        }
        let origin = Url::parse(&url.origin().ascii_serialization()).map_err(|e| PasskeysUnavailable(e.to_string()))?;
        let webauthn = WebauthnBuilder::new(&host, &origin)
            .and_then(|b| b.rp_name(rp_name).build())
            .map_err(|e| PasskeysUnavailable(e.to_string()))?;
        Ok(Self { webauthn: Arc::new(webauthn), rp_id: host })
    }

    /// The relying-party id (the issuer's host).
    pub fn rp_id(&self) -> &str {
        &self.rp_id
    }

    /// Options for `navigator.credentials.create()` and the state to keep. The credential is
    /// requested as discoverable (a resident key), so it can later sign in without a
    /// username; `existing` are excluded so one authenticator is not registered twice.
    pub fn start_registration(
        &self,
        user: UserId,
        username: &str,
        display_name: &str,
        existing: &[String],
    ) -> Result<(Value, String), CoreError> {
        let exclude: Vec<_> = existing
            .iter()
            .filter_map(|d| serde_json::from_str::<Passkey>(d).ok())
            .map(|p| p.cred_id().clone())
            .collect();
        let (ccr, state) = self
            .webauthn
            .start_passkey_registration(user.as_uuid(), username, display_name, Some(exclude).filter(|e| !e.is_empty()))
            .map_err(internal)?;
        let mut options = serde_json::to_value(&ccr).map_err(internal)?;
        // webauthn-rs asks for a non-resident key; passwordless sign-in needs a discoverable
        // one (the registration check does not depend on it).
        if let Some(sel) = options.pointer_mut("/publicKey/authenticatorSelection").and_then(Value::as_object_mut) {
            sel.insert("residentKey".into(), Value::from("required"));
            sel.insert("requireResidentKey".into(), Value::from(true));
        }
        let state = serde_json::to_string(&state).map_err(internal)?;
        Ok((options, state))
    }

    /// Verifies the browser's answer to a registration; returns the credential id and the
    /// credential to store.
    pub fn finish_registration(&self, state: &str, credential: &Value) -> Result<(Vec<u8>, String), CoreError> {
        let state: PasskeyRegistration = serde_json::from_str(state).map_err(internal)?;
        let reg: RegisterPublicKeyCredential = serde_json::from_value(credential.clone()).map_err(bad)?;
        let passkey = self.webauthn.finish_passkey_registration(&reg, &state).map_err(bad)?;
        let data = serde_json::to_string(&passkey).map_err(internal)?;
        Ok((passkey.cred_id().clone(), data))
    }

    /// Options for a passwordless sign-in (any discoverable credential of this site).
    pub fn start_discoverable(&self) -> Result<(Value, String), CoreError> {
        let (rcr, state) = self.webauthn.start_discoverable_authentication().map_err(internal)?;
        let options = serde_json::to_value(&rcr).map_err(internal)?;
        Ok((options, serde_json::to_string(&state).map_err(internal)?))
    }

    /// The credential id and user handle of a passwordless answer, to find the passkey.
    pub fn identify(&self, credential: &Value) -> Result<(UserId, Vec<u8>), CoreError> {
        let cred: PublicKeyCredential = serde_json::from_value(credential.clone()).map_err(bad)?;
        let (user, id) = self.webauthn.identify_discoverable_authentication(&cred).map_err(bad)?;
        Ok((UserId::from_uuid(user), id.to_vec()))
    }

    /// Verifies a passwordless answer against the stored passkey `data`.
    pub fn finish_discoverable(&self, state: &str, credential: &Value, data: &str) -> Result<Assertion, CoreError> {
        let state: DiscoverableAuthentication = serde_json::from_str(state).map_err(internal)?;
        let cred: PublicKeyCredential = serde_json::from_value(credential.clone()).map_err(bad)?;
        let mut passkey: Passkey = serde_json::from_str(data).map_err(internal)?;
        let result = self.webauthn.finish_discoverable_authentication_v2(&cred, state, &passkey).map_err(bad)?;
        assertion(&mut passkey, &result)
    }

    /// Options for a passkey as a second factor: only `passkeys` (the user's) are allowed.
    pub fn start_second_factor(&self, passkeys: &[String]) -> Result<(Value, String), CoreError> {
        let keys: Vec<Passkey> = passkeys.iter().filter_map(|d| serde_json::from_str(d).ok()).collect();
        if keys.is_empty() {
            return Err(CoreError::Invalid("You have no passkey registered.".into()));
        }
        let (rcr, state) = self.webauthn.start_passkey_authentication(&keys).map_err(internal)?;
        let options = serde_json::to_value(&rcr).map_err(internal)?;
        Ok((options, serde_json::to_string(&state).map_err(internal)?))
    }

    /// Verifies a second-factor answer; `data` is the stored passkey the answer names.
    pub fn finish_second_factor(&self, state: &str, credential: &Value, data: &str) -> Result<Assertion, CoreError> {
        let state: PasskeyAuthentication = serde_json::from_str(state).map_err(internal)?;
        let cred: PublicKeyCredential = serde_json::from_value(credential.clone()).map_err(bad)?;
        let mut passkey: Passkey = serde_json::from_str(data).map_err(internal)?;
        let result = self.webauthn.finish_passkey_authentication(&cred, &state).map_err(bad)?;
        assertion(&mut passkey, &result)
    }

    /// The credential id an answer names (to look the stored passkey up).
    pub fn credential_id(credential: &Value) -> Result<Vec<u8>, CoreError> {
        let cred: PublicKeyCredential = serde_json::from_value(credential.clone()).map_err(bad)?;
        Ok(cred.get_credential_id().to_vec())
    }
}

fn assertion(passkey: &mut Passkey, result: &AuthenticationResult) -> Result<Assertion, CoreError> {
    if !result.user_verified() {
        return Err(bad("the authenticator did not verify the user"));
    }
    let updated = match passkey.update_credential(result) {
        Some(true) => Some(serde_json::to_string(passkey).map_err(internal)?),
        Some(false) => None,
        None => return Err(bad("the answer names another credential")),
    };
    Ok(Assertion { credential_id: result.cred_id().clone(), updated, synced: result.backup_eligible() })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ip_address_issuers_cannot_be_relying_parties() {
        assert!(Passkeys::for_issuer("http://127.0.0.1:8080", "Tessera").is_err());
        assert!(Passkeys::for_issuer("http://[::1]:8080", "Tessera").is_err());
        let p = Passkeys::for_issuer("http://localhost:8080", "Tessera").unwrap();
        assert_eq!(p.rp_id(), "localhost");
        assert!(Passkeys::for_issuer("https://id.example.com/tenant", "Tessera").is_ok());
    }

    #[test]
    fn registration_asks_for_a_discoverable_user_verified_credential() {
        let p = Passkeys::for_issuer("http://localhost:8080", "Tessera").unwrap();
        let (options, state) = p.start_registration(UserId::new(), "alice", "Alice", &[]).unwrap();
        let sel = &options["publicKey"]["authenticatorSelection"];
        assert_eq!(sel["residentKey"], "required");
        assert_eq!(sel["requireResidentKey"], true);
        assert_eq!(sel["userVerification"], "required");
        assert_eq!(options["publicKey"]["rp"]["id"], "localhost");
        assert!(!state.is_empty());
    }

    #[test]
    fn garbage_answers_are_refused_not_panics() {
        let p = Passkeys::for_issuer("http://localhost:8080", "Tessera").unwrap();
        let (_, state) = p.start_discoverable().unwrap();
        assert!(p.identify(&serde_json::json!({"id": 1})).is_err());
        assert!(p.finish_discoverable(&state, &serde_json::json!({}), "{}").is_err());
        assert!(Passkeys::credential_id(&serde_json::json!("x")).is_err());
    }
}
