/** Small DOM helpers for the panes: text only (no HTML from the server or the mail goes into the page). */

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

export function setState(state: 'loading' | 'ready' | 'error', status = ''): void {
  document.body.dataset['state'] = state;
  byId('status').textContent = status;
}

export function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}

/** A time as the reader's locale shows it; '—' for none. */
export function when(iso: string | null | undefined): string {
  if (!iso) return '—';
  const d = new Date(iso);
  return Number.isNaN(d.getTime()) ? '—' : d.toLocaleString();
}
