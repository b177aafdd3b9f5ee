// One build: its facts, cancel, and its log streamed live over SSE (fetch-based, so
// the token goes in a header), with ANSI colours and auto-scroll that stops when
// you scroll up and starts again at the bottom.

import { api } from "../lib/api.js";
import { h, mount, slot } from "../lib/dom.js";
import { dateTime, shortId, timeAgo } from "../lib/format.js";
import { deploymentContext, headingStatus } from "../lib/context.js";
import { newAnsiState, renderAnsiLine, stripAnsi } from "../lib/ansi.js";
import { followEvents } from "../lib/sse.js";
import { buildDuration, isActive, triggerLabel } from "../lib/builds.js";
import { badge, button, errorState, externalLink, facts, loading, toast } from "../lib/ui.js";

const STATUS_WORDS = {
  queued: "Queued: waiting for a build worker",
  building: "Building",
  deploying: "Starting the server and checking its health",
  succeeded: "Build succeeded",
  failed: "Build failed",
  cancelled: "Build cancelled",
};

export async function render({ params }) {
  const buildId = params.buildId;
  const factsSlot = slot("build");
  const logEl = slot("log");
  const statusEl = slot("log-status");

  let build;
  let deployment;
  try {
    build = await api(`/api/builds/${buildId}`);
    ({ deployment } = await deploymentContext(build.deployment_id, [`Build ${shortId(build.id)}`, window.location.pathname]));
  } catch (error) {
    mount(factsSlot, errorState(error));
    mount(statusEl);
    logEl.removeAttribute("aria-busy");
    return;
  }

  let finished = !isActive(build);
  let queuePosition = null;

  function renderFacts() {
    headingStatus(build.status);
    mount(
      slot("build-actions"),
      isActive(build)
        ? button(
            "Cancel build",
            async () => {
              build = await api(`/api/builds/${buildId}/cancel`, { method: "POST" });
              toast("Build cancelled.");
              renderFacts();
            },
            { variant: "danger", small: true, dataset: { action: "cancel" } },
          )
        : null,
      h("a", { class: "button secondary small", href: `/deployments/${build.deployment_id}` }, "Deployment"),
    );
    mount(
      factsSlot,
      facts([
        ["Status", h("span", { dataset: { buildStatus: build.status } }, badge(build.status))],
        ["Trigger", triggerLabel(build)],
        ["Queued", h("span", { title: dateTime(build.queued_at) }, timeAgo(build.queued_at))],
        ["Started", build.started_at ? timeAgo(build.started_at) : "not yet"],
        [isActive(build) ? "Running for" : "Took", buildDuration(build)],
        ["Commit", build.commit_sha ? h("code", { title: build.commit_sha }, build.commit_sha.slice(0, 12)) : "—"],
        build.ref ? ["Asked for", h("code", {}, build.ref)] : null,
        build.commit_author ? ["Author", build.commit_author] : null,
        build.commit_message
          ? ["Message", h("span", { class: "commit-message", title: build.commit_message }, build.commit_message.split("\n")[0]), { wide: true }]
          : null,
        build.status === "queued" && queuePosition ? ["Place in queue", String(queuePosition)] : null,
        build.status === "succeeded" && deployment.public_url
          ? ["Served at", externalLink(deployment.public_url, deployment.public_url), { wide: true }]
          : null,
      ]),
      build.error_message
        ? h(
            "div",
            { class: build.status === "failed" ? "state error" : "notice", role: build.status === "failed" ? "alert" : "status" },
            h("p", { class: "state-title" }, build.status === "failed" ? "Why it failed" : "Why it stopped"),
            h("p", {}, build.error_message),
          )
        : null,
    );
  }
  renderFacts();

  // --- the log ---------------------------------------------------------------------

  const follow = h("input", { type: "checkbox", id: "follow-log", checked: true });
  const lines = [];
  mount(
    slot("log-actions"),
    h("label", { class: "follow", for: "follow-log" }, follow, "Follow the log"),
    button("Copy log", async () => {
      try {
        await navigator.clipboard.writeText(lines.join("\n"));
        toast("Log copied.");
      } catch {
        toast("The browser did not allow copying.", "error");
      }
    }, { variant: "secondary", small: true }),
  );

  const scrollToEnd = () => {
    logEl.scrollTop = logEl.scrollHeight;
  };
  follow.addEventListener("change", () => {
    if (follow.checked) scrollToEnd();
  });
  logEl.addEventListener("scroll", () => {
    const atBottom = logEl.scrollTop + logEl.clientHeight >= logEl.scrollHeight - 24;
    if (follow.checked !== atBottom) follow.checked = atBottom;
  });

  const ansiState = newAnsiState();
  let pending = document.createDocumentFragment();
  let scheduled = false;
  const flush = () => {
    scheduled = false;
    logEl.append(pending);
    pending = document.createDocumentFragment();
    logEl.removeAttribute("aria-busy");
    if (follow.checked) scrollToEnd();
  };
  const addLine = (text) => {
    const plain = stripAnsi(text);
    lines.push(plain);
    const el = h("span", { class: ["log-line", plain.startsWith("==> ") ? "marker" : ""] });
    el.append(renderAnsiLine(text, ansiState));
    pending.append(el);
    if (!scheduled) {
      scheduled = true;
      requestAnimationFrame(flush);
    }
  };

  const setStatus = (...children) => mount(statusEl, children);
  const describe = () => STATUS_WORDS[build.status] || build.status;

  setStatus(loading("Connecting to the log…"));
  logEl.setAttribute("aria-busy", "true");

  const refreshBuild = async () => {
    try {
      build = await api(`/api/builds/${buildId}`);
      if (build.status === "queued") {
        queuePosition = (await api(`/api/builds/${buildId}/queue-position`)).position;
      }
      if (build.status === "succeeded") {
        deployment = await api(`/api/deployments/${build.deployment_id}`);
      }
      renderFacts();
    } catch {
      // the stream reports what matters; facts catch up on the next tick
    }
  };

  followEvents(`/api/builds/${buildId}/logs/stream`, {
    until: ["end"],
    onEvent: async (event) => {
      if (event.type === "line") {
        addLine(event.data);
        return;
      }
      if (event.type === "end") {
        finished = true;
        flush();
        let result = {};
        try {
          result = JSON.parse(event.data);
        } catch {
          // keep the defaults
        }
        await refreshBuild();
        const status = result.status || build.status;
        setStatus(
          badge(status),
          h("span", { dataset: { logEnd: status } }, STATUS_WORDS[status] || status),
          result.error_message ? h("span", { class: "muted" }, result.error_message) : null,
          status === "succeeded" && deployment.public_url ? externalLink("Open the server", deployment.public_url) : null,
        );
      }
    },
    onState: (state) => {
      if (finished) return;
      if (state === "open") setStatus(h("span", { class: "spinner", "aria-hidden": "true" }), h("span", {}, `Live: ${describe()}`));
      if (state === "reconnecting") setStatus(loading("The connection dropped; resuming where the log stopped…"));
    },
    onError: (error) => {
      logEl.removeAttribute("aria-busy");
      mount(statusEl, errorState(error));
    },
  });

  // Status changes (queued, building, deploying) between log lines.
  const tick = async () => {
    if (finished) return;
    if (!document.hidden) {
      await refreshBuild();
      if (!finished) setStatus(h("span", { class: "spinner", "aria-hidden": "true" }), h("span", {}, `Live: ${describe()}`));
    }
    window.setTimeout(tick, 2000);
  };
  window.setTimeout(tick, 2000);
}
