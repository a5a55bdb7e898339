// Byte ranges of the document, fetched by the page rather than by pdf.js's worker.
//
// Why: pdf.js's worker is a megabyte of script. Left to itself, pdf.js asks for the file's first bytes only once the
// worker has arrived, then for the end of the file (where the cross-reference table is), then for page 1's objects,
// one round trip after another. Here the page asks for the first chunk at once and, as soon as that answer names the
// file's length, for the last chunks too, while the worker is still downloading; pdf.js then finds them waiting.

/** Fetches bytes [begin, end) of the document. */
export type RangeFetch = (begin: number, end: number) => Promise<Response>;

export class RangeFetchError extends Error {
  /** For a 410, why the file is gone, as the server's problem names it (see goneReason). */
  constructor(
    readonly status: number,
    readonly reason?: string,
  ) {
    super(`range request failed (${status})`);
  }
}

/**
 * The "reason" of a 410's problem details: "removed" (the sender removed the document), "turned-off" or "expired"
 * (the share link no longer works); undefined when the answer does not say.
 */
export async function goneReason(response: Response): Promise<string | undefined> {
  try {
    const problem = (await response.json()) as { reason?: unknown } | null;
    return typeof problem?.reason === 'string' ? problem.reason : undefined;
  } catch {
    return undefined;
  }
}

/** How the document starts: the whole file (the server ignored Range), or its length and first chunk. */
export type Opening =
  | { kind: 'whole'; data: Uint8Array }
  | { kind: 'ranges'; length: number; initial: Uint8Array; source: RangeSource };

/** Total length from `Content-Range: bytes 0-65535/4752686`. */
export function totalLength(contentRange: string | null): number | null {
  const match = /^bytes \d+-\d+\/(\d+)$/.exec(contentRange?.trim() ?? '');
  return match ? Number(match[1]) : null;
}

/**
 * Serves pdf.js's range requests, from the prefetched tail when it covers them, otherwise by fetching (retried twice
 * on network failure or a 5xx).
 */
export class RangeSource {
  private readonly prefetched: { begin: number; end: number; data: Promise<Uint8Array> }[] = [];

  constructor(
    private readonly fetchRange: RangeFetch,
    readonly length: number,
    private readonly retryDelayMs = 500,
  ) {}

  /** Starts fetching [begin, end) now, for later requests inside it. */
  prefetch(begin: number, end: number): void {
    if (begin >= end) return;
    const data = this.fetchChecked(begin, end);
    data.catch(() => undefined); // a failed prefetch is fetched again when asked for
    this.prefetched.push({ begin, end, data });
  }

  async get(begin: number, end: number): Promise<Uint8Array> {
    const hit = this.prefetched.find((p) => p.begin <= begin && end <= p.end);
    if (hit) {
      try {
        const data = await hit.data;
        return data.subarray(begin - hit.begin, end - hit.begin);
      } catch {
        // fall through to a fresh request
      }
    }
    return this.fetchChecked(begin, end);
  }

  private async fetchChecked(begin: number, end: number): Promise<Uint8Array> {
    for (let attempt = 1; ; attempt++) {
      let status = 0;
      let reason: string | undefined;
      try {
        const response = await this.fetchRange(begin, end);
        status = response.status;
        if (status === 206) {
          const data = new Uint8Array(await response.arrayBuffer());
          if (data.byteLength === end - begin) return data;
          status = -1; // cut short
        } else if (status === 410) {
          reason = await goneReason(response);
        }
      } catch {
        status = 0; // network
      }
      const retriable = status <= 0 || status >= 500;
      if (!retriable || attempt >= 3) throw new RangeFetchError(status, reason);
      await new Promise((resolve) => setTimeout(resolve, this.retryDelayMs * attempt));
    }
  }
}

/**
 * Asks for the first chunk; from its answer, the length, and the tail (the last `tailChunks` chunks, aligned to
 * pdf.js's chunk grid) is requested at once.
 */
export async function openRanges(fetchRange: RangeFetch, chunkSize: number, tailChunks = 2): Promise<Opening> {
  const first = await fetchRange(0, chunkSize);
  if (first.status === 200) return { kind: 'whole', data: new Uint8Array(await first.arrayBuffer()) };
  if (first.status !== 206) throw new RangeFetchError(first.status, first.status === 410 ? await goneReason(first) : undefined);
  const length = totalLength(first.headers.get('Content-Range'));
  if (length === null) throw new RangeFetchError(-1);
  const source = new RangeSource(fetchRange, length);
  const lastChunk = Math.floor((length - 1) / chunkSize);
  const tailBegin = Math.max(1, lastChunk - tailChunks + 1) * chunkSize;
  if (tailBegin < length) source.prefetch(tailBegin, length);
  const initial = new Uint8Array(await first.arrayBuffer());
  if (length <= chunkSize) return { kind: 'whole', data: initial };
  return { kind: 'ranges', length, initial, source };
}

/** Range requests against the document's URL. */
export function httpRanges(url: string): RangeFetch {
  return (begin, end) =>
    fetch(url, {
      headers: { Range: `bytes=${begin}-${end - 1}` },
      credentials: 'same-origin',
      cache: 'no-store',
    });
}
