// The recipient-facing document viewer, served by the server at /d/{token}.
//
// Flow: start pdf.js's worker, open a visit (POST /d/{token}/visits) and fetch the PDF's head and tail
// (/d/{token}/file, HTTP Range; ranges.ts) all at once → pdf.js asks for the ranges page 1 needs, so it draws before
// the whole file has arrived → show one page at a time → report per-page dwell time (tracker.ts) unless the server
// says this is the sender's own preview.
//
// Browser tests drive the page through stable ids and wait on body[data-state] (loading | ready | error) and
// body[data-page] (set after a page has drawn); nothing is exposed on window.

import {
  GlobalWorkerOptions,
  InvalidPDFException,
  PDFDataRangeTransport,
  RenderingCancelledException,
  ResponseException,
  TextLayer,
  getDocument,
  type PDFDocumentProxy,
  type PDFPageProxy,
  type PageViewport,
  type RenderTask,
} from 'pdfjs-dist';
// Emitted as its own file: the worker must be a same-origin script for the CSP (worker-src 'self'); no blob: URL.
import workerUrl from 'pdfjs-dist/build/pdf.worker.min.mjs?url';
import { DwellTracker, ErrorScreen, browserClock, browserTimers, browserTransport, wireTrackerToPage } from './tracker';
import { RangeFetchError, goneReason, httpRanges, openRanges, type RangeSource } from './ranges';
import { findAll, layout, nextMatch, normalizeQuery, pieceRanges, type Match, type PageText, type Piece } from './find';

/** Bytes per range request (pdf.js's chunk grid). */
const CHUNK_SIZE = 65_536;

/** pdf.js asks; the page's RangeSource answers (from the prefetched tail when it can). */
class PageRanges extends PDFDataRangeTransport {
  constructor(
    private readonly source: RangeSource,
    initial: Uint8Array,
    private readonly failed: (error: unknown) => void,
  ) {
    super(source.length, initial);
  }

  override requestDataRange(begin: number, end: number): void {
    this.source.get(begin, end).then((chunk) => this.onDataRange(begin, chunk), this.failed);
  }
}

GlobalWorkerOptions.workerSrc = workerUrl;
// Start the worker (a megabyte of script) now, while the visit is opened and the PDF's first ranges are fetched,
// rather than after them: on a slow line this is seconds off the first page.
try {
  GlobalWorkerOptions.workerPort = new Worker(workerUrl, { type: 'module' });
} catch {
  // pdf.js starts its own worker from workerSrc (or falls back to running in the page).
}

/** POST /d/{token}/visits answer. */
interface Visit {
  visitId: string | null;
  name: string;
  pageCount: number;
  allowDownload: boolean;
  fileUrl: string;
  downloadUrl: string | null;
  preview: boolean;
}

type Failure = 'unknown' | 'removed' | 'turnedOff' | 'expired' | 'network' | 'server' | 'unreadable';

const MESSAGES: Record<Failure, { title: string; detail: string; retry: boolean }> = {
  unknown: {
    title: 'This link does not work',
    detail: 'The address may be incomplete. Check the link in the email you received.',
    retry: false,
  },
  removed: {
    title: 'This document is no longer available',
    detail: 'The sender has removed it.',
    retry: false,
  },
  turnedOff: {
    title: 'This link no longer works',
    detail: 'The sender turned it off. Ask them for a new link.',
    retry: false,
  },
  expired: {
    title: 'This link no longer works',
    detail: 'It has expired. Ask the sender for a new link.',
    retry: false,
  },
  network: {
    title: 'The document could not be loaded',
    detail: 'Check your connection and try again.',
    retry: true,
  },
  server: {
    title: 'The document could not be loaded',
    detail: 'Something went wrong on our side. Please try again in a moment.',
    retry: true,
  },
  unreadable: {
    title: 'This document cannot be displayed',
    detail: 'The file appears to be damaged.',
    retry: false,
  },
};

const ZOOM_STEP = 1.25;
/** Pages whose text a search reads at once. */
const TEXT_READS_AT_ONCE = 8;
/** Stage width (CSS px) from which "fit" shows the whole page rather than its width. */
const WIDE_SCREEN = 700;
const MIN_SCALE = 0.25;
const MAX_SCALE = 5;
/** Canvas backing stores beyond ~16 Mpx exhaust memory on phones (iOS refuses them): lower the resolution instead. */
const MAX_CANVAS_PIXELS = 16_777_216;
const SWIPE_MIN_PX = 50;
/** How far an arrow key scrolls a page larger than the screen (the browser's own step). */
const ARROW_SCROLL_PX = 40;
const SWIPE_MAX_MS = 800;
/** Tokens are at least 128 random bits in base64url (22 characters); anything else cannot be a link of ours. */
const TOKEN_PATTERN = /^[A-Za-z0-9_-]{22,}$/;

