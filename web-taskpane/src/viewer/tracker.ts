// Page dwell tracking for the document viewer.
//
// The sender wants "how long was each page read", so the numbers must not count a tab left open over lunch or a
// link scanner that loads the page and sits there. Time therefore accrues only while the document is visible AND the
// reader did something (pointer, key, wheel, touch, scroll) within the last IDLE_LIMIT_MS — the rule Papermark uses
// (peers.md §1.5).
//
// Every report carries the CUMULATIVE active milliseconds per page for this visit, not deltas: a retried, duplicated
// or reordered report can then never double-count, because the server keeps the largest value it has seen per page.
// That is what makes fire-and-forget delivery (sendBeacon on the way out) and blind retries safe.
//
// DwellTracker below holds the rules and touches no DOM, so tests drive it with a fake clock, fake timers and a fake
// transport; wireTrackerToPage() and browserTransport() are the thin layer that connects it to a real page.

import { goneReason } from './ranges';

export const IDLE_LIMIT_MS = 60_000;
/**
 * A page counts as read (reported, so it reaches the sender's feed, "pages read" and "how far") only once it has had
 * this much active time, in one look or several: a page passed on the way to another (End from page 1, Next pressed
 * a few times quickly, a tab closed just after a turn) was on screen for a fraction of a second and was not read.
 */
export const MIN_READ_MS = 1_000;
export const HEARTBEAT_MS = 10_000;
export const MAX_SEND_ATTEMPTS = 3;
/** Waits before the 2nd and 3rd attempt of a failed report. */
export const RETRY_DELAYS_MS: readonly number[] = [1_000, 4_000];

export interface Clock {
  now(): number;
}

/** The subset of the timer functions the tracker uses; a test passes a fake that it advances by hand. */
export interface Timers {
  setInterval(callback: () => void, ms: number): unknown;
  clearInterval(handle: unknown): void;
  setTimeout(callback: () => void, ms: number): unknown;
  clearTimeout(handle: unknown): void;
}

export interface Transport {
  /** Queues the body for delivery after the page is gone (navigator.sendBeacon); false when the browser refused it. */
  beacon(url: string, body: string): boolean;
  /**
   * POSTs the body and resolves with the HTTP status (and a 410's problem "reason"); rejects on a network error.
   * `keepalive` lets the request outlive the page, which is needed when a beacon was refused while the page is being
   * hidden or unloaded.
   */
  post(url: string, body: string, keepalive: boolean): Promise<PostAnswer>;
}

export interface PostAnswer {
  status: number;
  /** A 410's reason: "removed", "turned-off" or "expired"; undefined for other answers or when it does not say. */
  reason?: string;
}

/** The body of POST /d/{token}/visits/{visitId}/beats. */
export interface BeatPayload {
  /** Cumulative active milliseconds per 1-based page number, for the pages read (MIN_READ_MS or more). */
  pages: Record<string, number>;
  /** The pages read, in the order each was first read. */
  order: number[];
  /** The page on screen now. */
  current: number;
}

export interface DwellTrackerOptions {
  beatsUrl: string;
  firstPage: number;
  clock: Clock;
  timers: Timers;
  transport: Transport;
  /** Whether the document is visible when tracking starts (document.visibilityState === 'visible'). */
  visible: boolean;
  /**
   * A report was answered 410 with a reason: the link was turned off or ran out, or the document was removed, while
   * the page was open. The tracker has stopped; the page should stop showing the document.
   */
  onGone?: (reason: string) => void;
}

export class DwellTracker {
  private readonly beatsUrl: string;
  private readonly clock: Clock;
  private readonly timers: Timers;
  private readonly transport: Transport;
  private readonly onGone: ((reason: string) => void) | undefined;

