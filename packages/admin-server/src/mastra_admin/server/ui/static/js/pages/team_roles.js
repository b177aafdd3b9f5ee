// Roles (system and custom), creating and changing custom roles, and who holds which.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
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
  table,
  toast,
} from "../lib/ui.js";

function parsePermissions(text) {
  return text
    .split(/[\s,]+/)
    .map((p) => p.trim())
    .filter(Boolean);
}

function permissionList(permissions) {
  return h(
    "div",
    { class: "actions" },
    permissions.map((p) => h("code", {}, p)),
  );
}

export async function render({ params }) {
  const teamId = params.teamId;
  let team;
  try {
    team = await teamContext(teamId, "Roles");
  } catch (error) {
    mount(slot("roles"), errorState(error));
    return;
  }
  let roles = [];
  const reloadAll = () => {
    loadRoles();
    loadAssignments();
  };

  const editor = (role) => {
    const details = h("details", {}, h("summary", {}, "Edit"));
    details.append(
      form({
        label: `Edit ${role.name}`,
        submitLabel: "Save role",
        reset: false,
        fields: [
          field({ label: "Description", name: "description", value: role.description || "", maxlength: 1000 }),
          field({
            label: "Permissions",
            name: "permissions",
            kind: "textarea",
            value: role.permissions.join("\n"),
            required: true,
            hint: "One per line, like deployment:deploy, project:* or *.",
          }),
        ],
        onSubmit: async (values) => {
          await api(`/api/teams/${teamId}/roles/${role.id}`, {
            method: "PATCH",
            body: { description: values.description || null, permissions: parsePermissions(values.permissions) },
          });
          toast(`Role ${role.name} saved.`);
          loadRoles();
        },
      }),
    );
    return details;
  };

  const loadRoles = () =>
    fill(
      slot("roles"),
      () => api(`/api/teams/${teamId}/roles`),
      (list) => {
        roles = list;
        renderAssignForm();
        return table(
          [
            {
              label: "Role",
              render: (r) =>
                h("div", {}, h("strong", {}, r.name), " ", r.is_system ? badge("neutral", "system") : badge("info", "custom")),
            },
            { label: "Description", render: (r) => r.description || "—" },
            { label: "Permissions", render: (r) => permissionList(r.permissions) },
            {
              label: "Change",
              className: "actions-cell",
              render: (r) =>
                r.is_system
                  ? h("span", { class: "muted" }, "built in")
                  : h(
                      "div",
                      { class: "actions" },
                      editor(r),
                      button(
                        "Delete",
                        async () => {
                          if (!(await confirmAction(`Delete the role ${r.name}? People holding it lose its permissions.`, { confirmLabel: "Delete role" }))) return;
                          await api(`/api/teams/${teamId}/roles/${r.id}`, { method: "DELETE" });
                          toast("Role deleted.");
                          reloadAll();
                        },
                        { variant: "danger", small: true },
                      ),
                    ),
            },
          ],
          list,
          { caption: "Roles" },
        );
      },
    );

  let members = [];
  let users = new Map();
  let projects = [];

  const loadAssignments = () =>
    fill(
      slot("assignments"),
      async () => {
        const [assignments, memberList, projectPage] = await Promise.all([
          api(`/api/teams/${teamId}/role-assignments`),
          api(`/api/teams/${teamId}/members`),
          api(`/api/teams/${teamId}/projects`, { query: { limit: 500 } }),
        ]);
        members = memberList;
        projects = projectPage.items;
        const people = await Promise.all(
          members.map((m) => api(`/api/users/${m.user_id}`).catch(() => ({ id: m.user_id, email: m.user_id }))),
        );
        users = new Map(people.map((u) => [u.id, u]));
        renderAssignForm();
        return assignments;
      },
      (assignments) => {
        const custom = assignments.filter((a) => roles.find((r) => r.id === a.role_id && !r.is_system));
        if (!custom.length) {
          return emptyState("No custom roles given out", "Create a custom role, then give it to a member with the form below.");
        }
        const roleName = (id) => roles.find((r) => r.id === id)?.name || id;
        const scope = (a) =>
          a.resource_type === "project"
            ? `project ${projects.find((p) => p.id === a.resource_id)?.name || a.resource_id}`
            : `team ${team.name}`;
        return table(
          [
            { label: "Role", render: (a) => roleName(a.role_id) },
            { label: "Person", render: (a) => users.get(a.user_id)?.email || a.user_id },
            { label: "On", render: scope },
            {
              label: "Take away",
              className: "actions-cell",
              render: (a) =>
                button(
                  "Take away",
                  async () => {
                    await api(`/api/teams/${teamId}/role-assignments/remove`, {
                      method: "POST",
                      body: {
                        role_id: a.role_id,
                        user_id: a.user_id,
                        resource_type: a.resource_type,
                        resource_id: a.resource_id,
                      },
                    });
                    toast("Role taken away.");
                    loadAssignments();
                  },
                  { variant: "danger", small: true },
                ),
            },
          ],
          custom,
          { caption: "Role assignments" },
        );
      },
    );

  function renderAssignForm() {
    const custom = roles.filter((r) => !r.is_system);
    if (!custom.length) {
      mount(slot("assign"), h("p", { class: "muted" }, "Create a custom role first."));
      return;
    }
    mount(
      slot("assign"),
      form({
        label: "Give someone a role",
        submitLabel: "Give role",
        fields: [
          field({ label: "Role", name: "role_id", kind: "select", options: custom.map((r) => ({ value: r.id, label: r.name })) }),
          field({
            label: "Member",
            name: "user_id",
            kind: "select",
            options: members.map((m) => ({ value: m.user_id, label: users.get(m.user_id)?.email || m.user_id })),
          }),
          field({
            label: "On",
            name: "scope",
            kind: "select",
            options: [
              { value: `team:${teamId}`, label: `The whole team (${team.name})` },
              ...projects.map((p) => ({ value: `project:${p.id}`, label: `Project ${p.name}` })),
            ],
          }),
        ],
        onSubmit: async (values) => {
          const [resourceType, resourceId] = values.scope.split(":");
          await api(`/api/teams/${teamId}/role-assignments`, {
            method: "POST",
            body: { role_id: values.role_id, user_id: values.user_id, resource_type: resourceType, resource_id: resourceId },
          });
          toast("Role given.");
          loadAssignments();
        },
      }),
    );
  }

  await loadRoles();
  loadAssignments();
  mount(
    slot("create-role"),
    form({
      label: "Create a custom role",
      submitLabel: "Create role",
      fields: [
        field({ label: "Name", name: "name", required: true, maxlength: 100, placeholder: "deployer" }),
        field({ label: "Description", name: "description", maxlength: 1000 }),
        field({
          label: "Permissions",
          name: "permissions",
          kind: "textarea",
          required: true,
          placeholder: "deployment:deploy\nbuild:read",
          hint: "One per line, like deployment:deploy, project:* or *. Custom roles need a licence with advanced RBAC.",
        }),
      ],
      onSubmit: async (values) => {
        await api(`/api/teams/${teamId}/roles`, {
          method: "POST",
          body: { name: values.name, description: values.description || null, permissions: parsePermissions(values.permissions) },
        });
        toast(`Role ${values.name} created.`);
        loadRoles();
      },
    }),
  );
}
