using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// How text is laid out in Chromium, for the tests of outsiders' text beside the pages' own words: a U+202E
/// RIGHT-TO-LEFT OVERRIDE in a reply's From turns round what follows it on the screen while the DOM's text, and so
/// innerText, stays in order. Only the characters' boxes tell.
/// </summary>
static class BidiLayout
{
    /// <summary>The bidi controls that reorder text on the screen (embeddings, overrides, isolates, marks).</summary>
    public const string Controls = "\u202A\u202B\u202C\u202D\u202E\u2066\u2067\u2068\u2069\u200E\u200F\u061C";

    /// <summary>
    /// In each element <paramref name="selector"/> finds, the characters of the page's own words and of every text shown
    /// exactly (addresses, URLs, machines' texts: <c>bdi.exact</c>), in the order of the DOM, with any two on one line
    /// where the second shows left of the first: none when everything reads left to right as written. Text isolated as
    /// its author wrote it (a name, a subject: a <c>bdi</c> without <c>exact</c>) is left out, its direction its own.
    /// Fails when the selector finds nothing.
    /// </summary>
    public static async Task<string[]> OutOfOrderAsync(IPage page, string selector)
    {
        var found = await page.EvaluateAsync<string[]?>("""
            (selector) => {
              const roots = Array.from(document.querySelectorAll(selector));
              if (roots.length === 0) return null;
              return roots.flatMap((root) => {
                const chars = [];
                const walker = document.createTreeWalker(root, NodeFilter.SHOW_TEXT);
                for (let n = walker.nextNode(); n; n = walker.nextNode()) {
                  if (n.parentElement.closest("bdi:not(.exact)")) continue;
                  for (let i = 0; i < n.data.length; i++) {
                    if (/\s/.test(n.data[i])) continue;
                    const range = document.createRange();
                    range.setStart(n, i);
                    range.setEnd(n, i + 1);
                    const box = range.getBoundingClientRect();
                    if (box.width > 0) chars.push({ c: n.data[i], x: box.left, y: box.top, text: n.data });
                  }
                }
                const wrong = [];
                for (let i = 1; i < chars.length; i++) {
                  const a = chars[i - 1], b = chars[i];
                  if (Math.abs(a.y - b.y) < 3 && b.x < a.x - 0.5) wrong.push(`${selector}: "${b.c}" shows left of "${a.c}" in "${b.text}" (${root.textContent.trim()})`);
                }
                return wrong;
              });
            }
            """, selector);
        Assert.True(found is not null, $"nothing on the page matches {selector}");
        return found;
    }

    /// <summary>Asserts that <see cref="OutOfOrderAsync"/> finds nothing, naming what it found.</summary>
    public static async Task InOrderAsync(IPage page, string selector)
    {
        var wrong = await OutOfOrderAsync(page, selector);
        Assert.True(wrong.Length == 0, string.Join("\n", wrong.Take(10)));
    }
}
