/**
 * Text from outside the team (addresses, names, subjects, documents' names) among the pane's own words, as the web app
 * shows it (Display.Isolated and Display.Exact on the server, Bidi in wwwroot/js/app.js): in a <bdi> (dom.ts), so
 * that its direction (an Arabic name, or a U+202E RIGHT-TO-LEFT OVERRIDE put there to disguise) cannot turn round the
 * words beside it ("Answered by", "(2 pages)"). These say what goes in the <bdi>.
 */

/** Paragraph separators other than a line feed or carriage return (which HTML folds into spaces). */
const breaks = /[\u001C-\u001E\u0085\u2029]/u;

/** Invisible formatting characters (Unicode category Cf: bidi controls, zero-width ones, soft hyphens, tags) and paragraph separators. */
const hidden = /[\p{Cf}\u001C-\u001E\u0085\u2029]/gu;

/**
 * A name or a subject as written, except what would let an override out of its <bdi> in Chromium: a closing U+2069
 * the text did not open, and a paragraph separator, each shown as U+FFFD.
 */
export function contained(text: string): string {
  let open = 0;
  let out = '';
  for (const ch of text) {
    if (ch === '\u2066' || ch === '\u2067' || ch === '\u2068') open++;
    else if (ch === '\u2069' && open > 0) open--;
    else if (ch === '\u2069' || breaks.test(ch)) {
      out += '\uFFFD';
      continue;
    }
    out += ch;
  }
  return out;
}

/**
 * An address or a URL exactly as it is: every invisible formatting character shown as U+FFFD, so that an address can
 * never show as another ("<U+202E>moc.knab-terces@target.test" as "tset.tegrat@secret-bank.com").
 */
export function plain(text: string): string {
  return text.replace(hidden, '\uFFFD');
}
