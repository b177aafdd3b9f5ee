// Deployment actions shared by the project and deployment pages.

import { api } from "./api.js";
import { button, confirmAction, toast } from "./ui.js";

export function deployButton(deployment, { label = "Deploy" } = {}) {
  return button(
    label,
    async () => {
      const build = await api(`/api/deployments/${deployment.id}/deploy`, { method: "POST", body: {} });
      window.location.assign(`/builds/${build.id}`);
    },
    { variant: "primary", small: true, dataset: { action: "deploy" } },
  );
}

export function restartButton(deployment) {
  return button(
    "Restart",
    async () => {
      const build = await api(`/api/deployments/${deployment.id}/restart`, { method: "POST" });
      window.location.assign(`/builds/${build.id}`);
    },
    {
      variant: "secondary",
      small: true,
      disabled: !deployment.current_build_id,
      title: deployment.current_build_id ? "Start the current build again" : "Nothing was deployed yet",
      dataset: { action: "restart" },
    },
  );
}

export function stopButton(deployment, onDone) {
  return button(
    "Stop",
    async () => {
      const ok = await confirmAction(
        `Stop the ${deployment.type} server of ${deployment.branch}? Its URL stops answering until the next deploy or restart.`,
        { confirmLabel: "Stop server" },
      );
      if (!ok) return;
      await api(`/api/deployments/${deployment.id}/stop`, { method: "POST" });
      toast("Deployment stopped.");
      onDone?.();
    },
    {
      variant: "danger",
      small: true,
      disabled: deployment.status === "stopped" || deployment.status === "pending",
      dataset: { action: "stop" },
    },
  );
}