  /** Every page shown, read or not: a page looked at twice for half a second has been read for a second. */
  private readonly activeMs = new Map<number, number>();
  /** The pages read (MIN_READ_MS or more), in the order each was first read: what reports carry. */
  private readonly order: number[] = [];
  private readonly read = new Set<number>();
  private current: number;
  private visible: boolean;
  private lastActivity: number;
  /** Start of the interval not yet credited to `current`; every state change first settles up to "now". */
  private settledAt: number;
  private heartbeat: unknown = null;
  /** Reports the page just turned to once it has been read long enough to count (see showPage). */
  private readTimer: unknown = null;
  private stopped = false;
  /**
   * Whether the document has been on screen at all. A link opened in a background tab and closed unseen read nothing:
   * reporting its first page would put "is reading … page 1" in the sender's feed.
   */
  private everVisible: boolean;

  /** Bumped whenever what a report would say changes; lets hide + pagehide + heartbeat skip redundant reports. */
  private version = 0;
  /** The newest version the server has accepted (or a beacon has queued). */
  private deliveredVersion = -1;

  constructor(options: DwellTrackerOptions) {
    this.beatsUrl = options.beatsUrl;
    this.clock = options.clock;
    this.timers = options.timers;
    this.transport = options.transport;
    this.onGone = options.onGone;
    this.visible = options.visible;
    this.everVisible = options.visible;
    const now = this.clock.now();
    // Opening the document is the reader's own action, so it counts as activity: the first page accrues from here.
    this.lastActivity = now;
    this.settledAt = now;
    this.current = options.firstPage;
    this.activeMs.set(options.firstPage, 0);
    this.updateHeartbeat(now);
  }

  /** Active milliseconds per page so far, settled up to now. */
  totals(): ReadonlyMap<number, number> {
    this.settle(this.clock.now());
    return this.activeMs;
  }

  payload(): BeatPayload {
    this.settle(this.clock.now());
    const pages: Record<string, number> = {};
    for (const page of this.order) pages[String(page)] = Math.round(this.activeMs.get(page) ?? 0);
    return { pages, order: [...this.order], current: this.current };
  }

  /** Pointer, key, wheel, touch or scroll input from the reader. */
  noteActivity(): void {
    if (this.stopped) return;
    const now = this.clock.now();
    this.settle(now);
    this.lastActivity = now;
    this.updateHeartbeat(now);
  }

  /**
   * A new page has been drawn: time from now on belongs to it. Reports at once (the page left gets its last seconds),
   * and again as soon as the new page has been read long enough to count, so the sender's feed hears of it then rather
   * than at the next heartbeat.
   */
  showPage(page: number): void {
    if (this.stopped || page === this.current) return;
    const now = this.clock.now();
    this.settle(now);
    this.current = page;
    if (!this.activeMs.has(page)) this.activeMs.set(page, 0);
    this.version++;
    // Turning a page is activity, even when done with a button that the activity listeners also see.
    this.lastActivity = now;
    this.updateHeartbeat(now);
    this.send(false);
    this.clearReadTimer();
    const left = MIN_READ_MS - (this.activeMs.get(page) ?? 0);
    if (left > 0) {
      this.readTimer = this.timers.setTimeout(() => {
        this.readTimer = null;
        this.settle(this.clock.now());
        // Still on the page and it now counts (it will not if the reader went idle or hid the tab meanwhile: the
        // heartbeat that resumes with them reports it).
        if (this.current === page && this.read.has(page)) this.send(false);
      }, left);
    }
  }

  /**
   * The document became visible or hidden. Going hidden reports by beacon, because a hidden tab may be frozen or
   * discarded without another chance; becoming visible counts as activity, since the reader brought the tab back.
   */
  setVisible(visible: boolean): void {
    if (this.stopped || visible === this.visible) return;
    const now = this.clock.now();
    this.settle(now);
    this.visible = visible;
    if (visible) {
      this.lastActivity = now;
      this.everVisible = true;
    }
    this.updateHeartbeat(now);
    if (!visible) this.send(true);
  }

