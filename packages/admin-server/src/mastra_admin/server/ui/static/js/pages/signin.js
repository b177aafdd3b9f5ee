// Sign-in: an API token (checked against /api/me before it is kept), or the OIDC
// provider's authorization-code flow with PKCE when the server has one configured.

import { api, ApiError, takeSignInReason, token } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { button, errorState, loading } from "../lib/ui.js";
import { startOidcSignIn } from "../lib/oidc.js";

function nextUrl() {
  const next = new URLSearchParams(window.location.search).get("next") || "/";
  // Only paths on this site: never send a token holder elsewhere.
  return next.startsWith("/") && !next.startsWith("//") ? next : "/";
}

export async function render() {
  const reason = takeSignInReason();
  if (reason) mount(slot("reason"), h("p", { class: "notice", role: "status" }, reason));

  const formEl = slot("token-form");
  const input = formEl.querySelector("input[name=token]");
  const fieldError = formEl.querySelector(".field-error");
  const status = slot("token-status");
  const submit = formEl.querySelector("button[type=submit]");

  formEl.addEventListener("submit", async (event) => {
    event.preventDefault();
    const value = input.value.trim();
    fieldError.hidden = true;
    input.removeAttribute("aria-invalid");
    if (!value) {
      fieldError.textContent = "Paste an API token.";
      fieldError.hidden = false;
      input.setAttribute("aria-invalid", "true");
      input.focus();
      return;
    }
    submit.disabled = true;
    mount(status, loading("Checking the token…"));
    try {
      await api("/api/me", { token: value });
      token.set(value);
      window.location.assign(nextUrl());
    } catch (error) {
      if (error instanceof ApiError && error.status === 401) {
        mount(status);
        fieldError.textContent = `That token was not accepted: ${error.message}.`;
        fieldError.hidden = false;
        input.setAttribute("aria-invalid", "true");
        input.focus();
      } else {
        mount(status, errorState(error));
      }
    } finally {
      submit.disabled = false;
    }
  });

  submit.disabled = false;
  input.focus();

  const oidcSlot = slot("oidc");
  try {
    const config = await api("/api/auth/config");
    if (config && config.oidc) {
      mount(
        oidcSlot,
        h(
          "section",
          { class: "panel", "aria-labelledby": "oidc-title" },
          h("h2", { id: "oidc-title" }, "With your organisation's account"),
          h(
            "div",
            { class: "actions" },
            button(`Sign in with ${config.oidc.display_name}`, () => startOidcSignIn(config.oidc, nextUrl()), {
              variant: "secondary",
              dataset: { action: "oidc-sign-in" },
            }),
          ),
        ),
      );
    }
  } catch (error) {
    mount(oidcSlot, errorState(error));
  }
}
