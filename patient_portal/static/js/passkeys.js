// Passkeys (WebAuthn) for the pages that offer them: add one, sign in with one, or use one as
// staff's second factor. Without this script, or in a browser without WebAuthn, the passkey
// parts of those pages stay hidden and the SMS code / authenticator code paths work as before.
//
// The server speaks WebAuthn's JSON forms: binary values are base64url strings. Every POST sends
// the page's CSRF token in the X-CSRF-Token header.
"use strict";

(function () {
  if (!window.PublicKeyCredential || !navigator.credentials) {
    return;
  }

  // -- base64url <-> ArrayBuffer ------------------------------------------------------------

  function fromBase64url(text) {
    var base64 = text.replace(/-/g, "+").replace(/_/g, "/");
    while (base64.length % 4) {
      base64 += "=";
    }
    var binary = atob(base64);
    var bytes = new Uint8Array(binary.length);
    for (var i = 0; i < binary.length; i++) {
      bytes[i] = binary.charCodeAt(i);
    }
    return bytes.buffer;
  }

  function toBase64url(buffer) {
    var bytes = new Uint8Array(buffer);
    var binary = "";
    for (var i = 0; i < bytes.length; i++) {
      binary += String.fromCharCode(bytes[i]);
    }
    return btoa(binary).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  }

  function descriptors(list) {
    return (list || []).map(function (item) {
      return Object.assign({}, item, { id: fromBase64url(item.id) });
    });
  }

  // -- options from the server -> the browser's API ----------------------------------------

  function creationOptions(json) {
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      user: Object.assign({}, json.user, { id: fromBase64url(json.user.id) }),
      excludeCredentials: descriptors(json.excludeCredentials),
    });
  }

  function requestOptions(json) {
    return Object.assign({}, json, {
      challenge: fromBase64url(json.challenge),
      allowCredentials: descriptors(json.allowCredentials),
    });
  }

  // -- the browser's answers -> JSON for the server ----------------------------------------

  function registrationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        attestationObject: toBase64url(response.attestationObject),
        transports: response.getTransports ? response.getTransports() : [],
      },
    };
  }

  function authenticationJSON(credential) {
    var response = credential.response;
    return {
      id: credential.id,
      rawId: toBase64url(credential.rawId),
      type: credential.type,
      authenticatorAttachment: credential.authenticatorAttachment || null,
      clientExtensionResults: credential.getClientExtensionResults(),
      response: {
        clientDataJSON: toBase64url(response.clientDataJSON),
        authenticatorData: toBase64url(response.authenticatorData),
        signature: toBase64url(response.signature),
        userHandle: response.userHandle ? toBase64url(response.userHandle) : null,
      },
    };
  }

  // -- talking to the server -----------------------------------------------------------------

  function csrfToken() {
    var meta = document.querySelector('meta[name="csrf-token"]');
    return meta ? meta.getAttribute("content") : "";
  }

  // A refusal carries a message already in the page's language (problem+json "detail").
  function refused(detail) {
    var error = new Error(detail || "");
    error.fromServer = Boolean(detail);
    return error;
  }

  function postJSON(url, body) {
    return fetch(url, {
      method: "POST",
      credentials: "same-origin",
      headers: {
        "Content-Type": "application/json",
        Accept: "application/json",
        "X-CSRF-Token": csrfToken(),
      },
      body: JSON.stringify(body),
    }).then(function (response) {
      return response.json().then(
        function (data) {
          if (!response.ok) {
            throw refused(data && data.detail);
          }
          return data;
        },
        function () {
          throw refused(null);
        }
      );
    });
  }

  // -- wiring the pages ----------------------------------------------------------------------

  function showError(container, error) {
    var box = container.querySelector("[data-passkey-error]");
    if (!box) {
      return;
    }
    var fallback = container.getAttribute("data-msg-failed");
    box.textContent = error && error.fromServer ? error.message : fallback;
    box.hidden = false;
  }

  function clearError(container) {
    var box = container.querySelector("[data-passkey-error]");
    if (box) {
      box.hidden = true;
      box.textContent = "";
    }
  }

  function register(form) {
    var name = form.querySelector('input[name="name"]').value;
    return postJSON(form.getAttribute("data-options-url"), {})
      .then(function (options) {
        return navigator.credentials.create({ publicKey: creationOptions(options) });
      })
      .then(function (credential) {
        return postJSON(form.getAttribute("data-verify-url"), {
          name: name,
          credential: registrationJSON(credential),
        });
      });
  }

  function signIn(container) {
    return postJSON(container.getAttribute("data-options-url"), {})
      .then(function (options) {
        return navigator.credentials.get({ publicKey: requestOptions(options) });
      })
      .then(function (credential) {
        return postJSON(container.getAttribute("data-verify-url"), {
          credential: authenticationJSON(credential),
        });
      });
  }

  function run(container, control, ceremony) {
    clearError(container);
    control.disabled = true;
    ceremony()
      .then(function (result) {
        window.location.assign(result.redirect);
      })
      .catch(function (error) {
        control.disabled = false;
        showError(container, error);
      });
  }

  function start() {
    document.querySelectorAll("[data-passkey-supported]").forEach(function (element) {
      element.hidden = false;
    });
    document.querySelectorAll("[data-passkey-unsupported]").forEach(function (element) {
      element.hidden = true;
    });
    document.querySelectorAll("form[data-passkey-register]").forEach(function (form) {
      form.addEventListener("submit", function (event) {
        event.preventDefault();
        run(form, form.querySelector('button[type="submit"]'), function () {
          return register(form);
        });
      });
    });
    document.querySelectorAll("[data-passkey-signin]").forEach(function (container) {
      var button = container.querySelector("[data-passkey-start]");
      button.addEventListener("click", function () {
        run(container, button, function () {
          return signIn(container);
        });
      });
    });
  }

  if (document.readyState === "loading") {
    document.addEventListener("DOMContentLoaded", start);
  } else {
    start();
  }
})();
