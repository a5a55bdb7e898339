/** The server's /api, same origin, every call with `Authorization: Bearer <token>` from the add-in's token source. */

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly title: string,
    readonly detail: string,
    /** The problem's `reason`, where the server gives one (why Microsoft sign-in was refused: `not-linked`, …). */
    readonly reason: string | null = null,
    /** The problem's `linkUrl`: the one-time page where the person links this Microsoft account to their user. */
    readonly linkUrl: string | null = null,
  ) {
    super(`${status} ${title}${detail ? ': ' + detail : ''}`);
  }
}

export type TokenSource = () => Promise<string>;

export interface ApiOptions {
  /** Origin (and path base) of the server; '' for the page's own origin. */
  base: string;
  token: TokenSource;
  fetch?: typeof fetch;
}

export class Api {
  readonly base: string;
  readonly token: TokenSource;
  readonly fetch: typeof fetch;

  constructor(options: ApiOptions) {
    this.base = options.base.replace(/\/$/, '');
    this.token = options.token;
    // Bound: window.fetch refuses to be called with another `this`.
    this.fetch = options.fetch ?? ((input, init) => globalThis.fetch(input, init));
  }

  url(path: string): string {
    return this.base + path;
  }

  async headers(extra: Record<string, string> = {}): Promise<Record<string, string>> {
    return { Authorization: `Bearer ${await this.token()}`, Accept: 'application/json', ...extra };
  }

  get<T>(path: string, signal?: AbortSignal): Promise<T> {
    return this.send<T>('GET', path, undefined, signal);
  }

  post<T>(path: string, body: unknown, signal?: AbortSignal): Promise<T> {
    return this.send<T>('POST', path, body, signal);
  }

  private async send<T>(method: string, path: string, body: unknown, signal: AbortSignal | undefined): Promise<T> {
    const headers = await this.headers(body === undefined ? {} : { 'Content-Type': 'application/json' });
    const init: RequestInit = { method, headers };
    if (body !== undefined) init.body = JSON.stringify(body);
    if (signal) init.signal = signal;
    const res = await this.fetch(this.url(path), init);
    const text = await res.text();
    if (!res.ok) throw problem(res.status, text);
    return (text ? JSON.parse(text) : null) as T;
  }
}

/** An error from an RFC 7807 problem answer (title, detail, validation errors) or from the status alone. */
function problem(status: number, text: string): ApiError {
  try {
    const p = JSON.parse(text) as { title?: string; detail?: string; errors?: Record<string, string[]>; reason?: unknown; linkUrl?: unknown };
    const errors = p.errors ? Object.values(p.errors).flat().join(' ') : '';
    return new ApiError(status, p.title ?? `HTTP ${status}`, [p.detail, errors].filter(Boolean).join(' '),
      typeof p.reason === 'string' ? p.reason : null, typeof p.linkUrl === 'string' && isWebUrl(p.linkUrl) ? p.linkUrl : null);
  } catch {
    return new ApiError(status, `HTTP ${status}`, text.slice(0, 200));
  }
}

/** Only an http(s) address is opened as the link page (never a javascript: or data: one, whatever the answer said). */
function isWebUrl(text: string): boolean {
  try {
    const u = new URL(text);
    return u.protocol === 'https:' || u.protocol === 'http:';
  } catch {
    return false;
  }
}

/** GET without a token (the add-in's configuration is anonymous: it is what a token is got with). */
export async function getAnonymous<T>(base: string, path: string, fetchImpl: typeof fetch = (i, n) => globalThis.fetch(i, n)): Promise<T> {
  const res = await fetchImpl(base.replace(/\/$/, '') + path, { headers: { Accept: 'application/json' } });
  const text = await res.text();
  if (!res.ok) throw problem(res.status, text);
  return JSON.parse(text) as T;
}