function byId<T extends HTMLElement>(id: string, type: new () => T): T {
  const element = document.getElementById(id);
  if (!(element instanceof type)) throw new Error(`#${id} is missing from the viewer page`);
  return element;
}

const ui = {
  title: byId('title', HTMLElement),
  tools: byId('tools', HTMLElement),
  zoomIn: byId('zoom-in', HTMLButtonElement),
  zoomOut: byId('zoom-out', HTMLButtonElement),
  fit: byId('fit', HTMLButtonElement),
  download: byId('download', HTMLAnchorElement),
  previewBanner: byId('preview-banner', HTMLElement),
  stage: byId('stage', HTMLElement),
  page: byId('page', HTMLElement),
  error: byId('error', HTMLElement),
  errorTitle: byId('error-title', HTMLElement),
  errorDetail: byId('error-detail', HTMLElement),
  retry: byId('retry', HTMLButtonElement),
  nav: byId('nav', HTMLElement),
  prev: byId('prev', HTMLButtonElement),
  next: byId('next', HTMLButtonElement),
  pageNumber: byId('page-number', HTMLInputElement),
  pageCount: byId('page-count', HTMLElement),
  pageStatus: byId('page-status', HTMLElement),
  findOpen: byId('find-open', HTMLButtonElement),
  find: byId('find', HTMLFormElement),
  findText: byId('find-text', HTMLInputElement),
  findStatus: byId('find-status', HTMLElement),
  findPrev: byId('find-prev', HTMLButtonElement),
  findNext: byId('find-next', HTMLButtonElement),
  findClose: byId('find-close', HTMLButtonElement),
};

class ViewerError extends Error {
  constructor(readonly failure: Failure) {
    super(failure);
  }
}

function renderError(failure: Failure): void {
  const message = MESSAGES[failure];
  ui.errorTitle.textContent = message.title;
  ui.errorDetail.textContent = message.detail;
  ui.retry.hidden = !message.retry;
  ui.error.hidden = false;
  ui.page.replaceChildren();
  ui.nav.hidden = true;
  ui.tools.hidden = true;
  if (ui.title.textContent === 'Loading…') ui.title.textContent = '';
  document.body.dataset.state = 'error';
}

/** Every error the viewer shows goes through here, which stops the reading time of the page it replaces. */
const errorScreen = new ErrorScreen<Failure>(renderError);

function showError(failure: Failure): void {
  errorScreen.show(failure);
}

function readToken(): string | null {
  const segments = location.pathname.split('/').filter((segment) => segment !== '');
  const token = segments.at(-1) ?? '';
  return TOKEN_PATTERN.test(token) ? token : null;
}

/**
 * What a 410 means, by its problem's reason: a share link turned off or expired (perhaps while the page was open)
 * is not a removed document, and its reader is told to ask for a new link.
 */
function goneFailure(reason: string | undefined): Failure {
  if (reason === 'turned-off') return 'turnedOff';
  if (reason === 'expired') return 'expired';
  return 'removed';
}

async function openVisit(token: string): Promise<Visit> {
  let response: Response;
  try {
    response = await fetch(`/d/${token}/visits`, {
      method: 'POST',
      headers: { 'Content-Type': 'application/json', Accept: 'application/json' },
      body: '{}',
      credentials: 'same-origin',
      cache: 'no-store',
    });
  } catch {
    throw new ViewerError('network');
  }
  if (response.status === 404) throw new ViewerError('unknown');
  if (response.status === 410) throw new ViewerError(goneFailure(await goneReason(response)));
  if (!response.ok) throw new ViewerError('server');
  try {
    return (await response.json()) as Visit;
  } catch {
    throw new ViewerError('server');
  }
}

type Zoom = 'fit' | number;

/** The fields of a pdf.js annotation that a link needs. */
interface LinkAnnotation {
  subtype: string;
  rect: number[];
  url?: string;
  dest?: string | unknown[];
}

/** The page's text as pdf.js lays it out over the picture (see .textLayer in viewer.css); null when it cannot. */
async function textLayer(page: PDFPageProxy, viewport: PageViewport): Promise<HTMLElement | null> {
  const layer = document.createElement('div');
  layer.className = 'textLayer';
  // pdf.js sizes the layer and its text from this factor (its own viewer sets it the same way).
  layer.style.setProperty('--total-scale-factor', String(viewport.scale * (viewport.userUnit || 1)));
  try {
    await new TextLayer({ textContentSource: page.streamTextContent(), container: layer, viewport }).render();
  } catch {
    return null;
  }
  return layer;
}

