using System.Collections.Concurrent;

namespace EmailTracking.Server.Tracking.Classification;

/// <summary>What the user-agent rules say about one user agent, worked out once.</summary>
public sealed record UserAgentFacts(MailImageProxy Proxy, string? Scanner, bool GmailPrefetch, bool BareMozilla, string? BotSignal)
{
    /// <summary>Distinct user agents remembered; beyond this, answers are worked out each time and not kept.</summary>
    public const int MaxRemembered = 4096;

    static readonly ConcurrentDictionary<string, UserAgentFacts> Remembered = new(StringComparer.Ordinal);
    static readonly UserAgentFacts None = Compute(null);

    /// <summary>
    /// The rules' answers for this user agent. The same few hundred user agents (Outlook, Apple Mail, Gmail's proxy,
    /// the scanners) make nearly every hit, and the rules are a dozen regular expressions: each is run once per user
    /// agent, not once per hit. A flood of made-up user agents cannot grow the table past <see cref="MaxRemembered"/>.
    /// </summary>
    public static UserAgentFacts For(string? userAgent)
    {
        if (string.IsNullOrEmpty(userAgent)) return None;
        if (Remembered.TryGetValue(userAgent, out var known)) return known;
        var facts = Compute(userAgent);
        if (Remembered.Count < MaxRemembered) Remembered.TryAdd(userAgent, facts);
        return facts;
    }

    static UserAgentFacts Compute(string? userAgent) => new(
        UserAgentRules.DetectMailImageProxy(userAgent),
        UserAgentRules.KnownScanner(userAgent),
        UserAgentRules.IsGmailPrefetch(userAgent),
        string.IsNullOrWhiteSpace(userAgent) || UserAgentRules.IsBareMozilla(userAgent),
        UserAgentRules.BotSignal(userAgent));
}
