// The signed-in person: who they are, their API tokens (created shown once,
// revoked), and accepting a team invite.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { timeAgo } from "../lib/format.js";
import { badge, button, confirmAction, emptyState, facts, field, fill, form, secretOnce, table, toast } from "../lib/ui.js";
import { expiryFrom, scopesFrom } from "../lib/tokens.js";

export async function render() {
  fill(slot("me"), () => api("/api/me"), (me) =>
    facts([
      ["Email", me.email],
      ["Name", me.name || "—"],
      ["User id", h("code", {}, me.id)],
      ["Signed in with", me.external_id ? "identity provider" : "API token"],
      ["Member since", timeAgo(me.created_at)],
    ]),
  );

  const loadTokens = (quiet = false) =>
    fill(
      slot("tokens"),
      () => api("/api/me/tokens"),
      (tokens) => {
        if (!tokens.length) return emptyState("No API tokens", "Create one for the CLI, a script or another browser.");
        return table(
          [
            { label: "Name", render: (t) => t.name },
            { label: "Token", render: (t) => h("code", {}, `${t.token_prefix}…`) },
            { label: "State", render: (t) => (t.revoked_at ? badge("stopped", "revoked") : badge("ok", "active")) },
            { label: "Last used", render: (t) => (t.last_used_at ? timeAgo(t.last_used_at) : "never") },
            { label: "Expires", render: (t) => (t.expires_at ? timeAgo(t.expires_at) : "never") },
            { label: "Created", render: (t) => timeAgo(t.created_at) },
            {
              label: "Revoke",
              className: "actions-cell",
              render: (t) =>
                t.revoked_at
                  ? ""
                  : button(
                      "Revoke",
                      async () => {
                        const ok = await confirmAction(
                          `Revoke ${t.name}? Anything signed in with it is signed out, this browser too if it uses it.`,
                          { confirmLabel: "Revoke token" },
                        );
                        if (!ok) return;
                        await api(`/api/me/tokens/${t.id}`, { method: "DELETE" });
                        toast("Token revoked.");
                        loadTokens(true);
                      },
                      { variant: "danger", small: true },
                    ),
            },
          ],
          tokens,
          { caption: "Your API tokens" },
        );
      },
      { quiet },
    );
  loadTokens();

  mount(
    slot("create-token"),
    form({
      label: "Create an API token",
      submitLabel: "Create token",
      fields: [
        field({ label: "Name", name: "name", required: true, maxlength: 255, placeholder: "laptop CLI" }),
        field({ label: "Scopes", name: "scopes", hint: "Empty: everything you may do. Otherwise permissions separated by spaces." }),
        field({ label: "Expires on", name: "expires_on", kind: "date", hint: "Empty: never expires." }),
      ],
      onSubmit: async (values) => {
        const created = await api("/api/me/tokens", {
          method: "POST",
          body: { name: values.name, scopes: scopesFrom(values.scopes), expires_at: expiryFrom(values.expires_on) },
        });
        loadTokens(true);
        return secretOnce(`Token ${created.token.name} created`, created.secret);
      },
    }),
  );

  mount(
    slot("accept"),
    form({
      label: "Accept an invite",
      submitLabel: "Join team",
      fields: [field({ label: "Invite token", name: "token", required: true, autocomplete: "off", spellcheck: "false" })],
      onSubmit: async (values) => {
        const member = await api("/api/invites/accept", { method: "POST", body: { token: values.token } });
        return h("p", { role: "status" }, "You joined the team as ", member.role, ". ", h("a", { href: `/teams/${member.team_id}` }, "Open the team"));
      },
    }),
  );
}