class PageView {
  private pageNumber = 1;
  private zoom: Zoom = 'fit';
  /** The scale the shown page was drawn at, the base for zooming in and out from "fit". */
  private shownScale = 1;
  private drawSeq = 0;
  private renderTask: RenderTask | null = null;
  private tracker: DwellTracker | null = null;
  private lastStageWidth = 0;
  private lastStageHeight = 0;
  /** Called with each page's text layer once it is over the picture (the search marks its matches in it). */
  onTextLayer: ((page: number, layer: HTMLElement) => void) | null = null;

  constructor(
    private readonly pdf: PDFDocumentProxy,
    private readonly startTracking: ((page: number) => DwellTracker) | null,
    /** Where a followed link is reported (POST /d/{token}/visits/{id}/links); null for the sender's own preview. */
    private readonly linksUrl: string | null = null,
  ) {}

  get count(): number {
    return this.pdf.numPages;
  }

  /** The page shown (or being drawn). */
  get page(): number {
    return this.pageNumber;
  }

  /** The shown page's text layer, when it is the page asked for and its layers are in place. */
  textLayerOf(page: number): HTMLElement | null {
    if (document.body.dataset.page !== String(page) || this.pageNumber !== page) return null;
    return ui.page.querySelector<HTMLElement>('.sheet[data-layers=ready] .textLayer');
  }

  start(): void {
    ui.pageCount.textContent = String(this.count);
    this.wireControls();
    this.lastStageWidth = ui.stage.clientWidth;
    this.lastStageHeight = this.lastStageWidth >= WIDE_SCREEN ? ui.stage.clientHeight : 0;
    void this.draw(1);
  }

  go(page: number): void {
    const target = Math.min(Math.max(1, Math.trunc(page)), this.count);
    if (Number.isNaN(target)) return;
    if (target === this.pageNumber && document.body.dataset.page === String(target)) {
      this.syncControls(); // put back a page number the reader typed out of range
      return;
    }
    void this.draw(target);
  }

  private setZoom(zoom: Zoom): void {
    this.zoom = zoom === 'fit' ? 'fit' : Math.min(MAX_SCALE, Math.max(MIN_SCALE, zoom));
    void this.draw(this.pageNumber);
  }

  private async draw(pageNumber: number): Promise<void> {
    // Nothing is drawn over an error: hiding the controls for it resizes the stage, which would redraw the page.
    if (errorScreen.isShown) return;
    const seq = ++this.drawSeq;
    this.pageNumber = pageNumber;
    this.syncControls();
    this.renderTask?.cancel();
    this.renderTask = null;

    let page;
    try {
      page = await this.pdf.getPage(pageNumber);
    } catch (error) {
      if (seq === this.drawSeq) this.fail(error);
      return;
    }
    if (seq !== this.drawSeq) return; // the reader moved on while the page's data was loading

    const unscaled = page.getViewport({ scale: 1 });
    const scale = this.zoom === 'fit' ? this.fitScale(unscaled.width, unscaled.height) : this.zoom;
    const viewport = page.getViewport({ scale });
    // Draw at device pixels so text stays sharp on high-density screens, unless that would be too big a canvas.
    let outputScale = window.devicePixelRatio || 1;
    const pixels = viewport.width * viewport.height * outputScale * outputScale;
    if (pixels > MAX_CANVAS_PIXELS) outputScale *= Math.sqrt(MAX_CANVAS_PIXELS / pixels);

    // A fresh canvas per draw: the old page stays on screen until the new one is complete (no blank flash), and a
    // cancelled render never shares a canvas with the next one, which pdf.js forbids.
    const canvas = document.createElement('canvas');
    canvas.width = Math.floor(viewport.width * outputScale);
    canvas.height = Math.floor(viewport.height * outputScale);
    canvas.style.width = `${Math.floor(viewport.width)}px`;
    canvas.style.height = `${Math.floor(viewport.height)}px`;
    canvas.setAttribute('role', 'img');
    canvas.setAttribute('aria-label', `Page ${pageNumber} of ${this.count}`);

    const task = page.render({
      canvas,
      viewport,
      ...(outputScale !== 1 ? { transform: [outputScale, 0, 0, outputScale, 0, 0] } : {}),
    });
    this.renderTask = task;
    try {
      await task.promise;
    } catch (error) {
      if (error instanceof RenderingCancelledException || seq !== this.drawSeq) return;
      this.fail(error);
      return;
    }
    // The reader moved on while the page drew, or an error took the document off the screen meanwhile.
    if (seq !== this.drawSeq || errorScreen.isShown) return;
    this.renderTask = null;

    const sheet = document.createElement('div');
    sheet.className = 'sheet';
    sheet.style.width = canvas.style.width;
    sheet.style.height = canvas.style.height;
    sheet.append(canvas);
    this.shownScale = scale;

    const pageChanged = document.body.dataset.page !== String(pageNumber);
    ui.page.replaceChildren(sheet);
    if (pageChanged) {
      ui.stage.scrollTo({ top: 0, left: 0 });
      // Said once per page turn (not at a zoom or resize, which redraw the same page).
      ui.pageStatus.textContent = `Page ${pageNumber} of ${this.count}`;
    }
    document.body.dataset.page = String(pageNumber);
    if (document.body.dataset.state !== 'ready') {
      document.body.dataset.state = 'ready';
      this.tracker = this.startTracking?.(pageNumber) ?? null;
    } else {
      this.tracker?.showPage(pageNumber);
    }
    // Then, over the picture shown, the page's text (transparent but selectable, so it can be copied) and its links;
    // the page does not wait for them, and either failing leaves it readable as a picture.
    const [text, links] = await Promise.all([textLayer(page, viewport), this.linkLayer(page, viewport)]);
    if (seq === this.drawSeq) {
      if (text) sheet.append(text);
      if (links) sheet.append(links);
      sheet.dataset.layers = 'ready';
      if (text) this.onTextLayer?.(pageNumber, text);
    }
    page.cleanup();
    // Ask for the next page's data now, by Range requests, so "next" draws without waiting on the network.
    if (pageNumber < this.count) this.pdf.getPage(pageNumber + 1).catch(() => undefined);
  }

