// Server-Sent Events over fetch(): EventSource cannot send an Authorization header,
// so this reads the event stream itself, resumes with Last-Event-ID after a dropped
// connection, and stops for good at a final event or an error the server means.

import { ApiError, authHeaders } from "./api.js";

/** Parse an event stream: feed() text as it arrives, get events back. */
export class EventStreamParser {
  constructor() {
    this.buffer = "";
    this.reset();
    this.lastEventId = null;
    this.retry = null;
  }

  reset() {
    this.event = "";
    this.data = [];
    this.id = undefined;
  }

  feed(text) {
    this.buffer += text;
    const events = [];
    let match;
    const lineBreak = /\r\n|\r|\n/;
    // A trailing lone "\r" may be the first half of "\r\n": wait for more.
    while ((match = lineBreak.exec(this.buffer)) !== null) {
      if (match[0] === "\r" && match.index === this.buffer.length - 1) break;
      const line = this.buffer.slice(0, match.index);
      this.buffer = this.buffer.slice(match.index + match[0].length);
      const event = this.line(line);
      if (event) events.push(event);
    }
    return events;
  }

  /** The stream ended: a trailing "\r" was a line end after all. */
  finish() {
    if (!this.buffer.endsWith("\r")) return [];
    const line = this.buffer.slice(0, -1);
    this.buffer = "";
    return [this.line(line), this.line("")].filter(Boolean);
  }

  line(line) {
    if (line === "") {
      if (this.id !== undefined) this.lastEventId = this.id;
      if (this.data.length === 0) {
        this.reset();
        return null;
      }
      const event = {
        type: this.event || "message",
        data: this.data.join("\n"),
        id: this.id !== undefined ? this.id : this.lastEventId,
      };
      this.reset();
      return event;
    }
    if (line.startsWith(":")) return null;
    const colon = line.indexOf(":");
    const name = colon === -1 ? line : line.slice(0, colon);
    let value = colon === -1 ? "" : line.slice(colon + 1);
    if (value.startsWith(" ")) value = value.slice(1);
    if (name === "event") this.event = value;
    else if (name === "data") this.data.push(value);
    else if (name === "id" && !value.includes("\0")) this.id = value;
    else if (name === "retry" && /^\d+$/.test(value)) this.retry = Number(value);
    return null;
  }
}

/**
 * Follow an event stream until an event named in `until` arrives.
 * onEvent(event) for each event; onState("open" | "reconnecting" | "closed"); onError(error)
 * when the server refuses (then it stops). Returns {close()}.
 */
export function followEvents(url, { onEvent, onState = () => {}, onError = () => {}, until = [] }) {
  const controller = new AbortController();
  const parser = new EventStreamParser();
  let finished = false;
  let attempts = 0;

  const close = () => {
    finished = true;
    controller.abort();
    onState("closed");
  };

  async function connect() {
    // An event cut off by a dropped connection is never delivered (the server resends it).
    parser.buffer = "";
    parser.reset();
    const headers = { Accept: "text/event-stream", ...authHeaders() };
    if (parser.lastEventId !== null) headers["Last-Event-ID"] = parser.lastEventId;
    const response = await fetch(url, { headers, signal: controller.signal, cache: "no-store" });
    if (!response.ok) {
      let body = {};
      try {
        body = (await response.json()).error || {};
      } catch {
        // not JSON
      }
      throw new ApiError({
        status: response.status,
        code: body.code || "http_error",
        message: body.message || `The log stream answered ${response.status}.`,
        details: body.details,
      });
    }
    attempts = 0;
    onState("open");
    const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
    for (;;) {
      const { value, done } = await reader.read();
      for (const event of done ? parser.finish() : parser.feed(value)) {
        onEvent(event);
        if (until.includes(event.type)) {
          finished = true;
          controller.abort();
          onState("closed");
          return;
        }
      }
      if (done) return;
    }
  }

  (async () => {
    while (!finished) {
      try {
        await connect();
      } catch (error) {
        if (finished || (error && error.name === "AbortError")) return;
        if (error instanceof ApiError && error.status >= 400 && error.status < 500) {
          finished = true;
          onError(error);
          onState("closed");
          return;
        }
      }
      if (finished) return;
      // The connection ended before the final event: resume where it stopped.
      attempts += 1;
      onState("reconnecting");
      const wait = Math.min(parser.retry ?? 2000, 1000 * 2 ** Math.min(attempts, 4));
      await new Promise((resolve) => window.setTimeout(resolve, wait));
    }
  })();

  return { close };
}
