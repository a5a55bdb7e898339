import type { RegisteredCopy } from './contract';

/** A tracking token as the server makes them: 18 random bytes in base64url, 24 characters. */
const tokenPattern = /^[A-Za-z0-9_-]{24}$/;

export function looksLikeToken(s: string): boolean {
  return tokenPattern.test(s);
}

/** The token in a pixel URL (`{base}/o/{token}.gif`), or null when the URL is not one. */
export function pixelToken(url: string): string | null {
  let path: string;
  try {
    path = new URL(url, 'http://base.invalid').pathname;
  } catch {
    return null;
  }
  const m = /\/o\/([^/]+)\.gif$/.exec(path);
  return m?.[1] !== undefined && looksLikeToken(m[1]) ? m[1] : null;
}

const pixelAddress = /https?:\/\/[^\s"'<>]+?\/o\/[A-Za-z0-9_-]{24}\.gif/g;

/**
 * The tracking pixels' addresses in an HTML body, in document order. They are picked out of the HTML as text: parsed
 * into a document, even an inert one, the body's inline styles would each be reported against the pane's
 * Content-Security-Policy.
 */
export function pixelAddresses(html: string): string[] {
  return Array.from(html.matchAll(pixelAddress), (m) => m[0]);
}

/**
 * The token of the last tracking pixel among a body's image addresses (in document order), or null. The pixel goes at
 * the very end of a tracked body, after any quoted earlier mail with pixels of its own: the last one is the email's.
 */
export function lastPixelToken(imageSources: readonly string[]): string | null {
  for (let i = imageSources.length - 1; i >= 0; i--) {
    const token = pixelToken(imageSources[i]!);
    if (token !== null) return token;
  }
  return null;
}

/**
 * The copy's token: the response's own `token` when the server sends one, else the one in its pixel URL (the
 * register answer of today has no token field; the pixel URL is built from the copy's token and nothing else).
 */
export function copyToken(copy: RegisteredCopy): string | null {
  if (copy.token && looksLikeToken(copy.token)) return copy.token;
  return pixelToken(copy.pixelUrl);
}
