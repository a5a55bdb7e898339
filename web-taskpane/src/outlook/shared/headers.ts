import { TokenHeader } from './contract';
import { looksLikeToken } from './tokens';

/**
 * Parses a MIME header block (what getAllInternetHeadersAsync answers) into lower-cased names and their values in
 * order. Folded lines (starting with a space or tab) continue the previous header (RFC 5322 2.2.3); the block ends
 * at the first empty line.
 */
export function parseHeaders(block: string): Map<string, string[]> {
  const headers = new Map<string, string[]>();
  let name: string | null = null;
  let value = '';
  const flush = () => {
    if (name === null) return;
    const list = headers.get(name) ?? [];
    list.push(value.trim());
    headers.set(name, list);
  };
  for (const line of block.split(/\r\n|\r|\n/)) {
    if (line === '') break;
    if ((line.startsWith(' ') || line.startsWith('\t')) && name !== null) {
      value += ' ' + line.trim();
      continue;
    }
    const colon = line.indexOf(':');
    if (colon <= 0) continue; // not a header line: skipped rather than glued to the previous one
    flush();
    name = line.slice(0, colon).trim().toLowerCase();
    value = line.slice(colon + 1);
  }
  flush();
  return headers;
}

/**
 * The tracking token stamped on the message at send time, or null. When a forward or a gateway has added the header
 * more than once, the first well-formed value wins (headers are prepended as a message travels, but ours is set by
 * the sender's own client once).
 */
export function trackingTokenFromHeaders(block: string): string | null {
  for (const v of parseHeaders(block).get(TokenHeader) ?? []) {
    if (looksLikeToken(v)) return v;
  }
  return null;
}
