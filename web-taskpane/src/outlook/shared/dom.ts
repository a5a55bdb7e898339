/** Small DOM helpers for the panes: text only (no HTML from the server or the mail goes into the page). */

import { contained, plain } from './bidi';
import type { Failure } from './failure';
import type { LinkPrompt } from './link';

export function byId<T extends HTMLElement = HTMLElement>(id: string): T {
  const el = document.getElementById(id);
  if (!el) throw new Error(`#${id} is missing from the page`);
  return el as T;
}

export function el<K extends keyof HTMLElementTagNameMap>(tag: K, text?: string, className?: string): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  if (text !== undefined) e.textContent = text;
  if (className) e.className = className;
  return e;
}

/** Text someone else chose (a name, a subject, a document's name) among the pane's words: in a <bdi> (bidi.ts). */
export function isolated(text: string): HTMLElement {
  return el('bdi', contained(text));
}

/** An address or a URL among the pane's words: in a <bdi>, every invisible formatting character shown (bidi.ts). */
export function exact(text: string): HTMLElement {
  return el('bdi', plain(text), 'exact');
}

/**
 * A person as formatAddress (office.ts) writes them, "\"Name\" <address>", or the address alone when Outlook has no other
 * name: the name isolated, the address exact, so that neither can disguise the other.
 */
export function person(d: Office.EmailAddressDetails): (HTMLElement | string)[] {
  const name = (d.displayName ?? '').trim();
  const address = (d.emailAddress ?? '').trim();
  if (!name || name.toLowerCase() === address.toLowerCase()) return [exact(address)];
  return ['"', isolated(name.replace(/["\\]/g, '')), '" <', exact(address), '>'];
}

export function setState(state: 'loading' | 'ready' | 'error', status = ''): void {
  document.body.dataset['state'] = state;
  byId('status').textContent = status;
}

/** The pane cannot go on: what went wrong and what to do, for the person; the server's own words for their admin. */
export function showFailure(f: Failure, consequence = ''): void {
  document.body.dataset['problem'] = f.problem;
  setState('error', [f.text, consequence].filter(Boolean).join(' '));
  const details = byId('status-details');
  details.hidden = !f.forAdmin;
  byId('status-admin').textContent = f.forAdmin;
}

/**
 * The link prompt (the #link section): the refusal in words, "Link this Microsoft account" when the server offers a
 * link page, and "Try again". The buttons' handlers are replaced at each show, so a click runs the latest ones.
 */
export function linkPrompt(consequence = ''): LinkPrompt {
  const section = byId('link');
  const openButton = byId<HTMLButtonElement>('link-open');
  const retryButton = byId<HTMLButtonElement>('link-retry');
  return {
    show(f, open, retry) {
      showFailure(f, consequence);
      document.body.dataset['link'] = f.linkUrl ? 'offered' : 'none';
      openButton.hidden = !f.linkUrl;
      openButton.onclick = open;
      retryButton.onclick = retry;
      section.hidden = false;
    },
    note(text) {
      byId('link-note').textContent = text;
    },
    hide() {
      section.hidden = true;
      document.body.dataset['link'] = 'linked';
      delete document.body.dataset['problem'];
      byId('status-details').hidden = true;
      setState('loading');
    },
  };
}

/** An error's message: Error objects, and the plain `{ code, message }` objects Office.auth.getAccessToken rejects with. */
export function errorText(e: unknown): string {
  if (e instanceof Error) return e.message;
  if (e && typeof e === 'object' && typeof (e as { message?: unknown }).message === 'string') {
    const { message, code } = e as { message: string; code?: unknown };
    return code === undefined ? message : `${message} (${String(code)})`;
  }
  return String(e);
}

/** A time as the reader's locale shows it; '—' for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}
