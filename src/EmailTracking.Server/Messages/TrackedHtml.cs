using AngleSharp;
using AngleSharp.Dom;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;

namespace EmailTracking.Server.Messages;

/// <summary>
/// Turns the author's HTML into the tracked body of each copy: links rewritten to click URLs, a hidden honeypot link,
/// the pixel at the end. Parsing and rewriting go through AngleSharp's HTML5 parser, never through regular expressions.
/// The body is parsed once per message and cloned per copy.
/// </summary>
public sealed class TrackedHtml
{
    /// <summary>Authors mark a link as not tracked with this attribute; the link stays, the attribute is removed.</summary>
    public const string NoTrackAttribute = "data-et-notrack";

    /// <summary>
    /// Most tags in one body. Parsing deeply nested markup costs time that grows with the square of the depth, so a
    /// limit on tags bounds what one registration can cost; real emails stay far below it.
    /// </summary>
    public const int MaxTags = 20_000;

    /// <summary>Most tracked links in one body.</summary>
    public const int MaxLinks = 500;

    static readonly HtmlParser Parser = new(new HtmlParserOptions { IsKeepingSourceReferences = false });

    readonly IHtmlDocument source;
    readonly bool isDocument;

    TrackedHtml(IHtmlDocument source, bool isDocument)
    {
        this.source = source;
        this.isDocument = isDocument;
    }

    public sealed record Result(string Html, List<TrackedLink> Links);

    /// <summary>Parses the body, or says in words why it cannot be tracked.</summary>
    public static TrackedHtml? TryParse(string html, out string? error)
    {
        // Counting '<' over-counts (text may contain it), which only makes the limit safer.
        if (html.AsSpan().Count('<') > MaxTags)
        {
            error = $"The HTML body has more than {MaxTags} tags.";
            return null;
        }
        var doc = Parser.ParseDocument(html);
        var baseUri = BaseUri(doc);
        var links = LinkElements(doc.Body!).Count(a => !a.HasAttribute(NoTrackAttribute) && Target(a, baseUri) is not null);
        if (links > MaxLinks)
        {
            error = $"The HTML body has {links} links to track; at most {MaxLinks}.";
            return null;
        }
        error = null;
        return new TrackedHtml(doc, LooksLikeDocument(html)) { TrackedLinkCount = links };
    }

    /// <summary>How many of the body's links each copy tracks (the honeypot aside).</summary>
    public int TrackedLinkCount { get; private init; }

    /// <summary>Every link target in the body as written (for finding tracked document links before building).</summary>
    public IEnumerable<string> Hrefs() => LinkElements(source.Body!).Select(a => a.GetAttribute("href")!);

    /// <summary>
    /// The body's links: anchors, and the areas of image maps (a banner cut into clickable parts is a link a reader
    /// clicks like any other). Only HTML's own: an SVG drawing's links are left as they are.
    /// </summary>
    static List<IElement> LinkElements(IElement body) =>
        [.. body.QuerySelectorAll("a[href], area[href]").Where(e => e is IHtmlAnchorElement or IHtmlAreaElement)];

    /// <param name="clickUrl">Builds the click URL for a token.</param>
    /// <param name="pixelUrl">The copy's pixel URL.</param>
    /// <param name="documentLink">Gives a tracked document link its copy's own URL (null: not a document link).</param>
    public Result Build(Guid copyId, Func<string, string> clickUrl, string pixelUrl, Func<string, string?>? documentLink = null)
    {
        var doc = (IHtmlDocument)source.Clone(deep: true);
        var body = doc.Body!;
        var baseUri = BaseUri(doc);
        var links = new List<TrackedLink>();
        var ordinal = 0;

        foreach (var a in LinkElements(body))
        {
            if (a.HasAttribute(NoTrackAttribute))
            {
                a.RemoveAttribute(NoTrackAttribute);
                continue;
            }
            // A tracked document link is already tracked (by the viewer): it gets this copy's own link, not a click URL.
            if (documentLink?.Invoke(a.GetAttribute("href")!) is { } document)
            {
                a.SetAttribute("href", document);
                continue;
            }
            if (Target(a, baseUri) is not { } target) continue;
            var token = Tokens.NewTrackingToken();
            links.Add(new TrackedLink { CopyId = copyId, Token = token, Url = target, Ordinal = ordinal++ });
            a.SetAttribute("href", clickUrl(token));
        }

        // A link nobody can see or reach by keyboard: only a machine that follows every link clicks it.
        var honeypotToken = Tokens.NewTrackingToken();
        links.Add(new TrackedLink { CopyId = copyId, Token = honeypotToken, Url = "", Ordinal = -1, IsHoneypot = true });
        var trap = doc.CreateElement("a");
        trap.SetAttribute("href", clickUrl(honeypotToken));
        trap.SetAttribute("style", "display:none!important;visibility:hidden;mso-hide:all;font-size:0;line-height:0;max-height:0;overflow:hidden");
        trap.SetAttribute("aria-hidden", "true");
        trap.SetAttribute("tabindex", "-1");
        body.AppendChild(trap);

        var img = doc.CreateElement("img");
        img.SetAttribute("src", pixelUrl);
        img.SetAttribute("width", "1");
        img.SetAttribute("height", "1");
        img.SetAttribute("alt", "");
        img.SetAttribute("style", "display:block;width:1px;height:1px;border:0;margin:0;padding:0");
        body.AppendChild(img);

        // A fragment's leading <style>, <meta> or <title> is moved into <head> by the HTML5 parser; keep it.
        var output = isDocument ? doc.ToHtml() : doc.Head!.InnerHtml + body.InnerHtml;
        return new Result(output, links);
    }

