// How times, durations and sizes read.

import { h } from "./dom.js";

const dateTimeFormat = new Intl.DateTimeFormat(undefined, {
  dateStyle: "medium",
  timeStyle: "medium",
});
const timeFormat = new Intl.DateTimeFormat(undefined, { timeStyle: "medium" });
const relativeFormat = new Intl.RelativeTimeFormat(undefined, { numeric: "auto" });

export function parseDate(value) {
  if (!value) return null;
  const date = value instanceof Date ? value : new Date(value);
  return Number.isNaN(date.getTime()) ? null : date;
}

export function dateTime(value) {
  const date = parseDate(value);
  return date ? dateTimeFormat.format(date) : "—";
}

export function clockTime(value) {
  const date = parseDate(value);
  return date ? timeFormat.format(date) : "—";
}

export function relative(value, now = Date.now()) {
  const date = parseDate(value);
  if (!date) return "—";
  const seconds = Math.round((date.getTime() - now) / 1000);
  const abs = Math.abs(seconds);
  if (abs < 45) return relativeFormat.format(seconds, "second");
  if (abs < 45 * 60) return relativeFormat.format(Math.round(seconds / 60), "minute");
  if (abs < 22 * 3600) return relativeFormat.format(Math.round(seconds / 3600), "hour");
  if (abs < 26 * 86400) return relativeFormat.format(Math.round(seconds / 86400), "day");
  return dateTime(date);
}

/** <time> showing "3 minutes ago" with the full date as its title. */
export function timeAgo(value) {
  const date = parseDate(value);
  if (!date) return h("span", { class: "muted" }, "—");
  return h("time", { datetime: date.toISOString(), title: dateTime(date) }, relative(date));
}

export function duration(ms) {
  if (ms === null || ms === undefined || Number.isNaN(ms)) return "—";
  if (ms < 1) return `${ms.toFixed(2)} ms`;
  if (ms < 1000) return `${Math.round(ms)} ms`;
  const seconds = ms / 1000;
  if (seconds < 60) return `${seconds.toFixed(seconds < 10 ? 2 : 1)} s`;
  const minutes = Math.floor(seconds / 60);
  const rest = Math.round(seconds - minutes * 60);
  if (minutes < 60) return rest ? `${minutes} min ${rest} s` : `${minutes} min`;
  const hours = Math.floor(minutes / 60);
  return `${hours} h ${minutes - hours * 60} min`;
}

export function between(start, end) {
  const a = parseDate(start);
  const b = parseDate(end);
  if (!a || !b) return null;
  return b.getTime() - a.getTime();
}

export function megabytes(value) {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(value < 10 ? 1 : 0)} MB`;
}

export function percent(value, digits = 1) {
  if (value === null || value === undefined) return "—";
  return `${Number(value).toFixed(digits)}%`;
}

export function number(value) {
  if (value === null || value === undefined) return "—";
  return new Intl.NumberFormat().format(value);
}

export function shortId(id, length = 8) {
  return id ? String(id).slice(0, length) : "—";
}

/** JSON as people read it (strings as themselves). */
export function pretty(value) {
  if (value === undefined) return "";
  if (typeof value === "string") return value;
  try {
    return JSON.stringify(value, null, 2);
  } catch {
    return String(value);
  }
}
