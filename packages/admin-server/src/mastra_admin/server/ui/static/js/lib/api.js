// The JSON API client: the bearer token kept in localStorage, one error type,
// and sign-in redirects when the server no longer accepts the token.

const TOKEN_KEY = "mastraAdmin.token";
const REASON_KEY = "mastraAdmin.signInReason";

export const token = {
  get() {
    try {
      return window.localStorage.getItem(TOKEN_KEY);
    } catch {
      return null;
    }
  },
  set(value) {
    window.localStorage.setItem(TOKEN_KEY, value);
  },
  clear() {
    try {
      window.localStorage.removeItem(TOKEN_KEY);
    } catch {
      // storage may be disabled; nothing to forget then
    }
  },
};

/** An error answered by the API ({"error": {code, message, details}}) or a network failure. */
export class ApiError extends Error {
  constructor({ status, code, message, details = {}, requestId = null }) {
    super(message);
    this.name = "ApiError";
    this.status = status;
    this.code = code;
    this.details = details || {};
    this.requestId = requestId;
  }

  /** Field name -> message, from a 422's details. */
  get fieldErrors() {
    const out = {};
    for (const item of this.details.fields || []) {
      if (item.field) out[String(item.field).split(".").pop()] = item.message;
    }
    // Rules the core checks itself name one field: {"field": "branch"}.
    if (typeof this.details.field === "string" && !(this.details.field in out)) {
      out[this.details.field] = this.message;
    }
    return out;
  }
}

export function signInUrl(next = window.location.pathname + window.location.search) {
  return `/sign-in?next=${encodeURIComponent(next)}`;
}

/** Forget the token and go to the sign-in page, saying why. */
export function signOut(reason = "") {
  token.clear();
  try {
    if (reason) window.sessionStorage.setItem(REASON_KEY, reason);
  } catch {
    // ignore
  }
  window.location.assign(reason ? signInUrl() : "/sign-in");
}

/** Why the last session ended, once. */
export function takeSignInReason() {
  try {
    const reason = window.sessionStorage.getItem(REASON_KEY);
    window.sessionStorage.removeItem(REASON_KEY);
    return reason;
  } catch {
    return null;
  }
}

export function buildUrl(path, query) {
  const url = new URL(path, window.location.origin);
  for (const [key, value] of Object.entries(query || {})) {
    if (value === undefined || value === null || value === "") continue;
    if (Array.isArray(value)) value.forEach((item) => url.searchParams.append(key, item));
    else url.searchParams.set(key, String(value));
  }
  return url;
}

export function authHeaders(explicitToken) {
  const bearer = explicitToken ?? token.get();
  return bearer ? { Authorization: `Bearer ${bearer}` } : {};
}

/**
 * Call the API. Resolves with the decoded JSON (null for 204), rejects with ApiError.
 * A 401 signs the browser out, unless an explicit token is being tried.
 */
export async function api(path, options = {}) {
  const { method = "GET", body, query, signal, token: explicitToken } = options;
  const headers = { Accept: "application/json", ...authHeaders(explicitToken) };
  let payload;
  if (body !== undefined) {
    headers["Content-Type"] = "application/json";
    payload = JSON.stringify(body);
  }
  let response;
  try {
    response = await fetch(buildUrl(path, query), {
      method,
      headers,
      body: payload,
      signal,
      cache: "no-store",
    });
  } catch (error) {
    if (error && error.name === "AbortError") throw error;
    throw new ApiError({
      status: 0,
      code: "network",
      message: "The server did not answer. Check that MastraAdmin is running, then try again.",
    });
  }
  if (response.status === 204) return null;
  const text = await response.text();
  let data = null;
  if (text) {
    try {
      data = JSON.parse(text);
    } catch {
      data = text;
    }
  }
  if (!response.ok) {
    const body = (data && typeof data === "object" && data.error) || {};
    const error = new ApiError({
      status: response.status,
      code: body.code || "http_error",
      message: body.message || `The server answered ${response.status}.`,
      details: body.details,
      requestId: response.headers.get("x-request-id"),
    });
    if (response.status === 401 && explicitToken === undefined) {
      signOut("Your sign-in is no longer valid. Sign in again.");
    }
    throw error;
  }
  return data;
}