  /**
   * The page's link annotations as links over the picture: a web or mail address opens in a new tab (pdf.js has
   * already refused addresses that are not http, https, ftp, mailto or tel, and only the first three kinds and
   * mailto are kept); a link to another page of the document turns to that page here.
   */
  private async linkLayer(page: PDFPageProxy, viewport: PageViewport): Promise<HTMLElement | null> {
    let annotations: LinkAnnotation[];
    try {
      annotations = (await page.getAnnotations({ intent: 'display' })) as LinkAnnotation[];
    } catch {
      return null;
    }
    const layer = document.createElement('div');
    layer.className = 'linkLayer';
    for (const a of annotations) {
      if (a.subtype !== 'Link' || !Array.isArray(a.rect)) continue;
      const [x1, y1, x2, y2] = viewport.convertToViewportRectangle(a.rect);
      const link = document.createElement('a');
      link.style.left = `${Math.min(x1, x2)}px`;
      link.style.top = `${Math.min(y1, y2)}px`;
      link.style.width = `${Math.abs(x2 - x1)}px`;
      link.style.height = `${Math.abs(y2 - y1)}px`;
      if (typeof a.url === 'string' && /^(https?|mailto):/i.test(a.url)) {
        const url = a.url;
        const onPage = this.pageNumber;
        link.href = url;
        link.target = '_blank';
        link.rel = 'noopener noreferrer nofollow';
        link.title = url;
        // The sender sees which links a reader followed: a beacon, so the report survives the tab switching away.
        link.addEventListener('click', () => this.reportLink(url, onPage));
      } else if (a.dest) {
        const dest = a.dest;
        link.href = '#';
        link.dataset.dest = 'page';
        link.addEventListener('click', (event) => {
          event.preventDefault();
          void this.pageOf(dest).then((target) => {
            if (target !== null) this.go(target);
          });
        });
      } else {
        continue;
      }
      layer.append(link);
    }
    return layer.childElementCount > 0 ? layer : null;
  }

  private reportLink(url: string, page: number): void {
    if (!this.linksUrl) return;
    const body = new Blob([JSON.stringify({ url, page })], { type: 'application/json' });
    if (!navigator.sendBeacon?.(this.linksUrl, body)) {
      void fetch(this.linksUrl, { method: 'POST', body, keepalive: true, headers: { 'Content-Type': 'application/json' } }).catch(() => undefined);
    }
  }

  /** The page number a destination (named, or explicit: a page reference or index first) points to; null if none. */
  private async pageOf(dest: string | unknown[]): Promise<number | null> {
    try {
      const explicit = typeof dest === 'string' ? await this.pdf.getDestination(dest) : dest;
      const target = explicit?.[0];
      if (typeof target === 'number') return target + 1;
      if (target && typeof target === 'object') return (await this.pdf.getPageIndex(target as { num: number; gen: number })) + 1;
    } catch {
      // A destination that names nothing: the link does nothing.
    }
    return null;
  }

  /**
   * "Fit": on a phone the page's width fills the screen (the reader scrolls down a page, as on any phone); on a wider
   * screen the whole page fits, so a portrait page is read without scrolling, as in a desktop PDF reader.
   */
  private fitScale(pageWidth: number, pageHeight: number): number {
    const padding = 24; // .page padding on both sides
    const available = Math.max(ui.stage.clientWidth - padding, 100);
    let scale = available / pageWidth;
    if (ui.stage.clientWidth >= WIDE_SCREEN) {
      const tall = Math.max(ui.stage.clientHeight - padding, 100);
      scale = Math.min(scale, tall / pageHeight);
    }
    return Math.min(MAX_SCALE, Math.max(0.1, scale));
  }

