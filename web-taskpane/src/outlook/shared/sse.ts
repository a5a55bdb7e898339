/**
 * Server-sent events read with fetch, because EventSource cannot send an Authorization header. The parser follows
 * the HTML standard's event-stream rules (fields id, event, data, retry; comments; CR, LF or CRLF line ends); the
 * follower reconnects with Last-Event-ID, as EventSource would, so no event is missed or seen twice.
 */

export interface SseEvent {
  /** The last event id seen so far in the stream (the standard's "last event ID"), '' when none. */
  id: string;
  event: string;
  data: string;
}

export class SseParser {
  private buffer = '';
  private data: string[] = [];
  private eventType = '';
  /** The stream's last event id, carried over from event to event as the standard says. */
  lastEventId = '';
  /** Reconnection time the server asked for (`retry:`), in ms; null until it says. */
  retry: number | null = null;
  private sawCr = false;

  /** Forgets a half-received event (the connection ended); the last event id and retry time stay. */
  reset(): void {
    this.buffer = '';
    this.data = [];
    this.eventType = '';
    this.sawCr = false;
  }

  /** Feeds decoded text; answers the events it completed. */
  push(text: string): SseEvent[] {
    const events: SseEvent[] = [];
    let start = 0;
    for (let i = 0; i < text.length; i++) {
      const c = text[i];
      if (c === '\n' && this.sawCr) {
        // the LF of a CRLF whose CR ended the line already
        this.sawCr = false;
        start = i + 1;
        continue;
      }
      this.sawCr = false;
      if (c === '\r' || c === '\n') {
        this.sawCr = c === '\r';
        const line = this.buffer + text.slice(start, i);
        this.buffer = '';
        start = i + 1;
        const event = this.line(line);
        if (event) events.push(event);
      }
    }
    this.buffer += text.slice(start);
    return events;
  }

  private line(line: string): SseEvent | null {
    if (line === '') {
      if (this.data.length === 0) {
        this.eventType = '';
        return null;
      }
      const event = { id: this.lastEventId, event: this.eventType || 'message', data: this.data.join('\n') };
      this.data = [];
      this.eventType = '';
      return event;
    }
    if (line.startsWith(':')) return null;
    const colon = line.indexOf(':');
    const field = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? '' : line.slice(colon + 1);
    if (value.startsWith(' ')) value = value.slice(1);
    switch (field) {
      case 'data':
        this.data.push(value);
        break;
      case 'event':
        this.eventType = value;
        break;
      case 'id':
        if (!value.includes('\0')) this.lastEventId = value;
        break;
      case 'retry':
        if (/^\d+$/.test(value)) this.retry = Number(value);
        break;
    }
    return null;
  }
}

/** The server refused the stream for good: its status, and its problem's title (or the status) as the message. */
export class FeedRefused extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/** The refusal's own words: an RFC 7807 problem's title (and detail), else the status. */
async function refusal(res: Response): Promise<FeedRefused> {
  let text = '';
  try {
    const p = JSON.parse(await res.text()) as { title?: unknown; detail?: unknown };
    text = [p.title, p.detail].filter((x): x is string => typeof x === 'string' && x.trim() !== '').map((x) => x.trim()).join(' ');
  } catch {
    // Not a problem document: the status says it.
  }
  return new FeedRefused(res.status, text || `The feed was refused (HTTP ${res.status}).`);
}

export interface FollowOptions {
  url: string;
  /** Headers for each (re)connection, e.g. a fresh Authorization. */
  headers: () => Promise<Record<string, string>>;
  onEvent: (event: SseEvent) => void;
  signal: AbortSignal;
  /** Called when a connection opens (status 200), e.g. to refresh what may have changed while disconnected. */
  onOpen?: () => void;
  /** Called when a connection fails or ends, before waiting to reconnect. */
  onError?: (error: unknown) => void;
  /** Called instead when the server refused the stream in a way asking again will not fix: following has ended. */
  onStop?: (error: FeedRefused) => void;
  fetch?: typeof fetch;
  sleep?: (ms: number, signal: AbortSignal) => Promise<void>;
  /** Last-Event-ID to start from ('' for new events only). */
  lastEventId?: string;
}

const defaultSleep = (ms: number, signal: AbortSignal) =>
  new Promise<void>((resolve) => {
    const t = setTimeout(resolve, ms);
    signal.addEventListener('abort', () => { clearTimeout(t); resolve(); }, { once: true });
  });

/**
 * Follows the stream until the signal aborts: reconnects after the server's retry time (2 s when it gave none) and,
 * after failures in a row, waits longer (up to 30 s). A 4xx other than 401, 408 and 429 stops it (the request is
 * wrong and asking again will not help: `onStop` hears why); a 401 reconnects with a fresh token from `headers`.
 */
export async function followSse(o: FollowOptions): Promise<void> {
  const fetchImpl = o.fetch ?? ((i: RequestInfo | URL, n?: RequestInit) => globalThis.fetch(i, n));
  const sleep = o.sleep ?? defaultSleep;
  const parser = new SseParser();
  parser.lastEventId = o.lastEventId ?? '';
  let failures = 0;
  while (!o.signal.aborted) {
    try {
      const headers: Record<string, string> = { Accept: 'text/event-stream', ...(await o.headers()) };
      if (parser.lastEventId) headers['Last-Event-ID'] = parser.lastEventId;
      const res = await fetchImpl(o.url, { headers, signal: o.signal, cache: 'no-store' });
      if (!res.ok || !res.body) {
        if (res.status >= 400 && res.status < 500 && ![401, 408, 429].includes(res.status)) {
          // Not an error to wait out: whoever shows "reconnecting" on onError must hear that following stopped.
          const refused = await refusal(res);
          if (o.onStop) o.onStop(refused);
          else o.onError?.(refused);
          return;
        }
        throw new Error(`feed: HTTP ${res.status}`);
      }
      o.onOpen?.();
      const reader = res.body.pipeThrough(new TextDecoderStream()).getReader();
      for (;;) {
        const { value, done } = await reader.read();
        if (done) break;
        failures = 0;
        for (const event of parser.push(value)) o.onEvent(event);
      }
      // The server closed the stream: whatever was half-received is dropped, as the standard says.
      parser.reset();
    } catch (e) {
      if (o.signal.aborted) return;
      failures++;
      o.onError?.(e);
    }
    if (o.signal.aborted) return;
    parser.reset();
    const base = parser.retry ?? 2000;
    await sleep(failures === 0 ? base : Math.min(30_000, base * 2 ** (failures - 1)), o.signal);
  }
}
