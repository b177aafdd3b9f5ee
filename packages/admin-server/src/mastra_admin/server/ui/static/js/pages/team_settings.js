// Team settings: its name, build concurrency and preview lifetime; deleting it.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { teamContext } from "../lib/context.js";
import { button, confirmAction, errorState, facts, field, form, toast } from "../lib/ui.js";

function optionalInt(value) {
  return value === "" || value === undefined ? null : Number(value);
}

export async function render({ params }) {
  const teamId = params.teamId;
  let team;
  try {
    team = await teamContext(teamId, "Settings");
  } catch (error) {
    mount(slot("settings"), errorState(error));
    mount(slot("danger"));
    return;
  }
  mount(
    slot("settings"),
    facts([
      ["Slug", h("code", {}, team.slug)],
      ["Team id", h("code", {}, team.id)],
    ]),
    form({
      label: "Team settings",
      submitLabel: "Save settings",
      reset: false,
      fields: [
        field({ label: "Name", name: "name", value: team.name, required: true, maxlength: 255 }),
        field({
          label: "Builds at once",
          name: "max_concurrent_builds",
          kind: "number",
          min: 1,
          value: team.settings.max_concurrent_builds ?? "",
          hint: "Most builds of this team that run at the same time. Empty: no team limit.",
        }),
        field({
          label: "Preview lifetime (hours)",
          name: "preview_ttl_hours",
          kind: "number",
          min: 1,
          required: true,
          value: team.settings.preview_ttl_hours,
          hint: "Preview deployments are stopped and deleted after this long unless given their own expiry.",
        }),
      ],
      onSubmit: async (values) => {
        team = await api(`/api/teams/${teamId}`, {
          method: "PATCH",
          body: {
            name: values.name,
            settings: {
              ...team.settings,
              max_concurrent_builds: optionalInt(values.max_concurrent_builds),
              preview_ttl_hours: Number(values.preview_ttl_hours),
            },
          },
        });
        await teamContext(teamId, "Settings");
        toast("Team settings saved.");
      },
    }),
  );
  mount(
    slot("danger"),
    button(
      "Delete team",
      async () => {
        const ok = await confirmAction(
          `Delete the team ${team.name} with all its projects, deployments and servers? This cannot be undone.`,
          { confirmLabel: "Delete team" },
        );
        if (!ok) return;
        await api(`/api/teams/${teamId}`, { method: "DELETE" });
        window.location.assign("/");
      },
      { variant: "danger" },
    ),
  );
}