  private syncControls(): void {
    const focused = document.activeElement;
    ui.pageNumber.value = String(this.pageNumber);
    ui.prev.disabled = this.pageNumber <= 1;
    ui.next.disabled = this.pageNumber >= this.count;
    ui.zoomOut.disabled = this.zoom !== 'fit' && this.zoom <= MIN_SCALE;
    ui.zoomIn.disabled = this.zoom !== 'fit' && this.zoom >= MAX_SCALE;
    ui.fit.setAttribute('aria-pressed', String(this.zoom === 'fit'));
    // A button disabled under the focus (Next on reaching the last page) drops it to the page's body, and a keyboard
    // reader loses their place: it goes to the button that still works the other way.
    for (const [button, other] of [[ui.next, ui.prev], [ui.prev, ui.next], [ui.zoomIn, ui.zoomOut], [ui.zoomOut, ui.zoomIn]] as const) {
      if (focused === button && button.disabled && !other.disabled) other.focus();
    }
  }

  private fail(error: unknown): void {
    showError(failureOf(error));
  }

  private wireControls(): void {
    ui.prev.addEventListener('click', () => this.go(this.pageNumber - 1));
    ui.next.addEventListener('click', () => this.go(this.pageNumber + 1));
    ui.zoomIn.addEventListener('click', () => this.setZoom(this.shownScale * ZOOM_STEP));
    ui.zoomOut.addEventListener('click', () => this.setZoom(this.shownScale / ZOOM_STEP));
    ui.fit.addEventListener('click', () => this.setZoom('fit'));

    const jump = (): void => {
      const typed = Number.parseInt(ui.pageNumber.value, 10);
      if (Number.isNaN(typed)) this.syncControls();
      else this.go(typed);
    };
    ui.pageNumber.addEventListener('change', jump);
    ui.pageNumber.addEventListener('keydown', (event) => {
      if (event.key === 'Enter') {
        jump();
        ui.pageNumber.blur();
      }
    });
    ui.pageNumber.addEventListener('focus', () => ui.pageNumber.select());

    document.addEventListener('keydown', (event) => {
      if (event.altKey || event.ctrlKey || event.metaKey || event.defaultPrevented) return;
      if (event.target instanceof HTMLInputElement) return; // typing a page number
      const step: Record<string, () => number> = {
        ArrowLeft: () => this.pageNumber - 1,
        ArrowRight: () => this.pageNumber + 1,
        PageUp: () => this.pageNumber - 1,
        PageDown: () => this.pageNumber + 1,
        Home: () => 1,
        End: () => this.count,
      };
      // A page larger than the screen (zoomed in) scrolls with the arrows, wherever the focus is, as a swipe pans it:
      // left and right turn the page only at its edge, so a keyboard reader can reach all of a zoomed page.
      const stage = ui.stage;
      const scroll: Record<string, () => [number, number] | null> = {
        ArrowLeft: () => (stage.scrollLeft > 1 ? [-ARROW_SCROLL_PX, 0] : null),
        ArrowRight: () => (stage.scrollLeft + stage.clientWidth < stage.scrollWidth - 1 ? [ARROW_SCROLL_PX, 0] : null),
        ArrowUp: () => [0, -ARROW_SCROLL_PX],
        ArrowDown: () => [0, ARROW_SCROLL_PX],
      };
      const by = scroll[event.key]?.();
      if (by) {
        event.preventDefault();
        stage.scrollBy({ left: by[0], top: by[1] });
        return;
      }
      const target = step[event.key];
      if (!target) return;
      event.preventDefault();
      this.go(target());
    });

    this.wireSwipe();

    // Refit when the width changes (rotation, window resize); mobile address bars change only the height.
    let resizeFrame = 0;
    new ResizeObserver(() => {
      cancelAnimationFrame(resizeFrame);
      resizeFrame = requestAnimationFrame(() => {
        const width = ui.stage.clientWidth;
        // On a wide screen the whole page fits, so a change of height refits too; on a phone only the width counts.
        const height = width >= WIDE_SCREEN ? ui.stage.clientHeight : 0;
        if (width === this.lastStageWidth && height === this.lastStageHeight) return;
        this.lastStageWidth = width;
        this.lastStageHeight = height;
        if (this.zoom === 'fit') void this.draw(this.pageNumber);
      });
    }).observe(ui.stage);
  }

