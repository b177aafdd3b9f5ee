// How builds read: a short label, their duration, whether they are still going.

import { between, duration } from "./format.js";

export const ACTIVE = new Set(["queued", "building", "deploying"]);

export function isActive(build) {
  return ACTIVE.has(build.status);
}

export function buildDuration(build) {
  if (!build.started_at) return "—";
  const ms = between(build.started_at, build.completed_at || new Date().toISOString());
  return duration(ms);
}

export function triggerLabel(build) {
  if (build.trigger === "rollback" && build.artifact_build_id) {
    return `rollback to ${build.artifact_build_id.slice(0, 8)}`;
  }
  return build.trigger;
}
