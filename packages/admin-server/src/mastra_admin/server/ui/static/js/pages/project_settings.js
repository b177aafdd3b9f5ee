// Project settings: name, default branch, build and run commands, health check and
// timeouts; deleting the project.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { projectContext } from "../lib/context.js";
import { button, confirmAction, errorState, facts, field, form, toast } from "../lib/ui.js";

function command(value) {
  const parts = value.trim().split(/\s+/).filter(Boolean);
  return parts.length ? parts : null;
}

function seconds(value) {
  return value === "" ? null : Number(value);
}

// Memory and CPUs: empty means the runner's default.
const amount = seconds;

export async function render({ params }) {
  const projectId = params.projectId;
  let project;
  let team;
  try {
    ({ project, team } = await projectContext(projectId, "Settings"));
  } catch (error) {
    mount(slot("settings"), errorState(error));
    mount(slot("danger"));
    return;
  }
  const s = project.settings;
  const join = (list) => (list ? list.join(" ") : "");
  mount(
    slot("settings"),
    facts([
      ["Source", h("code", {}, project.source_config.path || project.source_config.source_id || project.source_type)],
      ["Slug", h("code", {}, project.slug)],
      ["Project id", h("code", {}, project.id)],
    ]),
    form({
      label: "Project settings",
      submitLabel: "Save settings",
      reset: false,
      fields: [
        field({ label: "Name", name: "name", value: project.name, required: true, maxlength: 255 }),
        field({ label: "Default branch", name: "default_branch", value: project.default_branch, required: true }),
        field({ label: "Install command", name: "install_command", value: join(s.install_command), placeholder: "npm ci", hint: "Empty: from the lock file. Commands and NODE_OPTIONS can be changed by owners and admins." }),
        field({ label: "Build command", name: "build_command", value: join(s.build_command), placeholder: "npx mastra build" }),
        field({ label: "Start command", name: "start_command", value: join(s.start_command), placeholder: "node .mastra/output/index.mjs" }),
        field({ label: "Health check path", name: "health_path", value: s.health_path, required: true }),
        field({ label: "Install timeout (s)", name: "install_timeout_s", kind: "number", min: 1, value: s.install_timeout_s ?? "" }),
        field({ label: "Build timeout (s)", name: "build_timeout_s", kind: "number", min: 1, value: s.build_timeout_s ?? "" }),
        field({ label: "Health timeout (s)", name: "health_timeout_s", kind: "number", min: 1, value: s.health_timeout_s ?? "" }),
        field({ label: "NODE_OPTIONS", name: "node_options", value: s.node_options || "", placeholder: "--max-old-space-size=1024" }),
        field({ label: "Memory limit per server (MB)", name: "memory_limit_mb", kind: "number", min: 16, step: 1, value: s.memory_limit_mb ?? "", hint: "Empty: the runner's default. Runners of containers enforce it; over it a server is killed." }),
        field({ label: "CPU limit per server", name: "cpu_limit", kind: "number", min: 0.01, step: 0.01, value: s.cpu_limit ?? "", placeholder: "1" }),
        field({ label: "Previews of pull requests from forks get secret env vars", name: "fork_previews_get_secrets", kind: "checkbox", value: s.fork_previews_get_secrets, hint: "Off: a fork's code runs without the project's secrets. Owners and admins can change it." }),
      ],
      onSubmit: async (values) => {
        // A command whose text was not edited keeps its stored argv: its arguments may
        // hold spaces the text field cannot tell apart, and changing a command needs
        // the project:commands:write permission that members do not hold.
        const unchanged = (name) => values[name] === join(s[name]);
        const commandOf = (name) => (unchanged(name) ? s[name] ?? null : command(values[name]));
        project = await api(`/api/projects/${projectId}`, {
          method: "PATCH",
          body: {
            name: values.name,
            default_branch: values.default_branch,
            settings: {
              ...project.settings,
              install_command: commandOf("install_command"),
              build_command: commandOf("build_command"),
              start_command: commandOf("start_command"),
              health_path: values.health_path,
              install_timeout_s: seconds(values.install_timeout_s),
              build_timeout_s: seconds(values.build_timeout_s),
              health_timeout_s: seconds(values.health_timeout_s),
              node_options: values.node_options || null,
              memory_limit_mb: amount(values.memory_limit_mb),
              cpu_limit: amount(values.cpu_limit),
              fork_previews_get_secrets: values.fork_previews_get_secrets,
            },
          },
        });
        await projectContext(projectId, "Settings");
        toast("Project settings saved. They apply from the next build.");
      },
    }),
  );
  mount(
    slot("danger"),
    button(
      "Delete project",
      async () => {
        const ok = await confirmAction(`Delete ${project.name} with all its deployments? Their servers are stopped.`, {
          confirmLabel: "Delete project",
        });
        if (!ok) return;
        await api(`/api/projects/${projectId}`, { method: "DELETE" });
        window.location.assign(`/teams/${team.id}`);
      },
      { variant: "danger" },
    ),
  );
}
