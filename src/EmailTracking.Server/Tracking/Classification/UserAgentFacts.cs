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
    public static UserAgentFacts For(string? userAgent) => For(userAgent, Compute);

    /// <summary>
    /// What a user agent gets when its rules timed out twice (each has a 100 ms limit against runaway matching): it is
    /// not analysed, and that is said. Remembered for no one.
    /// </summary>
    internal static readonly UserAgentFacts TimedOut = new(MailImageProxy.None, null, false, false, "user agent not analysed: its rules timed out");

    /// <param name="compute">The rules (tests give their own).</param>
    internal static UserAgentFacts For(string? userAgent, Func<string?, UserAgentFacts> compute)
    {
        if (string.IsNullOrEmpty(userAgent)) return None;
        if (Remembered.TryGetValue(userAgent, out var known)) return known;
        UserAgentFacts facts;
        try
        {
            facts = compute(userAgent);
        }
        catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
        {
            // The rules are linear: a time-out is this thread losing the processor on a busy machine (seen under a
            // full test run on two cores), not the user agent. Once more; a second time-out is not remembered.
            try
            {
                facts = compute(userAgent);
            }
            catch (System.Text.RegularExpressions.RegexMatchTimeoutException)
            {
                return TimedOut;
            }
        }
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
