using AngleSharp;
using AngleSharp.Html.Dom;
using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;

namespace EmailTracking.Server.Messages;

/// <summary>
/// Turns the author's HTML into the tracked body of one copy: links rewritten to click URLs, a hidden honeypot link,
/// the pixel at the end. Parsing and rewriting go through AngleSharp's HTML5 parser, never through regular expressions.
/// </summary>
public static class TrackedHtml
{
    /// <summary>Authors mark a link as not tracked with this attribute; it is removed from the output.</summary>
    public const string NoTrackAttribute = "data-et-notrack";

    static readonly HtmlParser Parser = new(new HtmlParserOptions { IsKeepingSourceReferences = false });

    public sealed record Result(string Html, List<TrackedLink> Links);

    /// <param name="clickUrl">Builds the click URL for a token.</param>
    /// <param name="pixelUrl">The copy's pixel URL.</param>
    public static Result Build(string html, Guid copyId, Func<string, string> clickUrl, string pixelUrl)
    {
        var isDocument = LooksLikeDocument(html);
        var doc = Parser.ParseDocument(html);
        var body = doc.Body!;
        var links = new List<TrackedLink>();
        var ordinal = 0;

        foreach (var a in body.QuerySelectorAll("a[href]").OfType<IHtmlAnchorElement>().ToList())
        {
            if (a.HasAttribute(NoTrackAttribute))
            {
                a.RemoveAttribute(NoTrackAttribute);
                continue;
            }
            var href = a.GetAttribute("href")!.Trim();
            if (!IsTrackable(href)) continue;
            var token = Tokens.NewTrackingToken();
            links.Add(new TrackedLink { CopyId = copyId, Token = token, Url = href, Ordinal = ordinal++ });
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

        var output = isDocument ? doc.ToHtml() : body.InnerHtml;
        return new Result(output, links);
    }

    /// <summary>Only absolute web links are tracked: mailto:, tel:, in-page anchors and the rest stay as written.</summary>
    public static bool IsTrackable(string href) =>
        Uri.TryCreate(href, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttp || uri.Scheme == Uri.UriSchemeHttps);

    /// <summary>A whole document (with html/head/body) is returned as one; a fragment is returned as a fragment.</summary>
    static bool LooksLikeDocument(string html) =>
        html.Contains("<html", StringComparison.OrdinalIgnoreCase) ||
        html.Contains("<body", StringComparison.OrdinalIgnoreCase) ||
        html.Contains("<!doctype", StringComparison.OrdinalIgnoreCase);
}
