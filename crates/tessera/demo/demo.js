// The demo relying party: authorization code + PKCE in the browser. The PKCE verifier and
// state survive the redirect in sessionStorage; the tokens live only in this variable.
(function () {
  'use strict';
  var tokens = null;
  var config = null;
  var $ = function (id) { return document.getElementById(id); };

  function b64url(bytes) {
    var s = '';
    for (var i = 0; i < bytes.length; i++) s += String.fromCharCode(bytes[i]);
    return btoa(s).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }
  function random(n) { var b = new Uint8Array(n); crypto.getRandomValues(b); return b64url(b); }
  async function challengeOf(verifier) {
    var d = await crypto.subtle.digest('SHA-256', new TextEncoder().encode(verifier));
    return b64url(new Uint8Array(d));
  }
  function show(signedIn, text) {
    $('status').textContent = text;
    $('call-api').disabled = !signedIn;
    $('sign-out').disabled = !signedIn;
    $('sign-in').disabled = signedIn;
  }

  async function signIn() {
    var verifier = random(32), state = random(16), nonce = random(16);
    sessionStorage.setItem('demo.pkce', JSON.stringify({ verifier: verifier, state: state, nonce: nonce }));
    var p = new URLSearchParams({
      response_type: 'code', client_id: config.client_id, redirect_uri: config.redirect_uri,
      scope: 'openid profile email', state: state, nonce: nonce,
      code_challenge: await challengeOf(verifier), code_challenge_method: 'S256'
    });
    location.assign(config.authorization_endpoint + '?' + p.toString());
  }

  async function finishSignIn(params) {
    var saved = JSON.parse(sessionStorage.getItem('demo.pkce') || 'null');
    sessionStorage.removeItem('demo.pkce');
    history.replaceState(null, '', '/');
    if (params.get('error')) { show(false, 'Sign-in failed: ' + params.get('error')); return; }
    if (!saved || params.get('state') !== saved.state) { show(false, 'Sign-in failed: state mismatch'); return; }
    if (params.get('iss') !== config.issuer) { show(false, 'Sign-in failed: wrong issuer'); return; }
    var body = new URLSearchParams({
      grant_type: 'authorization_code', code: params.get('code'), redirect_uri: config.redirect_uri,
      client_id: config.client_id, code_verifier: saved.verifier
    });
    var res = await fetch(config.token_endpoint, { method: 'POST', body: body });
    var json = await res.json();
    if (!res.ok) { show(false, 'Token request failed: ' + (json.error || res.status)); return; }
    tokens = json;
    var claims = JSON.parse(atob(json.id_token.split('.')[1].replace(/-/g, '+').replace(/_/g, '/')));
    if (claims.nonce !== saved.nonce) { tokens = null; show(false, 'Sign-in failed: nonce mismatch'); return; }
    show(true, 'Signed in as ' + (claims.preferred_username || claims.sub) + '.');
  }

  async function callApi() {
    var res = await fetch('/api/me', { headers: { Authorization: 'Bearer ' + tokens.access_token } });
    $('api-status').textContent = String(res.status);
    var text = await res.text();
    $('api-result').textContent = res.ok ? JSON.stringify(JSON.parse(text), null, 2) : (res.headers.get('WWW-Authenticate') || text);
  }

  function signOut() {
    var p = new URLSearchParams({ id_token_hint: tokens.id_token, post_logout_redirect_uri: config.redirect_uri });
    tokens = null;
    location.assign(config.end_session_endpoint + '?' + p.toString());
  }

  document.addEventListener('DOMContentLoaded', async function () {
    config = await (await fetch('/config.json')).json();
    $('sign-in').addEventListener('click', signIn);
    $('call-api').addEventListener('click', callApi);
    $('sign-out').addEventListener('click', signOut);
    var params = new URLSearchParams(location.search);
    if (params.get('code') || params.get('error')) await finishSignIn(params);
    document.body.setAttribute('data-ready', 'true');
  });
})();
