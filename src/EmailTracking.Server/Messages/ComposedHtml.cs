using System.Net;
using System.Text;
using Ganss.Xss;

namespace EmailTracking.Server.Messages;

/// <summary>
/// The body written on the Compose page, as it goes out: what the page's editor makes (paragraphs, bold, italic,
/// links, lists) and nothing else. A browser's editor takes in whatever is pasted into it (a word processor's styles and
/// classes, images from anywhere, a script's markup); HtmlSanitizer keeps only that list, so the recipient gets the
/// mail the sender saw, and the page can show a refused draft again in its editor without running anything in it.
/// </summary>
public static class ComposedHtml
{
    static readonly HtmlSanitizer Sanitizer = Build();

    static readonly HashSet<string> Dropped = new(StringComparer.OrdinalIgnoreCase)
    {
        "script", "style", "template", "noscript", "iframe", "object", "embed", "svg", "math", "head", "title", "textarea", "select", "button",
    };

    static HtmlSanitizer Build()
    {
        var s = new HtmlSanitizer(new HtmlSanitizerOptions
        {
            AllowedTags = new HashSet<string>(StringComparer.OrdinalIgnoreCase)
            {
                "p", "div", "br", "b", "strong", "i", "em", "u", "a", "ul", "ol", "li", "blockquote",
            },
            AllowedAttributes = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "href" },
            AllowedSchemes = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "http", "https", "mailto" },
            UriAttributes = new HashSet<string>(StringComparer.OrdinalIgnoreCase) { "href" },
            AllowedCssProperties = new HashSet<string>(StringComparer.OrdinalIgnoreCase),
            AllowedAtRules = new HashSet<AngleSharp.Css.Dom.CssRuleType>(),
        });
        // A tag not on the list (a pasted <span>, <font> or <h2>) keeps its text: only the markup goes. What is not
        // text to read (a script, a style sheet, an embedded frame) goes whole.
        s.KeepChildNodes = true;
        s.RemovingTag += (_, e) =>
        {
            if (Dropped.Contains(e.Tag.LocalName)) e.Tag.InnerHtml = "";
        };
        return s;
    }

    /// <summary>The editor's HTML with only the editor's own formatting left.</summary>
    public static string Clean(string html) => Sanitizer.Sanitize(html).Trim();

    /// <summary>
    /// The attribute of the element the Compose page's editor puts where its caret was (holding the selection, if any)
    /// when "Insert link" is pressed, as the button takes the focus and the form goes to the server.
    /// </summary>
    public const string InsertMarker = "data-insert-link";

    /// <summary>
    /// The editor's HTML cleaned, with <paramref name="inline"/> (HTML of ours, put in after cleaning) where the editor's
    /// marker was, the selection it held replaced; null when there is no marker (the editor was never focused).
    /// </summary>
    public static string? CleanInserting(string html, string inline)
    {
        var document = new AngleSharp.Html.Parser.HtmlParser().ParseDocument("");
        var body = document.Body!;
        body.InnerHtml = html;
        var markers = body.QuerySelectorAll($"[{InsertMarker}]").ToList();
        if (markers.Count == 0) return null;
        // A text no one types stands in for the marker through the cleaning, which keeps text where it is.
        var stand = $"insert{Guid.NewGuid():N}";
        // The caret inside a link: the new link goes after it, not in it.
        if (markers[0].ParentElement?.Closest("a") is { } link) link.After(markers[0]);
        markers[0].Replace(document.CreateTextNode(stand));
        var clean = Clean(body.InnerHtml);
        var at = clean.IndexOf(stand, StringComparison.Ordinal);
        return at < 0 ? null : clean[..at] + inline + clean[(at + stand.Length)..];
    }

    /// <summary>Whether the body says anything: text, or at least a link.</summary>
    public static bool HasContent(string html) =>
        HtmlText.ToPlainText(html).Trim().Length > 0;

    /// <summary>A web address in plain text, up to a space or the punctuation that ends a sentence after it.</summary>
    static readonly System.Text.RegularExpressions.Regex WebAddress = new(@"https?://[^\s<>""]+?(?=[.,;:!?)\]]*(\s|$))",
        System.Text.RegularExpressions.RegexOptions.IgnoreCase);

    /// <summary>
    /// The body typed without the editor (a browser without script): paragraphs at blank lines, line breaks kept, the
    /// text escaped, and web addresses made links, so that they are tracked as the editor's links are.
    /// </summary>
    public static string FromPlainText(string text)
    {
        var sb = new StringBuilder();
        var paragraphs = text.Replace("\r\n", "\n", StringComparison.Ordinal).Replace('\r', '\n')
            .Split("\n\n", StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        foreach (var p in paragraphs)
        {
            sb.Append("<p>").Append(string.Join("<br>", p.Split('\n').Select(Line))).Append("</p>");
        }
        return sb.ToString();

        static string Line(string line)
        {
            var html = new StringBuilder();
            var at = 0;
            foreach (System.Text.RegularExpressions.Match m in WebAddress.Matches(line))
            {
                html.Append(WebUtility.HtmlEncode(line[at..m.Index]));
                var url = WebUtility.HtmlEncode(m.Value);
                html.Append("<a href=\"").Append(url).Append("\">").Append(url).Append("</a>");
                at = m.Index + m.Length;
            }
            return html.Append(WebUtility.HtmlEncode(line[at..])).ToString();
        }
    }
}