    /// <summary>
    /// The body's <c>&lt;base href&gt;</c> when it is an absolute web address: mail clients that honour it (Outlook, Apple
    /// Mail, Thunderbird) send a reader who follows a relative link there, so such a link is a web link to track.
    /// </summary>
    static Uri? BaseUri(IHtmlDocument doc) =>
        doc.QuerySelector("base[href]")?.GetAttribute("href") is { } href && NormalizeTarget(href) is { } target ? new Uri(target) : null;

    /// <summary>
    /// Where a link leads, as tracked: its absolute http(s) address, a relative one resolved against the body's
    /// <see cref="BaseUri"/> (when it has one). Null for everything left as written: other schemes (mailto:, tel:…),
    /// in-page anchors (even with a base, a reader stays in the mail), and relative links without a base.
    /// </summary>
    static string? Target(IElement link, Uri? baseUri)
    {
        var href = link.GetAttribute("href")!;
        if (baseUri is null || HasScheme(href)) return NormalizeTarget(href);
        var relative = href.Trim();
        if (relative.Length == 0 || relative[0] == '#') return null;
        return Uri.TryCreate(baseUri, relative, out var resolved) ? NormalizeTarget(resolved.AbsoluteUri) : null;
    }

    /// <summary>Whether the URL starts with a scheme (RFC 3986: a letter, then letters, digits, +, - or ., then a colon).</summary>
    static bool HasScheme(string href)
    {
        var s = href.AsSpan().Trim();
        if (s.Length == 0 || !char.IsAsciiLetter(s[0])) return false;
        for (var i = 1; i < s.Length; i++)
        {
            var c = s[i];
            if (c == ':') return true;
            if (!(char.IsAsciiLetterOrDigit(c) || c is '+' or '-' or '.')) return false;
        }
        return false;
    }

    /// <summary>
    /// The target to store and redirect to, or null when the link is not tracked. Only absolute web links are tracked:
    /// mailto:, tel:, in-page anchors, relative links and the rest stay as written. The target is made ASCII (the host
    /// in punycode, the rest percent-encoded), because an HTTP Location header carries nothing else.
    /// </summary>
    public static string? NormalizeTarget(string href)
    {
        // As browsers do (WHATWG URL), tabs and newlines inside a URL are dropped before it is parsed.
        var cleaned = href.Trim().Replace("\t", "", StringComparison.Ordinal).Replace("\n", "", StringComparison.Ordinal).Replace("\r", "", StringComparison.Ordinal);
        if (!Uri.TryCreate(cleaned, UriKind.Absolute, out var uri)) return null;
        if (uri.Scheme != Uri.UriSchemeHttp && uri.Scheme != Uri.UriSchemeHttps) return null;
        var ascii = new UriBuilder(uri) { Host = uri.IdnHost }.Uri.AbsoluteUri;
        foreach (var c in ascii)
        {
            if (c <= ' ' || c >= 0x7f) return null;
        }
        return ascii;
    }

    /// <summary>A whole document (with html/head/body) is returned as one; a fragment is returned as a fragment.</summary>
    static bool LooksLikeDocument(string html) =>
        html.Contains("<html", StringComparison.OrdinalIgnoreCase) ||
        html.Contains("<body", StringComparison.OrdinalIgnoreCase) ||
        html.Contains("<!doctype", StringComparison.OrdinalIgnoreCase);
}