  /** The page is being unloaded (pagehide): last chance to report, so by beacon. */
  pageHide(): void {
    if (this.stopped) return;
    this.settle(this.clock.now());
    this.send(true);
  }

  /** Stops timers and further reports (the viewer failed, or a test is done); no time accrues after it. */
  stop(): void {
    if (this.stopped) return;
    this.settle(this.clock.now());
    this.stopped = true;
    this.stopHeartbeat();
    this.clearReadTimer();
  }

  private clearReadTimer(): void {
    if (this.readTimer !== null) {
      this.timers.clearTimeout(this.readTimer);
      this.readTimer = null;
    }
  }

  private isAccruing(now: number): boolean {
    return this.visible && now < this.lastActivity + IDLE_LIMIT_MS;
  }

  /**
   * Credits the current page with the active part of [settledAt, now]. Visibility and lastActivity change only right
   * after a settle, so they are constant over the interval and the active part ends at lastActivity + IDLE_LIMIT_MS.
   */
  private settle(now: number): void {
    if (this.stopped || now <= this.settledAt) return;
    if (this.visible) {
      const activeUntil = Math.min(now, this.lastActivity + IDLE_LIMIT_MS);
      const credit = activeUntil - this.settledAt;
      if (credit > 0) {
        const total = (this.activeMs.get(this.current) ?? 0) + credit;
        this.activeMs.set(this.current, total);
        if (total >= MIN_READ_MS && !this.read.has(this.current)) {
          this.read.add(this.current);
          this.order.push(this.current);
        }
        // Time on a page not read yet changes no report.
        if (this.read.has(this.current)) this.version++;
      }
    }
    this.settledAt = now;
  }

  /** Heartbeats run only while time accrues: an idle or hidden reader costs no requests. */
  private updateHeartbeat(now: number): void {
    if (this.isAccruing(now)) {
      if (this.heartbeat === null) this.heartbeat = this.timers.setInterval(() => this.onHeartbeat(), HEARTBEAT_MS);
    } else {
      this.stopHeartbeat();
    }
  }

  private stopHeartbeat(): void {
    if (this.heartbeat !== null) {
      this.timers.clearInterval(this.heartbeat);
      this.heartbeat = null;
    }
  }

  private onHeartbeat(): void {
    const now = this.clock.now();
    this.settle(now);
    this.send(false);
    // The reader went idle since the last tick: this report carried the final seconds, stop until activity resumes.
    this.updateHeartbeat(now);
  }

  private send(leaving: boolean): void {
    if (!this.everVisible) return;
    // payload() settles first, so the version read after it is the one this body describes.
    const body = JSON.stringify(this.payload());
    // Nothing read yet (the document left within a second of opening): nothing to say.
    if (this.order.length === 0) return;
    const version = this.version;
    if (version === this.deliveredVersion) return;
    if (leaving) {
      if (this.transport.beacon(this.beatsUrl, body)) {
        this.delivered(version);
        return;
      }
      // Beacons are refused over a quota or by some privacy settings; keepalive fetch is the other way out.
    }
    void this.post(body, version, leaving, 1);
  }

  private async post(body: string, version: number, keepalive: boolean, attempt: number): Promise<void> {
    let retry: boolean;
    try {
      const { status, reason } = await this.transport.post(this.beatsUrl, body, keepalive);
      if (status >= 200 && status < 300) {
        this.delivered(version);
        return;
      }
      // The link closed (or the document went) while the page was open: no more reports, and the page is told once.
      if (status === 410 && reason !== undefined) {
        if (this.stopped) return;
        this.stop();
        this.onGone?.(reason);
        return;
      }
      // 4xx other than timeouts and rate limits will not change on retry (visit unknown, document removed).
      retry = status >= 500 || status === 408 || status === 429;
    } catch {
      retry = true;
    }
    if (!retry || attempt >= MAX_SEND_ATTEMPTS) return;
    const delay = RETRY_DELAYS_MS[attempt - 1] ?? RETRY_DELAYS_MS[RETRY_DELAYS_MS.length - 1] ?? 0;
    this.timers.setTimeout(() => {
      // A newer report got through meanwhile: it already holds everything this one would say.
      if (this.deliveredVersion >= version) return;
      void this.post(body, version, keepalive, attempt + 1);
    }, delay);
  }

