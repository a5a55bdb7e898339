import { describe, expect, it } from 'vitest';
import {
  DwellTracker,
  ErrorScreen,
  HEARTBEAT_MS,
  IDLE_LIMIT_MS,
  MAX_SEND_ATTEMPTS,
  MIN_READ_MS,
  RETRY_DELAYS_MS,
  wireTrackerToPage,
  type BeatPayload,
  type Clock,
  type PageDocument,
  type PostAnswer,
  type Timers,
  type Transport,
} from './tracker';

/** One clock and timer queue that a test advances by hand, so every millisecond is accounted for. */
class FakeTime implements Clock, Timers {
  private time = 0;
  private nextId = 1;
  private readonly pending = new Map<number, { at: number; every: number | null; callback: () => void }>();

  now(): number {
    return this.time;
  }

  setInterval(callback: () => void, ms: number): unknown {
    return this.add(callback, ms, ms);
  }

  setTimeout(callback: () => void, ms: number): unknown {
    return this.add(callback, ms, null);
  }

  clearInterval(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  clearTimeout(handle: unknown): void {
    this.pending.delete(handle as number);
  }

  get pendingCount(): number {
    return this.pending.size;
  }

  /** Moves time forward, firing due timers in time order; awaits between them so promise chains can run. */
  async advance(ms: number): Promise<void> {
    // Let already-settled promises (a fetch that just failed) schedule their timers at the current time first.
    await flush();
    const end = this.time + ms;
    for (;;) {
      let nextId: number | null = null;
      let nextAt = Infinity;
      for (const [id, timer] of this.pending) {
        if (timer.at < nextAt) {
          nextAt = timer.at;
          nextId = id;
        }
      }
      if (nextId === null || nextAt > end) break;
      const timer = this.pending.get(nextId)!;
      this.time = nextAt;
      if (timer.every === null) this.pending.delete(nextId);
      else timer.at += timer.every;
      timer.callback();
      await flush();
    }
    this.time = end;
    await flush();
  }

  private add(callback: () => void, ms: number, every: number | null): number {
    const id = this.nextId++;
    this.pending.set(id, { at: this.time + ms, every, callback });
    return id;
  }
}

async function flush(): Promise<void> {
  for (let i = 0; i < 5; i++) await Promise.resolve();
}

type Sent = { via: 'beacon' | 'post'; at: number; keepalive?: boolean; body: BeatPayload };

class FakeTransport implements Transport {
  readonly sent: Sent[] = [];
  /** What each next post answers: a status, a status with a 410's reason, or 'network' for a rejected fetch. Empty: 204. */
  readonly postResults: (number | PostAnswer | 'network')[] = [];
  beaconAccepts = true;

  constructor(private readonly time: FakeTime) {}

  beacon(_url: string, body: string): boolean {
    if (!this.beaconAccepts) return false;
    this.sent.push({ via: 'beacon', at: this.time.now(), body: JSON.parse(body) as BeatPayload });
    return true;
  }

