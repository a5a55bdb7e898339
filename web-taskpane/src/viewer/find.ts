/**
 * Finding text in the document. A page's text is a run of pieces (pdf.js's text items, which the text layer draws as
 * one span each; a line end counts as a space). Both the query and the text are compared in one form: Unicode
 * compatibility decomposition without its combining marks (so a ligature "ﬁ" finds "fi", and "cafe" finds "café"
 * however its accent is stored), lower case, every run of white space one space. Each character of that form
 * remembers which piece and which character of it it came from, so a match found in it can be marked where it is drawn.
 */

/** One piece of a page's text: its characters, and whether a line ends after it. */
export interface Piece {
  text: string;
  eol?: boolean;
}

/** A page's text in the compared form, with where each of its characters came from. */
export interface PageText {
  text: string;
  /**
   * For each character of `text`: the piece it came from (-1 for a line end) and the UTF-16 units [start, end) of the
   * code point in that piece it was made from.
   */
  origin: Array<[piece: number, start: number, end: number]>;
}

/** A match on a page: its place in the page's compared text. */
export interface Match {
  page: number;
  start: number;
  end: number;
}

const SPACE = /\s/u;
const MARK = /\p{M}/gu;

/** The compared form of a query: empty when there is nothing to look for. */
export function normalizeQuery(query: string): string {
  return layout([{ text: query }]).text.trim();
}

/** A page's text in the compared form. */
export function layout(pieces: readonly Piece[]): PageText {
  let text = '';
  const origin: Array<[number, number, number]> = [];
  const push = (c: string, piece: number, start: number, end: number) => {
    if (c === ' ') {
      if (text.length === 0 || text.endsWith(' ')) return;
    }
    text += c;
    origin.push([piece, start, end]);
  };
  pieces.forEach((p, i) => {
    // By code point (a character outside the basic plane is two UTF-16 units), each remembered by its first unit.
    for (let j = 0; j < p.text.length; ) {
      const point = String.fromCodePoint(p.text.codePointAt(j)!);
      const folded = SPACE.test(point) ? ' ' : point.normalize('NFKD').replace(MARK, '').toLowerCase();
      for (const c of folded) push(SPACE.test(c) ? ' ' : c, i, j, j + point.length);
      j += point.length;
    }
    if (p.eol) push(' ', -1, 0, 0);
  });
  return { text, origin };
}

/** Every match of the query, page after page (pages[0] is page 1), none overlapping on a page. */
export function findAll(query: string, pages: readonly PageText[]): Match[] {
  const q = normalizeQuery(query);
  const matches: Match[] = [];
  if (q.length === 0) return matches;
  pages.forEach((page, i) => {
    for (let at = page.text.indexOf(q); at >= 0; at = page.text.indexOf(q, at + q.length)) {
      matches.push({ page: i + 1, start: at, end: at + q.length });
    }
  });
  return matches;
}

/**
 * The match to show next: from `current` one step in `direction`, around the ends. Without a current match, the first
 * one on or after `fromPage` (the page the reader is on), or before it going back.
 */
export function nextMatch(matches: readonly Match[], current: number | null, direction: 1 | -1, fromPage: number): number | null {
  if (matches.length === 0) return null;
  if (current !== null) return (current + direction + matches.length) % matches.length;
  if (direction === 1) {
    const i = matches.findIndex((m) => m.page >= fromPage);
    return i >= 0 ? i : 0;
  }
  for (let i = matches.length - 1; i >= 0; i--) if (matches[i]!.page <= fromPage) return i;
  return matches.length - 1;
}

/** Where to mark a match: per piece, the character ranges [start, end) it covers. */
export function pieceRanges(page: PageText, match: { start: number; end: number }): Map<number, [number, number]> {
  const ranges = new Map<number, [number, number]>();
  for (let k = match.start; k < match.end; k++) {
    const [piece, start, end] = page.origin[k]!;
    if (piece < 0) continue;
    const r = ranges.get(piece);
    if (r) r[1] = Math.max(r[1], end);
    else ranges.set(piece, [start, end]);
  }
  return ranges;
}
