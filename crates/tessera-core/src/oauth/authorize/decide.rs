//! What a valid authorization request of a signed-in user needs: signing in again, a
//! stronger sign-in, consent, or a code ([`assess`], without side effects); and issuing the
//! code ([`issue_code`]).

use super::{AuthorizationRequest, AuthorizationResponse};
use crate::accounts::Authenticated;
use crate::mfa::level::{AuthLevel, acr_claim};
use crate::oauth::OAuthError;
use crate::oauth::admin_access::check_admin_user;
use crate::oauth::context::OAuthContext;
use crate::oauth::model::AuthorizationCode;
use crate::oauth::scope::Scopes;
use crate::secret::SecretToken;
use time::Duration;

/// What a signed-in user's authorization request needs (before any side effect).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Decision {
    Login,
    StepUp(AuthLevel),
    Consent,
    Issue,
}

/// The checks of the authorization decision for a signed-in user, without side effects;
/// `consent_given` when the user has just approved this very request.
pub(crate) async fn assess(ctx: &OAuthContext, req: &AuthorizationRequest, who: &Authenticated, consent_given: bool) -> Result<Decision, OAuthError> {
    let now = ctx.now();
    // max_age=0 is prompt=login (OIDC Core §3.1.2.1); otherwise the whole elapsed time
    // counts, not its truncation to seconds.
    let too_old = req.max_age.is_some_and(|m| m == 0 || now - who.session.auth_time > Duration::seconds(m));
    let other_user = req.hint_subject.as_ref().is_some_and(|s| *s != who.user.id.to_string());
    if req.prompt.login || too_old || other_user {
        if req.prompt.none {
            return Err(OAuthError::LoginRequired("the user must sign in again".into()));
        }
        return Ok(Decision::Login);
    }
    if AuthLevel::of(&who.session.amr) < req.required_level {
        if req.prompt.none {
            return Err(OAuthError::InteractionRequired("the sign-in must be stronger (a second factor)".into()));
        }
        return Ok(Decision::StepUp(req.required_level));
    }
    if consent_given {
        return Ok(Decision::Issue);
    }
    let consented = match ctx.store.find_consent(who.user.id, &req.client.id).await? {
        Some(s) => Scopes::parse(&s).is_ok_and(|granted| req.scope.is_subset(&granted)),
        None => false,
    };
    if req.prompt.consent || !(req.client.skip_consent || consented) {
        if req.prompt.none {
            return Err(OAuthError::ConsentRequired("the user has not consented to this client".into()));
        }
        return Ok(Decision::Consent);
    }
    Ok(Decision::Issue)
}

/// Stores an authorization code for the request and the user's session; the response
/// carrying it.
pub(crate) async fn issue_code(ctx: &OAuthContext, req: &AuthorizationRequest, who: &Authenticated) -> Result<AuthorizationResponse, OAuthError> {
    check_admin_user(&req.scope, &who.user)?;
    let now = ctx.now();
    let code = SecretToken::generate()?;
    let record = AuthorizationCode {
        hash: code.hash(),
        client_id: req.client.id.clone(),
        user_id: who.user.id,
        sid: who.session.handle,
        redirect_uri: req.redirect_uri.clone(),
        scope: req.scope.to_string(),
        nonce: req.nonce.clone(),
        code_challenge: req.code_challenge.clone(),
        auth_time: who.session.auth_time,
        amr: who.session.amr.clone(),
        acr: Some(acr_claim(&who.session.amr, &req.acr_values)),
        audience: req.audience.clone(),
        expires_at: now + ctx.config.code_ttl,
    };
    ctx.store.create_authorization_code(&record, now).await?;
    Ok(req.reply_to().respond(&ctx.config, vec![("code".into(), code.expose().to_owned())]))
}
