using EmailTracking.Data;
using EmailTracking.Server.Feed;

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
        EventKind.Reply => Verb(i) + " to",
        EventKind.Click when !i.Honeypot => "clicked a link in",
        _ => Verb(i) + " in",
    };

    /// <summary>The action without its object, for a message's own timeline.</summary>
    public static string Verb(ActivityItem i) => i.Kind switch
    {
        EventKind.Open => "opened",
        EventKind.Click when i.Honeypot => "followed the hidden trap link",
        EventKind.Click => "clicked",
        EventKind.Reply => "replied",
        _ => i.Kind.ToString().ToLowerInvariant(),
    };

    public static string Who(ActivityItem i) => i.FromAddress ?? i.Recipient ?? "someone";

    public static string Time(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss") + " UTC";

    public static string Iso(DateTimeOffset t) => t.UtcDateTime.ToString("O");

    public static string Plural(int n, string one, string many) => n == 1 ? $"1 {one}" : $"{n} {many}";
}
