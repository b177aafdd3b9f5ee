// Members with their roles, pending invites, and inviting someone.

import { api } from "../lib/api.js";
import { h, mount, slot, uid } from "../lib/dom.js";
import { dateTime, timeAgo } from "../lib/format.js";
import { teamContext } from "../lib/context.js";
import {
  badge,
  button,
  confirmAction,
  emptyState,
  errorState,
  field,
  fill,
  form,
  secretOnce,
  table,
  toast,
} from "../lib/ui.js";

export const TEAM_ROLES = [
  { value: "owner", label: "Owner: everything, including deleting the team" },
  { value: "admin", label: "Admin: people, roles and every project" },
  { value: "member", label: "Member: projects, deployments and env vars" },
  { value: "viewer", label: "Viewer: reads, cannot change anything" },
];

async function people(members) {
  const users = await Promise.all(
    members.map((m) => api(`/api/users/${m.user_id}`).catch(() => ({ id: m.user_id, email: m.user_id }))),
  );
  return new Map(users.map((u) => [u.id, u]));
}

function roleControl(teamId, member, reload) {
  const id = uid("role");
  const select = h(
    "select",
    { id, "aria-label": "Role" },
    TEAM_ROLES.map((r) => h("option", { value: r.value, selected: r.value === member.role }, r.value)),
  );
  return h(
    "div",
    { class: "actions" },
    h("label", { class: "visually-hidden", for: id }, "Role"),
    select,
    button(
      "Change role",
      async () => {
        if (select.value === member.role) return;
        await api(`/api/teams/${teamId}/members/${member.user_id}`, {
          method: "PATCH",
          body: { role: select.value },
        });
        toast("Role changed.");
        reload();
      },
      { variant: "secondary", small: true },
    ),
  );
}

export async function render({ params, me }) {
  const teamId = params.teamId;
  try {
    await teamContext(teamId, "Members");
  } catch (error) {
    mount(slot("members"), errorState(error));
    return;
  }
  const myself = await me.catch(() => null);

  const loadMembers = () =>
    fill(
      slot("members"),
      async () => {
        const members = await api(`/api/teams/${teamId}/members`);
        return { members, users: await people(members) };
      },
      ({ members, users }) =>
        table(
          [
            {
              label: "Person",
              render: (m) => {
                const user = users.get(m.user_id) || {};
                return h(
                  "div",
                  {},
                  h("div", {}, user.name || user.email, myself && myself.id === m.user_id ? " (you)" : ""),
                  user.name ? h("div", { class: "muted" }, user.email) : null,
                );
              },
            },
            { label: "Role", render: (m) => badge(m.role === "owner" ? "ok" : "info", m.role) },
            { label: "Joined", render: (m) => timeAgo(m.joined_at) },
            { label: "Change", className: "actions-cell", render: (m) => roleControl(teamId, m, loadMembers) },
            {
              label: "Remove",
              className: "actions-cell",
              render: (m) =>
                button(
                  myself && myself.id === m.user_id ? "Leave team" : "Remove",
                  async () => {
                    const user = users.get(m.user_id) || {};
                    if (!(await confirmAction(`Remove ${user.email || "this member"} from the team?`, { confirmLabel: "Remove" }))) return;
                    await api(`/api/teams/${teamId}/members/${m.user_id}`, { method: "DELETE" });
                    toast("Member removed.");
                    loadMembers();
                  },
                  { variant: "danger", small: true },
                ),
            },
          ],
          members,
          { caption: "Members" },
        ),
    );

  const loadInvites = () =>
    fill(
      slot("invites"),
      () => api(`/api/teams/${teamId}/invites`),
      (invites) => {
        const pending = invites.filter((i) => !i.accepted_at);
        if (!pending.length) {
          return emptyState("No pending invites", "Invite someone with the form below; the invite shows here until they accept it.");
        }
        return table(
          [
            { label: "Email", render: (i) => i.email },
            { label: "Role", render: (i) => i.role },
            { label: "Expires", render: (i) => h("span", { title: dateTime(i.expires_at) }, timeAgo(i.expires_at)) },
            {
              label: "Revoke",
              className: "actions-cell",
              render: (i) =>
                button(
                  "Revoke",
                  async () => {
                    if (!(await confirmAction(`Revoke the invite for ${i.email}?`, { confirmLabel: "Revoke" }))) return;
                    await api(`/api/teams/${teamId}/invites/${i.id}`, { method: "DELETE" });
                    toast("Invite revoked.");
                    loadInvites();
                  },
                  { variant: "danger", small: true },
                ),
            },
          ],
          pending,
          { caption: "Pending invites" },
        );
      },
    );

  loadMembers();
  loadInvites();
  mount(
    slot("invite"),
    form({
      label: "Invite someone",
      submitLabel: "Send invite",
      fields: [
        field({ label: "Email", name: "email", kind: "email", required: true, autocomplete: "off" }),
        field({ label: "Role", name: "role", kind: "select", value: "member", options: TEAM_ROLES }),
      ],
      onSubmit: async (values) => {
        const created = await api(`/api/teams/${teamId}/invites`, { method: "POST", body: values });
        loadInvites();
        return secretOnce(
          `Invite for ${created.invite.email} created`,
          created.token,
          "The invite was sent through the configured email provider. The token is also shown here, this once, if you prefer to pass it on yourself.",
        );
      },
    }),
  );
}