  /**
   * A horizontal swipe turns the page, unless the reader is panning: a zoomed-in page scrolls sideways until its
   * edge, and a pinch-zoomed browser viewport pans as usual.
   */
  private wireSwipe(): void {
    let start: { x: number; y: number; time: number; atLeft: boolean; atRight: boolean } | null = null;
    ui.stage.addEventListener(
      'touchstart',
      (event) => {
        const touch = event.touches[0];
        if (event.touches.length !== 1 || !touch || (window.visualViewport?.scale ?? 1) > 1.01) {
          start = null;
          return;
        }
        const stage = ui.stage;
        start = {
          x: touch.clientX,
          y: touch.clientY,
          time: event.timeStamp,
          atLeft: stage.scrollLeft <= 0,
          atRight: stage.scrollLeft + stage.clientWidth >= stage.scrollWidth - 1,
        };
      },
      { passive: true },
    );
    ui.stage.addEventListener('touchmove', (event) => {
      if (event.touches.length > 1) start = null; // a pinch, not a swipe
    }, { passive: true });
    ui.stage.addEventListener(
      'touchend',
      (event) => {
        const touch = event.changedTouches[0];
        if (!start || !touch) return;
        const dx = touch.clientX - start.x;
        const dy = touch.clientY - start.y;
        const quick = event.timeStamp - start.time <= SWIPE_MAX_MS;
        const horizontal = Math.abs(dx) >= SWIPE_MIN_PX && Math.abs(dx) > 1.5 * Math.abs(dy);
        if (quick && horizontal) {
          if (dx < 0 && start.atRight) this.go(this.pageNumber + 1);
          else if (dx > 0 && start.atLeft) this.go(this.pageNumber - 1);
        }
        start = null;
      },
      { passive: true },
    );
  }
}

function failureOf(error: unknown): Failure {
  if (error instanceof ViewerError) return error.failure;
  if (error instanceof RangeFetchError) {
    if (error.status === 404) return 'unknown';
    if (error.status === 410) return goneFailure(error.reason);
    if (error.status >= 500) return 'server';
    return 'network';
  }
  if (error instanceof ResponseException) {
    const status = (error as { status?: unknown }).status;
    if (status === 404) return 'unknown';
    if (status === 410) return 'removed';
    if (typeof status === 'number' && status >= 500) return 'server';
    return 'network';
  }
  if (error instanceof InvalidPDFException) return 'unreadable';
  return 'network';
}

function showVisit(visit: Visit): void {
  document.title = visit.name;
  ui.title.textContent = visit.name;
  ui.title.title = visit.name;
  ui.pageCount.textContent = String(visit.pageCount);
  ui.previewBanner.hidden = !visit.preview;
  if (visit.allowDownload && visit.downloadUrl) {
    // A plain link with the download attribute: the browser saves the file without leaving (or unloading) the
    // viewer, and the server counts the download against this visit.
    const url = new URL(visit.downloadUrl, location.origin);
    if (visit.visitId) url.searchParams.set('visit', visit.visitId);
    ui.download.href = url.pathname + url.search;
    ui.download.download = visit.name;
    ui.download.hidden = false;
  } else {
    ui.download.removeAttribute('href');
    ui.download.hidden = true;
  }
}

async function main(): Promise<void> {
  ui.retry.addEventListener('click', () => location.reload());
  const token = readToken();
  if (!token) {
    showError('unknown');
    return;
  }
  // The visit and the document's first bytes load side by side (the file's address follows from the token), while
  // the worker downloads: the first page waits for no round trip it does not need.
  const base = import.meta.env.BASE_URL; // "/viewer/": the resources copied beside the bundle at build time
  const visiting = openVisit(token);
  const opening = openRanges(httpRanges(`/d/${token}/file`), CHUNK_SIZE);
  opening.catch(() => undefined); // awaited below, after the visit, whose answer explains a refusal better
  try {
    const visit = await visiting;
    showVisit(visit);
    const start = await opening;
    // A range that cannot be fetched (after retries) ends in the network error rather than a page that never draws.
    let failLoad: (error: unknown) => void = () => undefined;
    const loadFailed = new Promise<never>((_, reject) => {
      failLoad = reject;
    });
    loadFailed.catch(() => undefined);
    // Once a page is shown, a range that fails (the next page's) replaces it with the error, and its reading time stops.
    const onRangeFailure = (error: unknown): void => {
      failLoad(error);
      if (document.body.dataset.state === 'ready') showError(failureOf(error));
    };
    const loading = getDocument({
      ...(start.kind === 'whole' ? { data: start.data } : { range: new PageRanges(start.source, start.initial, onRangeFailure) }),
      // Fetch only the byte ranges the shown page needs, so page 1 draws before a large file has fully arrived.
      disableAutoFetch: true,
      disableStream: true,
      rangeChunkSize: CHUNK_SIZE,
      // The CSP forbids eval, and a recipient's viewer must never run the PDF's own scripts or XFA forms.
      isEvalSupported: false,
      enableXfa: false,
      cMapUrl: `${base}pdfjs/cmaps/`,
      cMapPacked: true,
      standardFontDataUrl: `${base}pdfjs/standard_fonts/`,
      wasmUrl: `${base}pdfjs/wasm/`,
      iccUrl: `${base}pdfjs/iccs/`,
    });
    const pdf = await Promise.race([loading.promise, loadFailed]);

    ui.tools.hidden = false;
    ui.nav.hidden = false;
    const visitId = visit.visitId;
    const startTracking =
      visit.preview || !visitId
        ? null
        : (firstPage: number): DwellTracker => {
            const tracker = new DwellTracker({
              beatsUrl: `/d/${token}/visits/${encodeURIComponent(visitId)}/beats`,
              firstPage,
              clock: browserClock,
              timers: browserTimers,
              transport: browserTransport(),
              visible: document.visibilityState === 'visible',
              // A heartbeat found the link turned off or expired (or the document removed): the document leaves the
              // screen with the same message a 410 anywhere else gives.
              onGone: (reason) => showError(goneFailure(reason)),
            });
            wireTrackerToPage(tracker, document, window);
            errorScreen.track(tracker);
            return tracker;
          };
    const view = new PageView(pdf, startTracking, visit.preview || !visitId ? null : `/d/${token}/visits/${encodeURIComponent(visitId)}/links`);
    new Finder(pdf, view).wire();
    view.start();
  } catch (error) {
    showError(failureOf(error));
  }
}

