using System.Text;
using AngleSharp.Dom;
using AngleSharp.Html.Parser;

namespace EmailTracking.Server.Messages;

/// <summary>The plain-text alternative of an HTML body: paragraphs and line breaks kept, links as "text (url)", hidden parts left out.</summary>
public static class HtmlText
{
    static readonly HashSet<string> Blocks = new(StringComparer.OrdinalIgnoreCase)
    {
        "p", "div", "section", "article", "header", "footer", "blockquote", "pre", "table", "tr", "ul", "ol", "li",
        "h1", "h2", "h3", "h4", "h5", "h6", "hr",
    };

    static readonly HashSet<string> Skipped = new(StringComparer.OrdinalIgnoreCase) { "head", "script", "style", "template", "img", "title" };

    public static string ToPlainText(string html)
    {
        var document = new HtmlParser().ParseDocument(html);
        var sb = new StringBuilder();
        Walk(document.Body ?? (INode)document, sb);
        // Collapse the blank lines that nested blocks leave behind.
        var lines = sb.ToString().Split('\n').Select(l => l.TrimEnd());
        var result = new StringBuilder();
        var blank = 0;
        foreach (var line in lines)
        {
            if (line.Length == 0) { blank++; continue; }
            if (result.Length > 0) result.Append(blank > 0 ? "\n\n" : "\n");
            result.Append(line.TrimStart());
            blank = 0;
        }
        return result.ToString();
    }

    static void Walk(INode node, StringBuilder sb)
    {
        foreach (var child in node.ChildNodes)
        {
            switch (child)
            {
                case IText text:
                    AppendCollapsed(sb, text.Data);
                    break;
                case IElement e when Skipped.Contains(e.LocalName) || IsHidden(e):
                    break;
                case IElement e when e.LocalName == "br":
                    sb.Append('\n');
                    break;
                case IElement e when e.LocalName == "a":
                    var before = sb.Length;
                    Walk(e, sb);
                    var label = sb.ToString(before, sb.Length - before).Trim();
                    var href = e.GetAttribute("href");
                    if (href is not null && (href.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || href.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
                        && label != href)
                    {
                        sb.Append(" (").Append(href).Append(')');
                    }
                    break;
                case IElement e:
                    var block = Blocks.Contains(e.LocalName);
                    if (block) sb.Append('\n');
                    if (e.LocalName == "li") sb.Append("- ");
                    Walk(e, sb);
                    if (block) sb.Append('\n');
                    else if (e.LocalName is "td" or "th") sb.Append(' ');
                    break;
            }
        }
    }

    static bool IsHidden(IElement e) =>
        e.GetAttribute("aria-hidden") == "true" ||
        (e.GetAttribute("style") is { } style && style.Replace(" ", "", StringComparison.Ordinal).Contains("display:none", StringComparison.OrdinalIgnoreCase));

    static void AppendCollapsed(StringBuilder sb, string text)
    {
        foreach (var c in text)
        {
            if (char.IsWhiteSpace(c))
            {
                if (sb.Length > 0 && sb[^1] != ' ' && sb[^1] != '\n') sb.Append(' ');
            }
            else sb.Append(c);
        }
    }
}
