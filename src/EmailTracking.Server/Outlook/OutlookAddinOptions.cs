using System.Text.RegularExpressions;

namespace EmailTracking.Server.Outlook;

/// <summary>The <c>OutlookAddin</c> section: how the add-in's pages (<c>/addin/…</c>) are served.</summary>
public sealed partial class OutlookAddinOptions
{
    public const string Section = "OutlookAddin";

    /// <summary>
    /// The origins Outlook frames add-in panes from: Outlook on the web for work and school accounts
    /// (outlook.office.com, outlook.office365.com), Outlook.com (outlook.live.com), and the cloud.microsoft domain
    /// Microsoft 365's web hosts are moving to. The list Microsoft gives for Outlook as an app host (Teams platform
    /// docs, "Content Security Policy headers"; the outlook-sdf hosts there are Microsoft's own test rings).
    /// </summary>
    public static readonly string[] OutlookOrigins =
        ["https://outlook.office.com", "https://outlook.office365.com", "https://outlook.live.com", "https://*.cloud.microsoft"];

    /// <summary>
    /// The CSP frame-ancestors sources of the add-in's pages instead of <see cref="OutlookOrigins"/>, e.g. to add a
    /// national cloud's Outlook (<c>OutlookAddin__FrameAncestors__4=https://outlook.office365.us</c> after the four
    /// defaults). Each is an https origin, optionally with a <c>*.</c> wildcard for subdomains.
    /// </summary>
    public string[]? FrameAncestors { get; set; }

    public IReadOnlyList<string> Ancestors => FrameAncestors is { Length: > 0 } f ? f : OutlookOrigins;

    /// <summary>An https host source CSP understands, with nothing that could end the directive or add another.</summary>
    public static bool IsHostSource(string? source) => source is not null && HostSource().IsMatch(source);

    [GeneratedRegex(@"^https://(\*\.)?[a-z0-9-]+(\.[a-z0-9-]+)*(:[0-9]{1,5})?$", RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex HostSource();
}
