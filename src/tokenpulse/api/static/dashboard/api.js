// The dashboard's calls to the service: the API key (kept in sessionStorage, this tab only),
// an optional session token (POST /api/v1/sessions, where the service has it), JSON requests,
// and the URLs of the SSE streams (EventSource cannot send headers: api_key or token query).

const KEY_STORE = "tokenpulse.apiKey";

/** An answer that is not 2xx: `status`, the API's `code`, and `retryAfter` seconds (429/503). */
export class ApiFailure extends Error {
  constructor(status, code, message, retryAfter) {
    super(`${status} ${code}: ${message}`);
    this.status = status;
    this.code = code;
    this.retryAfter = retryAfter;
  }
}

export class Api {
  /**
   * @param {{auth: boolean, sessions: boolean, onUnauthorized: (message: string) => void}} options
   */
  constructor({ auth, sessions, onUnauthorized }) {
    this.auth = auth;
    this.sessions = sessions;
    this.onUnauthorized = onUnauthorized;
    this.key = auth ? sessionStorage.getItem(KEY_STORE) : null;
    this.token = null;
    this.refreshTimer = null;
  }

  /** Whether a key is needed and missing. */
  needsKey() {
    return this.auth && !this.key;
  }

  /** Use `key` from now on (and keep it for this tab); exchange it for a session token if possible. */
  async useKey(key) {
    this.key = key;
    sessionStorage.setItem(KEY_STORE, key);
    await this.openSession();
  }

  /** Forget the key and any session token. */
  forget() {
    this.key = null;
    this.token = null;
    clearTimeout(this.refreshTimer);
    sessionStorage.removeItem(KEY_STORE);
  }

  /** Exchange the key for a session token when the service offers them; else keep using the key. */
  async openSession() {
    if (!this.auth || !this.sessions || !this.key) return;
    try {
      const body = await this.request("POST", "/api/v1/sessions");
      this.#adopt(body);
    } catch (error) {
      if (error instanceof ApiFailure && error.status === 401) throw error;
      this.token = null; // sessions unavailable: streams use the key instead
    }
  }

  #adopt(body) {
    const data = body?.data ?? body ?? {};
    const token = data.token ?? data.access_token;
    if (typeof token !== "string") {
      this.token = null;
      return;
    }
    this.token = token;
    const expiresAt = Date.parse(data.expires_at ?? "");
    const lifetime = Number.isFinite(expiresAt) ? expiresAt - Date.now() : (Number(data.expires_in) || 0) * 1000;
    clearTimeout(this.refreshTimer);
    if (lifetime > 0) this.refreshTimer = setTimeout(() => this.#refresh(), Math.max(5_000, lifetime * 0.8));
  }

  async #refresh() {
    try {
      const body = await this.request("POST", "/api/v1/sessions/refresh", { json: { token: this.token } });
      this.#adopt(body);
    } catch {
      await this.openSession().catch(() => (this.token = null));
    }
  }

  /** GET `path` with `params`; the parsed JSON body. */
  get(path, params = {}) {
    return this.request("GET", path, { params });
  }

  /** One request; throws ApiFailure for a non-2xx answer (after telling about a 401). */
  async request(method, path, { params = {}, json } = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
    const headers = { Accept: "application/json" };
    if (this.key) headers["X-API-Key"] = this.key;
    if (this.token && json) headers.Authorization = `Bearer ${this.token}`;
    if (json) headers["Content-Type"] = "application/json";
    const response = await fetch(url, { method, headers, body: json ? JSON.stringify(json) : undefined });
    const text = await response.text();
    let body = null;
    try {
      body = text ? JSON.parse(text) : null;
    } catch {
      body = null;
    }
    if (response.ok) return body;
    const error = body?.error;
    const code = typeof error === "string" ? error : (error?.code ?? `HTTP_${response.status}`);
    const message = typeof error === "string" ? body?.message : (error?.message ?? response.statusText);
    const retryAfter = Number(response.headers.get("retry-after")) || null;
    const failure = new ApiFailure(response.status, code, message ?? "", retryAfter);
    if (response.status === 401 && !path.startsWith("/api/v1/sessions/refresh")) this.onUnauthorized(failure.message);
    throw failure;
  }

  /** The URL of an SSE stream, with the credentials EventSource cannot send as a header. */
  streamUrl(path, params = {}) {
    const url = new URL(path, location.origin);
    for (const [name, value] of Object.entries(params)) if (value !== undefined) url.searchParams.set(name, value);
    if (this.token) url.searchParams.set("token", this.token);
    else if (this.key) url.searchParams.set("api_key", this.key);
    return url.toString();
  }
}