  private delivered(version: number): void {
    if (version > this.deliveredVersion) this.deliveredVersion = version;
  }
}

/**
 * The viewer's error screen, as far as reading time goes. Once it shows, the document is off the screen, so reading
 * stops being tracked, whichever way the viewer got there: a page that failed to draw, a range of the file that could
 * not be fetched after the first page was shown, a heartbeat that found the link closed. `render` draws the screen.
 */
export class ErrorScreen<F> {
  private tracker: Pick<DwellTracker, 'stop'> | null = null;
  private shown = false;

  constructor(private readonly render: (failure: F) => void) {}

  /** Whether the error shows: the viewer then draws no page over it (a resize would otherwise bring the page back). */
  get isShown(): boolean {
    return this.shown;
  }

  /** The tracker of the page on screen. A page that finished drawing after the error showed is not tracked at all. */
  track(tracker: Pick<DwellTracker, 'stop'>): void {
    this.tracker = tracker;
    if (this.shown) tracker.stop();
  }

  show(failure: F): void {
    this.shown = true;
    this.tracker?.stop();
    this.render(failure);
  }
}

/** What wireTrackerToPage needs of `document`; a test passes an EventTarget with a settable visibilityState. */
export interface PageDocument extends EventTarget {
  readonly visibilityState: DocumentVisibilityState;
}

const ACTIVITY_EVENTS = ['pointerdown', 'pointermove', 'keydown', 'wheel', 'touchstart', 'scroll'] as const;

/**
 * Feeds a page's events to the tracker. Listeners are passive and captured at the document, so scrolling inside any
 * element counts (scroll does not bubble). Returns a function that removes them.
 */
export function wireTrackerToPage(tracker: DwellTracker, doc: PageDocument, win: EventTarget): () => void {
  const onActivity = (): void => tracker.noteActivity();
  const onVisibility = (): void => tracker.setVisible(doc.visibilityState === 'visible');
  const onPageHide = (): void => tracker.pageHide();
  const options: AddEventListenerOptions = { capture: true, passive: true };
  for (const type of ACTIVITY_EVENTS) doc.addEventListener(type, onActivity, options);
  doc.addEventListener('visibilitychange', onVisibility);
  win.addEventListener('pagehide', onPageHide);
  return () => {
    for (const type of ACTIVITY_EVENTS) doc.removeEventListener(type, onActivity, options);
    doc.removeEventListener('visibilitychange', onVisibility);
    win.removeEventListener('pagehide', onPageHide);
  };
}

export function browserTransport(): Transport {
  return {
    beacon(url, body) {
      if (typeof navigator.sendBeacon !== 'function') return false;
      // A Blob carries the JSON content type; a plain string would go out as text/plain.
      return navigator.sendBeacon(url, new Blob([body], { type: 'application/json' }));
    },
    async post(url, body, keepalive) {
      const response = await fetch(url, {
        method: 'POST',
        headers: { 'Content-Type': 'application/json' },
        body,
        keepalive,
        credentials: 'same-origin',
        cache: 'no-store',
      });
      const reason = response.status === 410 ? await goneReason(response) : undefined;
      return reason === undefined ? { status: response.status } : { status: response.status, reason };
    },
  };
}

export const browserClock: Clock = { now: () => performance.now() };

export const browserTimers: Timers = {
  setInterval: (callback, ms) => window.setInterval(callback, ms),
  clearInterval: (handle) => window.clearInterval(handle as number),
  setTimeout: (callback, ms) => window.setTimeout(callback, ms),
  clearTimeout: (handle) => window.clearTimeout(handle as number),
};