  post(_url: string, body: string, keepalive: boolean): Promise<PostAnswer> {
    this.sent.push({ via: 'post', at: this.time.now(), keepalive, body: JSON.parse(body) as BeatPayload });
    const result = this.postResults.shift() ?? 204;
    if (result === 'network') return Promise.reject(new TypeError('Failed to fetch'));
    return Promise.resolve(typeof result === 'number' ? { status: result } : result);
  }
}

function setup(options: { visible?: boolean; onGone?: (reason: string) => void } = {}) {
  const time = new FakeTime();
  const transport = new FakeTransport(time);
  const tracker = new DwellTracker({
    ...(options.onGone ? { onGone: options.onGone } : {}),
    beatsUrl: '/d/tok/visits/v1/beats',
    firstPage: 1,
    clock: time,
    timers: time,
    transport,
    visible: options.visible ?? true,
  });
  return { time, transport, tracker };
}

const ms = (tracker: DwellTracker, page: number) => tracker.totals().get(page) ?? 0;

describe('DwellTracker accrual', () => {
  it('accrues while visible and active', async () => {
    const { time, tracker } = setup();
    await time.advance(5_000);
    expect(ms(tracker, 1)).toBe(5_000);
  });

  it('accrues nothing while hidden', async () => {
    const { time, tracker } = setup({ visible: false });
    await time.advance(30_000);
    expect(ms(tracker, 1)).toBe(0);
  });

  it('stops accruing while hidden and resumes when visible again', async () => {
    const { time, tracker } = setup();
    await time.advance(4_000);
    tracker.setVisible(false);
    await time.advance(100_000);
    tracker.setVisible(true);
    await time.advance(3_000);
    expect(ms(tracker, 1)).toBe(7_000);
  });

  it('stops accruing 60 s after the last activity', async () => {
    const { time, tracker } = setup();
    await time.advance(10_000);
    tracker.noteActivity();
    await time.advance(5 * 60_000);
    // 10 s, then 60 s after the activity at 10 s, then nothing.
    expect(ms(tracker, 1)).toBe(10_000 + IDLE_LIMIT_MS);
  });

  it('resumes accruing when activity resumes after an idle stop', async () => {
    const { time, tracker } = setup();
    await time.advance(IDLE_LIMIT_MS + 120_000);
    expect(ms(tracker, 1)).toBe(IDLE_LIMIT_MS);
    tracker.noteActivity();
    await time.advance(8_000);
    expect(ms(tracker, 1)).toBe(IDLE_LIMIT_MS + 8_000);
  });

  it('keeps cumulative totals across page changes and back', async () => {
    const { time, tracker } = setup();
    await time.advance(3_000);
    tracker.showPage(2);
    await time.advance(4_000);
    tracker.showPage(1);
    await time.advance(2_000);
    tracker.showPage(2);
    await time.advance(1_000);
    expect(ms(tracker, 1)).toBe(5_000);
    expect(ms(tracker, 2)).toBe(5_000);
  });

  it('records pages in the order first seen, once each', async () => {
    const { time, tracker } = setup();
    for (const page of [3, 2, 3, 7, 1, 2]) {
      await time.advance(1_000);
      tracker.showPage(page);
    }
    const payload = tracker.payload();
    expect(payload.order).toEqual([1, 3, 2, 7]);
    expect(payload.current).toBe(2);
    expect(payload.pages).toEqual({ '1': 2_000, '2': 1_000, '3': 2_000, '7': 1_000 });
  });
});

describe('DwellTracker reports', () => {
  it('sends a heartbeat every 10 s while accruing, with cumulative totals', async () => {
    const { time, transport } = setup();
    await time.advance(3 * HEARTBEAT_MS);
    expect(transport.sent.map((s) => [s.via, s.at, s.body.pages['1']])).toEqual([
      ['post', 10_000, 10_000],
      ['post', 20_000, 20_000],
      ['post', 30_000, 30_000],
    ]);
  });

  it('stops heartbeats when idle and hidden, and restarts them on activity', async () => {
    const { time, transport, tracker } = setup();
    await time.advance(10 * 60_000);
    // Beats at 10..60 s; the one at 60 s carries the last accrued second; nothing after the reader went idle.
    expect(transport.sent.map((s) => s.at)).toEqual([10_000, 20_000, 30_000, 40_000, 50_000, 60_000]);
    expect(time.pendingCount).toBe(0);
    tracker.noteActivity();
    await time.advance(HEARTBEAT_MS);
    expect(transport.sent.at(-1)).toMatchObject({ at: 610_000, body: { pages: { '1': 70_000 } } });
  });

  it('reports at once on a page change, and the new page as soon as it has been read for a second', async () => {
    const { time, transport, tracker } = setup();
    await time.advance(2_500);
    tracker.showPage(2);
    await time.advance(MIN_READ_MS);
    expect(transport.sent).toEqual([
      { via: 'post', at: 2_500, keepalive: false, body: { pages: { '1': 2_500 }, order: [1], current: 2 } },
      { via: 'post', at: 3_500, keepalive: false, body: { pages: { '1': 2_500, '2': 1_000 }, order: [1, 2], current: 2 } },
    ]);
  });

  it('does not count pages passed in a fraction of a second on the way to another as read', async () => {
    const { time, transport, tracker } = setup();
    await time.advance(5_000);
    // Next pressed quickly three times, then End, and the tab closed just after: only page 1 was read.
    for (const page of [2, 3, 4]) {
      tracker.showPage(page);
      await time.advance(300);
    }
    tracker.showPage(12);
    await time.advance(400);
    tracker.pageHide();
    expect(transport.sent.map((s) => s.body)).toEqual([
      { pages: { '1': 5_000 }, order: [1], current: 2 },
      { pages: { '1': 5_000 }, order: [1], current: 3 },
      { pages: { '1': 5_000 }, order: [1], current: 4 },
      { pages: { '1': 5_000 }, order: [1], current: 12 },
    ]);
    expect(ms(tracker, 12)).toBe(400);
  });

  it('counts a page looked at twice briefly once its time adds up to a second', async () => {
    const { time, tracker } = setup();
    await time.advance(3_000);
    tracker.showPage(2);
    await time.advance(600);
    tracker.showPage(1);
    await time.advance(2_000);
    expect(tracker.payload().order).toEqual([1]);
    tracker.showPage(2);
    await time.advance(500);
    expect(tracker.payload()).toEqual({ pages: { '1': 5_000, '2': 1_100 }, order: [1, 2], current: 2 });
  });

  it('reports nothing for a document left within a second of opening', async () => {
    const { time, transport, tracker } = setup();
    await time.advance(MIN_READ_MS - 1);
    tracker.setVisible(false);
    tracker.pageHide();
    expect(transport.sent).toEqual([]);
  });

  it('sends a beacon when the document is hidden, and no duplicate on the pagehide that follows', async () => {
    const { time, transport, tracker } = setup();
    await time.advance(4_000);
    tracker.setVisible(false);
    tracker.pageHide();
    expect(transport.sent).toEqual([
      { via: 'beacon', at: 4_000, body: { pages: { '1': 4_000 }, order: [1], current: 1 } },
    ]);
    expect(time.pendingCount).toBe(0);
  });

  it('reports nothing for a document opened in a background tab and closed unseen', async () => {
    const { time, transport, tracker } = setup({ visible: false });
    await time.advance(20_000);
    tracker.setVisible(false);
    tracker.pageHide();
    // The server turns a page first reported into "is reading … page 1" in the sender's feed.
    expect(transport.sent).toEqual([]);
  });

  it('reports a document opened in a background tab once it has been on screen', async () => {
    const { time, transport, tracker } = setup({ visible: false });
    await time.advance(20_000);
    tracker.setVisible(true);
    await time.advance(2_000);
    tracker.pageHide();
    expect(transport.sent).toEqual([
      { via: 'beacon', at: 22_000, body: { pages: { '1': 2_000 }, order: [1], current: 1 } },
    ]);
  });

  it('falls back to a keepalive fetch when the beacon is refused', async () => {
    const { time, transport, tracker } = setup();
    transport.beaconAccepts = false;
    await time.advance(1_000);
    tracker.pageHide();
    expect(transport.sent).toEqual([
      { via: 'post', at: 1_000, keepalive: true, body: { pages: { '1': 1_000 }, order: [1], current: 1 } },
    ]);
  });

  it('retries a failed report up to 3 attempts with growing delays, then gives up', async () => {
    const { time, transport } = setup();
    transport.postResults.push('network', 503, 'network');
    // The heartbeat at 10 s fails, and so do its two retries; the next heartbeat (20 s) is the next report.
    await time.advance(2 * HEARTBEAT_MS - 1);
    const [first, second] = RETRY_DELAYS_MS as [number, number];
    expect(transport.sent.map((s) => s.at)).toEqual([10_000, 10_000 + first, 10_000 + first + second]);
    expect(transport.sent).toHaveLength(MAX_SEND_ATTEMPTS);
    expect(new Set(transport.sent.map((s) => s.body.pages['1']))).toEqual(new Set([10_000]));
  });

  it('does not retry a report the server rejected for good', async () => {
    const { time, transport } = setup();
    transport.postResults.push(404);
    await time.advance(2 * HEARTBEAT_MS - 1);
    expect(transport.sent).toHaveLength(1);
  });

  it('stops beating and tells the page once when a heartbeat finds the link closed (410 with a reason)', async () => {
    const gone: string[] = [];
    const { time, transport, tracker } = setup({ onGone: (reason) => gone.push(reason) });
    await time.advance(HEARTBEAT_MS); // delivered
    transport.postResults.push({ status: 410, reason: 'turned-off' });
    await time.advance(HEARTBEAT_MS); // the link was turned off meanwhile
    expect(gone).toEqual(['turned-off']);
    tracker.noteActivity();
    tracker.showPage(2);
    await time.advance(5 * HEARTBEAT_MS);
    expect(transport.sent).toHaveLength(2);
    expect(time.pendingCount).toBe(0);
    expect(gone).toEqual(['turned-off']);
  });

  it('a 410 that gives no reason is not retried but does not close the page', async () => {
    const gone: string[] = [];
    const { time, transport } = setup({ onGone: (reason) => gone.push(reason) });
    transport.postResults.push({ status: 410 });
    await time.advance(2 * HEARTBEAT_MS - 1);
    expect(transport.sent).toHaveLength(1);
    expect(gone).toEqual([]);
  });

  it('drops a pending retry once a newer report got through', async () => {
    const { time, transport, tracker } = setup();
    transport.postResults.push('network');
    await time.advance(1_000);
    tracker.showPage(2); // fails at 1 s; retry due at 2 s
    await time.advance(500);
    tracker.showPage(3); // succeeds at 1.5 s with everything the retry held
    await time.advance(2_000);
    // The retry is dropped; page 3 is reported once it has been read for a second.
    expect(transport.sent.map((s) => [s.at, s.body.current, s.body.order])).toEqual([
      [1_000, 2, [1]],
      [1_500, 3, [1]],
      [2_500, 3, [1, 3]],
    ]);
  });

  it('a retry resends the snapshot it failed with; later beats carry the grown totals', async () => {
    const { time, transport } = setup();
    transport.postResults.push('network');
    await time.advance(HEARTBEAT_MS); // the beat at 10 s fails; its retry is due at 11 s
    await time.advance(1_000);
    const values = transport.sent.map((s) => s.body.pages['1'] ?? 0);
    expect(values).toEqual([10_000, 10_000]);
    await time.advance(HEARTBEAT_MS); // the beat at 20 s
    expect(transport.sent.map((s) => s.body.pages['1'] ?? 0)).toEqual([10_000, 10_000, 20_000]);
  });

  it('keeps a 500-page report well under 16 KB', async () => {
    const { time, tracker } = setup();
    for (let page = 2; page <= 501; page++) {
      await time.advance(MIN_READ_MS);
      tracker.showPage(page);
    }
    const body = tracker.payload();
    expect(body.order).toHaveLength(500);
    for (const page of Object.keys(body.pages)) body.pages[page] = 9_999_999;
    expect(new TextEncoder().encode(JSON.stringify(body)).length).toBeLessThan(16 * 1024);
  });
});

describe('ErrorScreen', () => {
  it('stops the tracker when it shows: a page replaced by an error gets no more time and sends nothing more', async () => {
    const { time, transport, tracker } = setup();
    const shown: string[] = [];
    const screen = new ErrorScreen<string>((failure) => shown.push(failure));
    screen.track(tracker);
    await time.advance(HEARTBEAT_MS + 3_000);
    expect(screen.isShown).toBe(false);
    // The next page's range could not be fetched: the error replaces page 1 while the reader is still there.
    screen.show('network');
    expect(shown).toEqual(['network']);
    expect(screen.isShown).toBe(true);
    for (let i = 0; i < 3; i++) {
      tracker.noteActivity();
      await time.advance(10_000);
    }
    tracker.pageHide();
    expect(ms(tracker, 1)).toBe(HEARTBEAT_MS + 3_000);
    expect(transport.sent.map((s) => s.at)).toEqual([HEARTBEAT_MS]);
    expect(time.pendingCount).toBe(0);
  });

  it('stops at once a tracker started after the error showed (a page that finished drawing too late)', async () => {
    const { time, transport, tracker } = setup();
    const screen = new ErrorScreen<string>(() => undefined);
    screen.show('network');
    screen.track(tracker);
    await time.advance(3 * HEARTBEAT_MS);
    tracker.pageHide();
    expect(transport.sent).toEqual([]);
  });
});

describe('wireTrackerToPage', () => {
  class FakeDocument extends EventTarget implements PageDocument {
    visibilityState: DocumentVisibilityState = 'visible';
  }

  it('turns visibilitychange, pagehide and input events into tracker calls', async () => {
    const { time, transport, tracker } = setup();
    const doc = new FakeDocument();
    const win = new EventTarget();
    const unwire = wireTrackerToPage(tracker, doc, win);

    await time.advance(IDLE_LIMIT_MS + 30_000);
    doc.dispatchEvent(new Event('keydown'));
    await time.advance(5_000);
    expect(ms(tracker, 1)).toBe(IDLE_LIMIT_MS + 5_000);

    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(transport.sent.at(-1)).toMatchObject({ via: 'beacon', body: { pages: { '1': IDLE_LIMIT_MS + 5_000 } } });

    doc.visibilityState = 'visible';
    doc.dispatchEvent(new Event('visibilitychange'));
    await time.advance(1_000);
    win.dispatchEvent(new Event('pagehide'));
    expect(transport.sent.at(-1)).toMatchObject({ via: 'beacon', body: { pages: { '1': IDLE_LIMIT_MS + 6_000 } } });

    unwire();
    const count = transport.sent.length;
    doc.visibilityState = 'hidden';
    doc.dispatchEvent(new Event('visibilitychange'));
    expect(transport.sent).toHaveLength(count);
  });
});
