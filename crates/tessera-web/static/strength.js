// Live strength feedback for new passwords: asks the server's estimator (the same blocklist
// the policy uses) and shows its score and hints. The password is sent only to this server,
// over the same connection as the form itself, and is never stored.
(function () {
  'use strict';
  var LABELS = ['Very weak', 'Weak', 'Fair', 'Strong', 'Very strong'];
  document.querySelectorAll('input[autocomplete="new-password"][data-strength]').forEach(function (input) {
    var out = document.getElementById(input.getAttribute('data-strength'));
    if (!out) return;
    var timer = null, seq = 0;
    input.addEventListener('input', function () {
      clearTimeout(timer);
      timer = setTimeout(async function () {
        var mine = ++seq;
        if (!input.value) { out.textContent = ''; return; }
        try {
          var res = await fetch('/password/strength', {
            method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' },
            body: new URLSearchParams({ password: input.value })
          });
          if (!res.ok || mine !== seq) return;
          var s = await res.json();
          out.textContent = 'Strength: ' + LABELS[s.score] + (s.feedback.length ? '. ' + s.feedback.join(' ') : '.');
          out.setAttribute('data-score', String(s.score));
        } catch (e) { /* feedback is advisory */ }
      }, 250);
    });
  });
})();
