using EmailTracking.Data;
using EmailTracking.Server.Feed;
using Microsoft.AspNetCore.Html;

namespace EmailTracking.Server.Web;

/// <summary>Words and formats the pages share (the script uses the same words for live rows).</summary>
public static class Display
{
    public static string Verdict(Verdict v) => v switch
    {
        EmailTracking.Data.Verdict.Human => "human",
        EmailTracking.Data.Verdict.Self => "you",
        EmailTracking.Data.Verdict.ProxyPrefetch => "proxy prefetch",
        EmailTracking.Data.Verdict.Scanner => "security scanner",
        EmailTracking.Data.Verdict.Bot => "bot",
        _ => v.ToString(),
    };

    public static string VerdictCss(Verdict v) => v switch
    {
        EmailTracking.Data.Verdict.Human => "human",
        EmailTracking.Data.Verdict.Self => "self",
        EmailTracking.Data.Verdict.ProxyPrefetch => "proxy-prefetch",
        EmailTracking.Data.Verdict.Scanner => "scanner",
        _ => "bot",
    };

    /// <summary>The action with its object to follow ("… in Proposal"), for the feed.</summary>
    public static string Action(ActivityItem i) => i.Kind switch
    {
        EventKind.Open => Verb(i),
        EventKind.Reply or EventKind.AutoReply or EventKind.Complaint => Verb(i) + " to",
        EventKind.Bounce => "bounced",
        EventKind.Receipt => Verb(i) + " for",
        EventKind.Click when !i.Honeypot => "clicked a link in",
        EventKind.DocumentView or EventKind.DocumentPage or EventKind.Download or EventKind.DocumentLink => Verb(i) + " from",
        _ => Verb(i) + " in",
    };

    /// <summary>The action without its object, for a message's own timeline.</summary>
    public static string Verb(ActivityItem i) => i.Kind switch
    {
        EventKind.Open => "opened",
        EventKind.Click when i.Honeypot => "followed the hidden trap link",
        EventKind.Click => "clicked",
        EventKind.Reply => "replied",
        EventKind.AutoReply => "auto-replied",
        EventKind.Bounce => "bounced",
        EventKind.Complaint => "reported as spam",
        EventKind.Receipt => "sent a receipt",
        EventKind.DocumentView => $"opened {i.Document ?? "a document"}",
        EventKind.DocumentPage => $"read {i.Document ?? "a document"} — page {i.Page} of {i.PageCount}",
        EventKind.Download => $"downloaded {i.Document ?? "a document"}",
        EventKind.DocumentLink => $"followed a link in {i.Document ?? "a document"} (page {i.Page})",
        _ => i.Kind.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Bounces and receipts are about the recipient whose address failed or who got the message, not the mailer-daemon
    /// that wrote. A share link's reader is named by the address they gave, with how far it can be trusted.
    /// </summary>
    public static string Who(ActivityItem i) => i.Kind == EventKind.Bounce ? i.Recipient ?? "a recipient"
        : i.Kind == EventKind.Receipt ? i.Recipient ?? i.FromAddress ?? "a recipient"
        : i.FromAddress ?? i.Recipient ?? (i.Reader is { } reader ? Content.ShareReader.Label(reader, i.ReaderVerified) : "someone");

    /// <summary>The badge of a message that arrived in answer (robots named for what they are); null for hits.</summary>
    public static (string Word, string Css)? InboundBadge(ActivityItem i) => i.Kind switch
    {
        EventKind.Reply => ("reply", "reply"),
        EventKind.AutoReply => ("auto-reply", "auto-reply"),
        EventKind.Bounce => ("bounce", "bounce"),
        EventKind.Complaint => ("complaint", "complaint"),
        EventKind.Receipt => ("receipt", "receipt"),
        _ => null,
    };

    /// <summary>A time as text, in UTC: "2026-11-29 14:05:00 UTC".</summary>
    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) + " UTC";

    /// <summary>
    /// A time as the pages show it: <c>&lt;time datetime="…Z"&gt;2026-11-29 14:05:00 UTC&lt;/time&gt;</c>, right without
    /// script; the app's script (wwwroot/js/app.js) rewrites its text into the reader's own time zone and keeps the
    /// UTC time as its tooltip. Rows the live feed adds get the same.
    /// </summary>
    public static IHtmlContent When(DateTimeOffset t) => new HtmlString($"<time datetime=\"{Iso(t)}\">{Time(t)}</time>");

    /// <summary>A time that may not be there: <paramref name="none"/> ("never", "—") when it is not.</summary>
    public static IHtmlContent When(DateTimeOffset? t, string none) => t is { } v ? When(v) : new HtmlContentBuilder().Append(none);

    /// <summary>
    /// A time kept in UTC on purpose, where the page says so and shows another zone beside it (a sequence's next sends,
    /// with the recipient's own time beneath): the script leaves its text and adds the reader's time as its tooltip.
    /// </summary>
    public static IHtmlContent WhenUtc(DateTimeOffset t) => new HtmlString($"<time datetime=\"{Iso(t)}\" data-zone=\"utc\">{Time(t)}</time>");

    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("O", System.Globalization.CultureInfo.InvariantCulture);

    /// <summary>
    /// What a person did with the message's tracked documents, for the lists' Documents column ("3 pages read,
    /// downloaded"); "—" when nothing. The script words live updates the same way (app.js, documentSummary).
    /// </summary>
    public static string DocumentSummary(int views, int pages, int downloads)
    {
        var parts = new List<string>(2);
        if (pages > 0) parts.Add(Plural(pages, "page", "pages") + " read");
        else if (views > 0) parts.Add(views == 1 ? "opened" : $"opened {views}×");
        if (downloads > 0) parts.Add(downloads == 1 ? "downloaded" : $"downloaded {downloads}×");
        return parts.Count == 0 ? "—" : string.Join(", ", parts);
    }

    /// <summary>The latest thing a person did ("opened", "clicked", "read a document") and when; null when nothing yet.</summary>
    public static (string Word, DateTimeOffset At)? LastActivity(Messages.Counts c)
    {
        (string Word, DateTimeOffset At)? last = null;
        if (c.LastOpenAt is { } open) last = ("opened", open);
        if (c.LastClickAt is { } click && (last is null || click >= last.Value.At)) last = ("clicked", click);
        if (c.LastDocumentAt is { } document && (last is null || document >= last.Value.At)) last = ("read a document", document);
        return last;
    }

    public static string Plural(int n, string one, string many) => n == 1 ? $"1 {one}" : $"{n} {many}";

    /// <summary>A size as a person reads it: 812 B, 14 KB, 3.2 MB.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0} KB",
        _ => $"{bytes / (1024.0 * 1024):0.0} MB",
    };
}
