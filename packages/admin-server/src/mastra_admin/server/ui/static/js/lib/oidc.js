// OIDC sign-in in the browser: the authorization-code flow with PKCE (RFC 7636).
// The verifier and state live in sessionStorage between leaving and coming back.

import { Problem } from "./ui.js";

function fail(message) {
  return new Problem("Sign-in did not finish", message);
}

const FLOW_KEY = "mastraAdmin.oidcFlow";

function base64url(bytes) {
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

function randomString(size = 32) {
  const bytes = new Uint8Array(size);
  crypto.getRandomValues(bytes);
  return base64url(bytes);
}

async function challengeFor(verifier) {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(verifier));
  return base64url(new Uint8Array(digest));
}

export function redirectUri() {
  return `${window.location.origin}/auth/callback`;
}

/** Leave for the provider's sign-in page. */
export async function startOidcSignIn(config, next) {
  const verifier = randomString(48);
  const state = randomString(24);
  const challenge = await challengeFor(verifier);
  window.sessionStorage.setItem(
    FLOW_KEY,
    JSON.stringify({ verifier, state, next, tokenUrl: config.token_url, clientId: config.client_id }),
  );
  const url = new URL(config.authorization_url);
  url.searchParams.set("response_type", "code");
  url.searchParams.set("client_id", config.client_id);
  url.searchParams.set("redirect_uri", redirectUri());
  url.searchParams.set("scope", config.scopes.join(" "));
  url.searchParams.set("state", state);
  url.searchParams.set("code_challenge", challenge);
  url.searchParams.set("code_challenge_method", "S256");
  window.location.assign(url.toString());
}

/** Back from the provider: exchange the code for tokens. Resolves {token, next}. */
export async function finishOidcSignIn(query) {
  const raw = window.sessionStorage.getItem(FLOW_KEY);
  window.sessionStorage.removeItem(FLOW_KEY);
  if (query.get("error")) {
    throw fail(`The identity provider refused: ${query.get("error_description") || query.get("error")}`);
  }
  if (!raw) throw fail("This sign-in was not started from this browser tab. Start again.");
  const flow = JSON.parse(raw);
  if (!query.get("state") || query.get("state") !== flow.state) {
    throw fail("The answer does not belong to this sign-in (state mismatch). Start again.");
  }
  const code = query.get("code");
  if (!code) throw fail("The identity provider sent no authorization code.");
  const body = new URLSearchParams({
    grant_type: "authorization_code",
    code,
    redirect_uri: redirectUri(),
    client_id: flow.clientId,
    code_verifier: flow.verifier,
  });
  let response;
  try {
    response = await fetch(flow.tokenUrl, {
      method: "POST",
      headers: { "Content-Type": "application/x-www-form-urlencoded", Accept: "application/json" },
      body,
    });
  } catch {
    throw fail("The identity provider's token endpoint did not answer (is CORS allowed for this site?).");
  }
  const data = await response.json().catch(() => ({}));
  if (!response.ok) {
    throw fail(`The identity provider did not issue a token: ${data.error_description || data.error || response.status}`);
  }
  // The ID token is a JWT for this client; some providers (Supabase) put the user in the access token.
  const jwt = data.id_token || data.access_token;
  if (!jwt) throw fail("The identity provider answered without a token.");
  return { token: jwt, next: flow.next || "/" };
}