/** The pieces of a drawn text layer, in the order pdf.js laid them out: one per span, a line end per br. */
function layerPieces(layer: HTMLElement): { pieces: Piece[]; spans: HTMLElement[] } {
  const pieces: Piece[] = [];
  const spans: HTMLElement[] = [];
  for (const node of layer.querySelectorAll<HTMLElement>('span:not(.markedContent), br')) {
    if (node.tagName === 'BR') {
      const last = pieces.at(-1);
      if (last) last.eol = true;
      continue;
    }
    pieces.push({ text: node.textContent ?? '' });
    spans.push(node);
  }
  return { pieces, spans };
}

/** Takes the marks of an earlier search out of a text layer, leaving its text as pdf.js drew it. */
function unmark(layer: HTMLElement): void {
  for (const mark of layer.querySelectorAll('mark.match')) {
    const parent = mark.parentNode;
    mark.replaceWith(document.createTextNode(mark.textContent ?? ''));
    parent?.normalize();
  }
}

/**
 * Marks [start, end) of a span's text. Matches are marked from the last, so the span's first text node still holds
 * everything before the marks already made.
 */
function markSpan(span: HTMLElement, start: number, end: number, current: boolean): HTMLElement | null {
  const text = span.firstChild;
  if (!(text instanceof Text) || end > text.length) return null;
  const middle = start > 0 ? text.splitText(start) : text;
  middle.splitText(end - start);
  const mark = document.createElement('mark');
  mark.className = current ? 'match current' : 'match';
  middle.replaceWith(mark);
  mark.append(middle);
  return mark;
}

/**
 * "Find in document": every page's text is read once (pdf.js fetches the ranges it needs), the matches are counted
 * over the whole document, and each one in turn is shown on its page with the others of that page marked. A page
 * reached by a search is a page read like any other.
 */
class Finder {
  private texts: Promise<PageText[]> | null = null;
  private query = '';
  private matches: Match[] = [];
  private current: number | null = null;
  private searchSeq = 0;
  private typing = 0;
  private scrollPending = false;

  constructor(
    private readonly pdf: PDFDocumentProxy,
    private readonly view: PageView,
  ) {}

  wire(): void {
    this.view.onTextLayer = (page, layer) => this.mark(page, layer);
    ui.findOpen.addEventListener('click', () => (ui.find.hidden ? this.open() : this.close()));
    ui.findClose.addEventListener('click', () => this.close());
    ui.find.addEventListener('submit', (event) => {
      event.preventDefault();
      void this.step(1);
    });
    ui.findPrev.addEventListener('click', () => void this.step(-1));
    ui.find.addEventListener('keydown', (event) => {
      if (event.key === 'Escape') {
        event.preventDefault();
        this.close();
      }
    });
    ui.findText.addEventListener('keydown', (event) => {
      if (event.key === 'Enter' && event.shiftKey) {
        event.preventDefault();
        void this.step(-1);
      }
    });
    ui.findText.addEventListener('input', () => {
      clearTimeout(this.typing);
      this.typing = window.setTimeout(() => void this.search(), 250);
    });
    document.addEventListener('keydown', (event) => {
      if ((event.ctrlKey || event.metaKey) && !event.altKey && !event.shiftKey && event.key.toLowerCase() === 'f'
          && document.body.dataset.state === 'ready') {
        event.preventDefault();
        this.open();
      }
    });
  }

