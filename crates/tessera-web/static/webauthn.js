// Passkeys (WebAuthn) for Tessera's pages: passwordless sign-in (a button, and conditional
// UI — the browser's autofill on the username field), a passkey as second factor, and
// registering a passkey on the account page. The server sends the WebAuthn JSON options
// (base64url fields) with a ceremony handle; this script turns them into ArrayBuffers,
// calls navigator.credentials, and posts the answer back as JSON.
(function () {
  'use strict';

  function b64uToBuf(s) {
    const pad = '='.repeat((4 - (s.length % 4)) % 4);
    const bin = atob((s + pad).replace(/-/g, '+').replace(/_/g, '/'));
    const out = new Uint8Array(bin.length);
    for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
    return out.buffer;
  }

  function bufToB64u(buf) {
    const bytes = new Uint8Array(buf);
    let bin = '';
    for (let i = 0; i < bytes.length; i++) bin += String.fromCharCode(bytes[i]);
    return btoa(bin).replace(/\+/g, '-').replace(/\//g, '_').replace(/=+$/, '');
  }

  function descriptors(list) {
    return list ? list.map((c) => Object.assign({}, c, { id: b64uToBuf(c.id) })) : list;
  }

  function creationOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64uToBuf(pk.challenge);
    pk.user = Object.assign({}, pk.user, { id: b64uToBuf(pk.user.id) });
    if (pk.excludeCredentials) pk.excludeCredentials = descriptors(pk.excludeCredentials);
    return { publicKey: pk };
  }

  function requestOptions(o) {
    const pk = Object.assign({}, o.publicKey);
    pk.challenge = b64uToBuf(pk.challenge);
    if (pk.allowCredentials) pk.allowCredentials = descriptors(pk.allowCredentials);
    return { publicKey: pk };
  }

  function credentialJSON(c) {
    const r = c.response;
    const out = {
      id: c.id,
      rawId: bufToB64u(c.rawId),
      type: c.type,
      extensions: c.getClientExtensionResults ? c.getClientExtensionResults() : {},
      response: { clientDataJSON: bufToB64u(r.clientDataJSON) },
    };
    if (r.attestationObject) {
      out.response.attestationObject = bufToB64u(r.attestationObject);
      if (r.getTransports) out.response.transports = r.getTransports();
    } else {
      out.response.authenticatorData = bufToB64u(r.authenticatorData);
      out.response.signature = bufToB64u(r.signature);
      out.response.userHandle = r.userHandle ? bufToB64u(r.userHandle) : null;
    }
    return out;
  }

  async function postJSON(url, body) {
    const res = await fetch(url, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify(body),
    });
    let data = {};
    try { data = await res.json(); } catch (e) { data = {}; }
    if (!res.ok) {
      const err = new Error(data.error || 'The passkey could not be used. Please try again.');
      err.redirect = data.redirect;
      throw err;
    }
    return data;
  }

  function showError(el, message) {
    const box = document.getElementById(el.dataset.error || 'passkey-error');
    if (box) {
      box.textContent = message;
      box.hidden = false;
    }
  }

  function cancelled(e) {
    return e && (e.name === 'AbortError' || e.name === 'NotAllowedError');
  }

  // Runs one ceremony for the button `el` (its data-* attributes name the endpoints).
  async function ceremony(el, { register, mediation, signal } = {}) {
    const start = await postJSON(el.dataset.options, { csrf_token: el.dataset.csrf });
    let credential;
    if (register) {
      credential = await navigator.credentials.create(creationOptions(start.options));
    } else {
      const opts = requestOptions(start.options);
      if (mediation) opts.mediation = mediation;
      if (signal) opts.signal = signal;
      credential = await navigator.credentials.get(opts);
    }
    if (!credential) throw Object.assign(new Error('cancelled'), { name: 'AbortError' });
    const body = {
      csrf_token: el.dataset.csrf,
      ceremony: start.ceremony,
      credential: credentialJSON(credential),
      return_to: el.dataset.returnTo || '',
    };
    if (register) {
      const nameInput = document.getElementById(el.dataset.nameInput || 'passkey-name');
      body.name = nameInput ? nameInput.value : '';
    }
    const done = await postJSON(el.dataset.finish, body);
    window.location.assign(done.redirect || '/account');
  }

  function wire(el, opts) {
    el.hidden = false;
    el.addEventListener('click', async (ev) => {
      ev.preventDefault();
      if (opts.beforeClick) opts.beforeClick();
      el.disabled = true;
      try {
        await ceremony(el, opts);
      } catch (e) {
        if (e.redirect) {
          window.location.assign(e.redirect);
          return;
        }
        showError(el, cancelled(e) ? 'The passkey was not used. You can try again.' : e.message);
      } finally {
        el.disabled = false;
      }
    });
  }

  if (!window.PublicKeyCredential || !navigator.credentials) return;

  const signIn = document.getElementById('passkey-signin');
  let conditional = null;
  if (signIn) {
    wire(signIn, {
      beforeClick() {
        if (conditional) conditional.abort();
        conditional = null;
      },
    });
    // Conditional UI: offer passkeys in the username field's autofill.
    if (PublicKeyCredential.isConditionalMediationAvailable) {
      PublicKeyCredential.isConditionalMediationAvailable().then((ok) => {
        if (!ok) return;
        conditional = new AbortController();
        ceremony(signIn, { mediation: 'conditional', signal: conditional.signal }).catch((e) => {
          if (!cancelled(e)) showError(signIn, e.message);
        });
      }).catch(() => {});
    }
  }

  const second = document.getElementById('passkey-second-factor');
  if (second) wire(second, {});

  const add = document.getElementById('passkey-add');
  if (add) wire(add, { register: true });
}());
