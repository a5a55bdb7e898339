using System.Globalization;
using System.Net;
using EmailTracking.Data;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Tracking.Classification;

/// <summary>Everything the classifier may look at for one pixel or click hit.</summary>
public sealed record HitContext
{
    /// <summary>Open (pixel) or Click.</summary>
    public required EventKind Kind { get; init; }

    /// <summary>HTTP method: "GET", "HEAD", …</summary>
    public required string Method { get; init; }

    public IPAddress? Ip { get; init; }

    public string? UserAgent { get; init; }

    public required DateTimeOffset Now { get; init; }

    /// <summary>When the mail left (or was registered), for timing rules.</summary>
    public DateTimeOffset? SentAt { get; init; }

    /// <summary>The request carries a valid device cookie of the message's sender.</summary>
    public bool FromSenderDevice { get; init; }

    /// <summary>Click on the hidden honeypot link.</summary>
    public bool IsHoneypot { get; init; }

    /// <summary>Earlier opens of this copy through the same mail image proxy, the sender's own (verdict self) not counted.</summary>
    public int EarlierProxyFetches { get; init; }

    /// <summary>
    /// Distinct other links of the same copy clicked within <see cref="ClassifierOptions.ClickBurstWindow"/> before
    /// <see cref="Now"/>; of a shared copy, only those clicked from the same client (address and user agent), as the
    /// shared body's recipients are several people.
    /// </summary>
    public int OtherLinksClickedTogether { get; init; }

    /// <summary>The sender has just opened their own sent mail (reported by the Gmail add-on).</summary>
    public bool SenderViewedRecently { get; init; }
}

/// <summary>The verdict for one hit and a short, human-readable reason (at most 300 characters).</summary>
public readonly record struct Classification(Verdict Verdict, string Reason);

/// <summary>Classifier settings. Section <c>Tracking:Classifier</c>.</summary>
public sealed class ClassifierOptions
{
    public const string SectionName = "Tracking:Classifier";

    /// <summary>A click this soon after sending is a security scanner: people do not read and click that fast.</summary>
    public TimeSpan ScannerClickWindow { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>
    /// Different links of one copy clicked within this span of each other are one machine walking the message (a
    /// person opens one link at a time); of a shared copy, different links clicked from one client. One second by
    /// default; at most a minute.
    /// </summary>
    public TimeSpan ClickBurstWindow { get; set; } = TimeSpan.FromSeconds(1);

    /// <summary>Extra CIDR ranges (or single addresses) of known scanners, e.g. a customer's mail gateway.</summary>
    public List<string> ScannerRanges { get; set; } = [];
}

/// <summary>
/// Decides whether a pixel or click hit was a person, the sender, a prefetching proxy, a security scanner or a bot.
/// Rules run in a fixed order and the first that applies wins; every verdict carries the reason. Pure and
/// thread-safe: one instance serves all requests.
/// </summary>
public sealed class HitClassifier(AppleRelayRanges apple, IOptions<ClassifierOptions> options)
{
    private const int MaxReasonLength = 300;

    private readonly TimeSpan _scannerClickWindow = options.Value.ScannerClickWindow;
    private readonly IpRangeSet _scannerRanges = IpRangeSet.Parse(options.Value.ScannerRanges ?? []);

    /// <summary>See <see cref="ClassifierOptions.ClickBurstWindow"/>.</summary>
    public TimeSpan ClickBurstWindow { get; } = options.Value.ClickBurstWindow;

    /// <summary>The reason given to the clicks of a burst.</summary>
    public string BurstReason { get; } = "several links clicked within " + Describe(options.Value.ClickBurstWindow);

    /// <summary>The reason given to the clicks of a copy re-marked because its hidden honeypot link was clicked within the burst window.</summary>
    public string HoneypotBurstReason { get; } = "clicked within " + Describe(options.Value.ClickBurstWindow) + " of the hidden honeypot link: one machine following every link";

    static string Describe(TimeSpan span) =>
        span == TimeSpan.FromSeconds(1) ? "one second"
        : span.TotalSeconds >= 1 ? span.TotalSeconds.ToString("0.###", System.Globalization.CultureInfo.InvariantCulture) + " seconds"
        : span.TotalMilliseconds.ToString("0", System.Globalization.CultureInfo.InvariantCulture) + " ms";