  private open(): void {
    ui.find.hidden = false;
    ui.findOpen.setAttribute('aria-expanded', 'true');
    ui.findText.focus();
    ui.findText.select();
  }

  private close(): void {
    ui.find.hidden = true;
    ui.findOpen.setAttribute('aria-expanded', 'false');
    ui.findText.value = '';
    this.reset('');
    ui.findOpen.focus();
  }

  private reset(query: string): void {
    // A search still reading the pages' text, or about to start, is of no use any more.
    this.searchSeq++;
    clearTimeout(this.typing);
    this.query = query;
    this.matches = [];
    this.current = null;
    ui.findStatus.textContent = '';
    delete document.body.dataset.find;
    const layer = this.view.textLayerOf(this.view.page);
    if (layer) unmark(layer);
  }

  /**
   * Every page's text in the compared form, read once, a few pages at a time so that the page being drawn is not
   * queued behind the whole document. Only the text is kept: marking works from the drawn text layer.
   */
  private pageTexts(): Promise<PageText[]> {
    this.texts ??= (async () => {
      const texts: PageText[] = [];
      for (let first = 1; first <= this.pdf.numPages; first += TEXT_READS_AT_ONCE) {
        const numbers = Array.from({ length: Math.min(TEXT_READS_AT_ONCE, this.pdf.numPages - first + 1) }, (_, i) => first + i);
        texts.push(...(await Promise.all(numbers.map(async (n) => {
          const page = await this.pdf.getPage(n);
          const content = await page.getTextContent();
          const { text } = layout(content.items.flatMap((item) => ('str' in item ? [{ text: item.str, eol: item.hasEOL }] : [])));
          return { text, origin: [] };
        }))));
      }
      return texts;
    })();
    return this.texts;
  }

  /** Looks for what is typed; shows the first match from the page being read. */
  private async search(): Promise<void> {
    const query = ui.findText.value;
    if (normalizeQuery(query) === normalizeQuery(this.query) && this.matches.length > 0) return;
    this.reset(query);
    const seq = this.searchSeq;
    if (normalizeQuery(query).length === 0) return;
    ui.findStatus.textContent = 'Searching…';
    document.body.dataset.find = 'searching';
    let texts: PageText[];
    try {
      texts = await this.pageTexts();
    } catch {
      this.texts = null;
      if (seq === this.searchSeq) {
        ui.findStatus.textContent = 'Search failed';
        document.body.dataset.find = 'failed';
      }
      return;
    }
    if (seq !== this.searchSeq) return;
    this.matches = findAll(query, texts);
    if (this.matches.length === 0) {
      ui.findStatus.textContent = 'No matches';
      document.body.dataset.find = 'none';
      return;
    }
    this.show(nextMatch(this.matches, null, 1, this.view.page)!);
  }

  private async step(direction: 1 | -1): Promise<void> {
    if (normalizeQuery(ui.findText.value) !== normalizeQuery(this.query) || this.matches.length === 0) {
      await this.search();
      return;
    }
    this.show(nextMatch(this.matches, this.current, direction, this.view.page)!);
  }

  private show(index: number): void {
    this.current = index;
    this.scrollPending = true;
    const match = this.matches[index]!;
    ui.findStatus.textContent = `${index + 1} of ${this.matches.length}`;
    document.body.dataset.find = 'found';
    const layer = this.view.textLayerOf(match.page);
    if (layer) this.mark(match.page, layer);
    else this.view.go(match.page); // marked when its text layer is drawn
  }

  /** Marks this page's matches in its text layer, the current one apart, and brings the current one into view. */
  private mark(page: number, layer: HTMLElement): void {
    unmark(layer);
    if (this.current === null || this.matches.length === 0) return;
    const current = this.matches[this.current]!;
    const { pieces, spans } = layerPieces(layer);
    const drawn = layout(pieces);
    // The page's matches as drawn, in order; the current one is the one with the same rank on its page.
    const onPage = findAll(this.query, [drawn]);
    const rank = current.page === page ? this.matches.filter((m) => m.page === page).indexOf(current) : -1;
    // Marked from the last so that splitting a span's text leaves the earlier offsets in it as they were.
    let shown: HTMLElement | null = null;
    for (let i = onPage.length - 1; i >= 0; i--) {
      const ranges = [...pieceRanges(drawn, onPage[i]!)].reverse();
      for (const [piece, [start, end]] of ranges) {
        const mark = markSpan(spans[piece]!, start, end, i === rank);
        if (mark && i === rank) shown = mark;
      }
    }
    layer.dataset.marks = String(onPage.length);
    // Into view when a match is first shown, not at every redraw (zoom, a resize) of its page.
    if (shown && this.scrollPending) {
      this.scrollPending = false;
      shown.scrollIntoView({ block: 'center', inline: 'nearest' });
    }
  }
}

void main();
