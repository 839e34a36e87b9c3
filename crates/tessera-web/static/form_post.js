// Submits the OAuth 2.0 form_post response automatically (the button is the fallback).
document.addEventListener('DOMContentLoaded', function () {
  var form = document.getElementById('form-post');
  if (form) { form.submit(); }
});
