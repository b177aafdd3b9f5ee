// Back from the identity provider: turn the code into a token, check it, keep it.

import { api, token } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { errorState } from "../lib/ui.js";
import { finishOidcSignIn } from "../lib/oidc.js";

export async function render() {
  const status = slot("status");
  try {
    const result = await finishOidcSignIn(new URLSearchParams(window.location.search));
    await api("/api/me", { token: result.token });
    token.set(result.token);
    const next = result.next.startsWith("/") && !result.next.startsWith("//") ? result.next : "/";
    window.location.replace(next);
  } catch (error) {
    mount(
      status,
      errorState(error),
      h("p", {}, h("a", { href: "/sign-in" }, "Back to sign-in")),
    );
  }
}
