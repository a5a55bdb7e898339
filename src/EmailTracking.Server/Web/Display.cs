using EmailTracking.Data;
using EmailTracking.Server.Feed;
using System.Text;
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
    public static IHtmlContent Action(ActivityItem i) => i.Kind switch
    {
        EventKind.Open => Verb(i),
        EventKind.Reply or EventKind.AutoReply or EventKind.Complaint => Words(Verb(i), " to"),
        EventKind.Bounce => Words("bounced"),
        EventKind.Receipt => Words(Verb(i), " for"),
        EventKind.Click when !i.Honeypot => Words("clicked a link in"),
        EventKind.DocumentView or EventKind.DocumentPage or EventKind.Download or EventKind.DocumentLink => Words(Verb(i), " from"),
        _ => Words(Verb(i), " in"),
    };

    /// <summary>The action without its object, for a message's own timeline. A document's name is isolated from the words around it.</summary>
    public static IHtmlContent Verb(ActivityItem i) => i.Kind switch
    {
        EventKind.Open => Words("opened"),
        EventKind.Click when i.Honeypot => Words("followed the hidden trap link"),
        EventKind.Click => Words("clicked"),
        EventKind.Reply => Words("replied"),
        EventKind.AutoReply => Words("auto-replied"),
        EventKind.Bounce => Words("bounced"),
        EventKind.Complaint => Words("reported as spam"),
        EventKind.Receipt => Words("sent a receipt"),
        EventKind.DocumentView => Words("opened ", DocumentName(i)),
        EventKind.DocumentPage => Words("read ", DocumentName(i), $" — page {i.Page} of {i.PageCount}"),
        EventKind.Download => Words("downloaded ", DocumentName(i)),
        EventKind.DocumentLink => Words("followed a link in ", DocumentName(i), $" (page {i.Page})"),
        _ => Words(i.Kind.ToString().ToLowerInvariant()),
    };

    static IHtmlContent DocumentName(ActivityItem i) => i.Document is { } name ? Isolated(name) : new HtmlString("a document");

    /// <summary>
    /// Bounces and receipts are about the recipient whose address failed or who got the message, not the mailer-daemon
    /// that wrote. A share link's reader is named by the address they gave, with how far it can be trusted
    /// (<see cref="Content.ShareReader.Label"/>), the address kept apart from the words that qualify it.
    /// </summary>
    public static IHtmlContent Who(ActivityItem i) => i.Kind == EventKind.Bounce ? Exact(i.Recipient, "a recipient")
        : i.Kind == EventKind.Receipt ? Exact(i.Recipient ?? i.FromAddress, "a recipient")
        : i.FromAddress is not null || i.Recipient is not null ? Exact(i.FromAddress ?? i.Recipient)
        : i.Reader is { } reader ? Reader(reader, i.ReaderVerified) : Words("someone");

    /// <summary>A share link's reader as the owner's pages name them: the address they gave, and how far it can be trusted.</summary>
    public static IHtmlContent Reader(string email, bool verified) =>
        Words(Exact(email), verified ? " (verified)" : " (given by the reader, not verified)");

    /// <summary>A message's subject as the pages show it, isolated; "(no subject)" when it has none.</summary>
    public static IHtmlContent Subject(string? subject) => Isolated(subject, "(no subject)");

    /// <summary>A person as "Name &lt;address&gt;" (the address alone without a name): the name isolated, the address exact.</summary>
    public static IHtmlContent Person(string? name, string address) =>
        string.IsNullOrEmpty(name) ? Exact(address) : Words(Isolated(name), " <", Exact(address), ">");

    /// <summary>The page's own words, and pieces already made safe, as one piece of HTML (strings are encoded).</summary>
    static IHtmlContent Words(params object[] parts)
    {
        var b = new HtmlContentBuilder(parts.Length);
        foreach (var p in parts)
        {
            if (p is IHtmlContent html) b.AppendHtml(html);
            else b.Append(p.ToString());
        }
        return b;
    }

    /// <summary>
    /// Text someone else chose, shown among the page's own words: a name, a subject, a document's, a sequence's or a
    /// template's name. It goes in a &lt;bdi&gt;, so that its direction (an Arabic or Hebrew name, or a U+202E
    /// RIGHT-TO-LEFT OVERRIDE put there to disguise) stays inside it and cannot turn round the words beside it
    /// ("deilper" for "replied", a status badge, a date). What would end the &lt;bdi&gt;'s isolation early — a closing
    /// U+2069 with no opening of its own in the text, a paragraph separator — lets the override out in Chromium, so it
    /// shows as U+FFFD. The text is otherwise as written: right-to-left text keeps its own marks.
    /// </summary>
    public static IHtmlContent Isolated(string? text) => Bdi(null, Contained(text ?? ""));

    /// <summary><see cref="Isolated(string?)"/>, or the page's own <paramref name="none"/> ("(no subject)") when there is no text.</summary>
    public static IHtmlContent Isolated(string? text, string none) => string.IsNullOrEmpty(text) ? Words(none) : Isolated(text);

    /// <summary>
    /// An address, a URL or a machine's text (a mail server's error, a reply's reason, a user agent), shown exactly: in a
    /// &lt;bdi&gt; as <see cref="Isolated"/> is, and with every invisible formatting character in it — bidi controls
    /// (U+202A–U+202E, U+2066–U+2069, U+200E/U+200F, U+061C), zero-width ones (U+200B–U+200D, U+2060, U+FEFF), soft
    /// hyphens, tags — shown as U+FFFD, so that an address can never show as another
    /// ("&lt;U+202E&gt;moc.knab-terces@target.test" as "tset.tegrat@secret-bank.com", "pay&lt;U+200B&gt;pal.com" as "paypal.com").
    /// </summary>
    public static IHtmlContent Exact(string? text) => Bdi("exact", Plain(text));

    /// <summary><see cref="Exact(string?)"/>, or the page's own <paramref name="none"/> ("an admin") when there is no text.</summary>
    public static IHtmlContent Exact(string? text, string none) => string.IsNullOrEmpty(text) ? Words(none) : Exact(text);

    /// <summary>
    /// The same as <see cref="Exact"/>, as plain text, for where no element can isolate it: a tooltip, a confirmation's
    /// question, an &lt;option&gt;. Any invisible formatting character shows as U+FFFD, so none can reorder the words around it.
    /// </summary>
    public static string Plain(string? text)
    {
        text ??= "";
        if (!text.EnumerateRunes().Any(Hidden)) return text;
        var b = new StringBuilder(text.Length);
        foreach (var r in text.EnumerateRunes()) b.Append(Hidden(r) ? "\uFFFD" : r.ToString());
        return b.ToString();
    }

    /// <summary>A paragraph separator (Unicode bidi class B) other than a line feed or carriage return, which HTML folds into spaces.</summary>
    static bool Breaks(Rune r) => r.Value is 0x1C or 0x1D or 0x1E or 0x85 or 0x2029;

    /// <summary>Invisible formatting characters (Unicode category Cf) and the paragraph separators.</summary>
    static bool Hidden(Rune r) => Rune.GetUnicodeCategory(r) == System.Globalization.UnicodeCategory.Format || Breaks(r);

    /// <summary>The text with a U+FFFD for each paragraph separator and each U+2069 that closes no isolate of the text's own.</summary>
    static string Contained(string text)
    {
        if (!text.EnumerateRunes().Any(r => Breaks(r) || r.Value == 0x2069)) return text;
        var b = new StringBuilder(text.Length);
        var open = 0;
        foreach (var r in text.EnumerateRunes())
        {
            if (r.Value is 0x2066 or 0x2067 or 0x2068) open++;
            else if (r.Value == 0x2069 && open > 0) open--;
            else if (r.Value == 0x2069 || Breaks(r))
            {
                b.Append('\uFFFD');
                continue;
            }
            b.Append(r.ToString());
        }
        return b.ToString();
    }

    static IHtmlContent Bdi(string? css, string text)
    {
        var b = new HtmlContentBuilder(3);
        b.AppendHtml(css is null ? "<bdi>" : $"<bdi class=\"{css}\">");
        b.Append(text);
        b.AppendHtml("</bdi>");
        return b;
    }

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

    /// <summary>
    /// What "show" would add, named apart: "2 machine events and 1 of your own views", or the part there is ("1 of your
    /// own views"; "0 machine events" when nothing). The sender's own views are no machine's. The script words live
    /// updates the same way (app.js, hiddenWords).
    /// </summary>
    public static string HiddenWords(int machineEvents, int ownViews)
    {
        var machines = Plural(machineEvents, "machine event", "machine events");
        var own = $"{ownViews} of your own views";
        return ownViews == 0 ? machines : machineEvents == 0 ? own : $"{machines} and {own}";
    }

    /// <summary>A size as a person reads it: 812 B, 14 KB, 3.2 MB.</summary>
    public static string Size(long bytes) => bytes switch
    {
        < 1024 => $"{bytes} B",
        < 1024 * 1024 => $"{bytes / 1024.0:0} KB",
        _ => $"{bytes / (1024.0 * 1024):0.0} MB",
    };
}