    public Classification Classify(HitContext hit)
    {
        ArgumentNullException.ThrowIfNull(hit);
        var isClick = hit.Kind == EventKind.Click;
        var userAgent = hit.UserAgent;

        // 1. Self first: a signed device cookie proves the sender's own browser, whatever else the request looks like.
        if (hit.FromSenderDevice)
            return Result(Verdict.Self, "sender's own device (signed cookie)");

        var facts = UserAgentFacts.For(userAgent);
        var proxy = facts.Proxy;
        // 1b. Gmail hides the viewer behind its proxy; if the sender just opened the mail, this fetch is theirs.
        if (hit.SenderViewedRecently && proxy == MailImageProxy.Gmail)
            return Result(Verdict.Self, "sender viewed the message in Gmail just before this proxy fetch");

        // 2. Browsers and mail clients only GET images and links; HEAD and others come from link checkers.
        if (!string.Equals(hit.Method, "GET", StringComparison.OrdinalIgnoreCase))
        {
            var method = Clean(hit.Method, 16);
            return isClick
                ? Result(Verdict.Scanner, $"{method} request: link checkers probe, people do not")
                : Result(Verdict.Bot, $"{method} request never counts as an open");
        }

        // 3. The honeypot link is invisible to people, so only a machine following every link reaches it.
        if (isClick && hit.IsHoneypot)
            return Result(Verdict.Scanner, "hidden honeypot link clicked: no person can see it");

        // 4. Gateways that name themselves, or addresses configured as scanners, are scanners whatever they fetch.
        if (facts.Scanner is { } scanner)
            return Result(Verdict.Scanner, $"security scanner user agent: {scanner}");
        if (hit.Ip is not null && _scannerRanges.Contains(hit.Ip))
            return Result(Verdict.Scanner, $"address {hit.Ip} is in a configured scanner range");

        // 5. Gmail's prefetch loads images of unread mail ahead of display: not a view.
        if (facts.GmailPrefetch)
            return Result(Verdict.ProxyPrefetch, "Gmail prefetch user agent: images loaded ahead of display, not a view");

        // 6. Webmail image proxies fetch when the message is displayed, then cache: the first fetch is the read,
        //    later ones are cache refreshes. Proxies only load images, so this does not apply to clicks.
        if (!isClick && proxy != MailImageProxy.None)
        {
            var name = proxy switch
            {
                MailImageProxy.Gmail => "Gmail",
                MailImageProxy.Yahoo => "Yahoo Mail",
                MailImageProxy.Seznam => "Seznam",
                MailImageProxy.Rambler => "Rambler Mail",
                MailImageProxy.UkrNet => "ukr.net",
                MailImageProxy.Fastmail => "Fastmail",
                _ => "webmail",
            };
            return hit.EarlierProxyFetches <= 0
                ? Result(Verdict.Human, $"first {name} image-proxy fetch: {name} fetches when the message is displayed")
                : Result(Verdict.ProxyPrefetch, $"repeat fetch through the {name} image proxy: a cache effect");
        }

        // 7. Apple Mail Privacy Protection loads every image on delivery from Apple's relays with a bare UA;
        //    a full browser UA from a relay address is a person using iCloud Private Relay.
        //    It prefetches images, not links: a click from there falls through to the rules below.
        if (!isClick && hit.Ip is not null && facts.BareMozilla && apple.Contains(hit.Ip))
            return Result(Verdict.ProxyPrefetch, "Apple Mail Privacy Protection prefetch");

        if (isClick)
        {
            // 8a. People click one link at a time; several within the burst window (a second by default) is a scanner
            //     walking the message. Of a shared copy only one client's clicks count (see OtherLinksClickedTogether):
            //     two of its recipients may well click in the same second.
            if (hit.OtherLinksClickedTogether >= 1)
                return Result(Verdict.Scanner, $"{BurstReason} ({hit.OtherLinksClickedTogether + 1} links)");

            // 8b. Gateways scan links on delivery, seconds after sending; a reader needs longer to open and click.
            if (hit.SentAt is { } sentAt)
            {
                var elapsed = hit.Now - sentAt;
                if (elapsed < TimeSpan.Zero)
                    return Result(Verdict.Scanner, "clicked before the recorded send time");
                if (elapsed < _scannerClickWindow)
                    return Result(Verdict.Scanner, $"clicked {elapsed.TotalSeconds.ToString("0.#", CultureInfo.InvariantCulture)} s after sending");
            }
        }

        // 9. Crawlers, link previewers, HTTP libraries and monitors announce themselves in the user agent.
        if (facts.BotSignal is { } signal)
        {
            return signal == "empty user agent"
                ? Result(Verdict.Bot, "empty user agent: browsers and mail clients always send one")
                : Result(Verdict.Bot, $"crawler or link previewer: {Clean(signal, 80)}");
        }

        // 10. Nothing machine-like was seen.
        return Result(Verdict.Human, "no machine signal");
    }

    private static Classification Result(Verdict verdict, string reason)
        => new(verdict, reason.Length <= MaxReasonLength ? reason : reason[..MaxReasonLength]);

    /// <summary>Request-supplied text in a reason: no control characters, bounded length.</summary>
    private static string Clean(string? text, int maxLength)
    {
        if (string.IsNullOrEmpty(text))
            return "(none)";
        var span = text.AsSpan(0, Math.Min(text.Length, maxLength));
        return string.Create(span.Length, text, static (buffer, source) =>
        {
            for (var i = 0; i < buffer.Length; i++)
                buffer[i] = char.IsControl(source[i]) ? ' ' : source[i];
        });
    }
}
