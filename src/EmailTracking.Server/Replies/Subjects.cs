using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies;

/// <summary>What an email's subject says beyond the prefixes mail clients put before an answer's.</summary>
public static partial class Subjects
{
    /// <summary>A subject without the reply prefixes mail clients put before it ("Re:", "AW:", "SV:", "R:", "RES:" …), trimmed.</summary>
    public static string Topic(string? subject) => ReplyPrefixes().Replace(subject ?? "", "").Trim();

    /// <summary>Whether the subject starts with a reply prefix: an answer's, or a tracked email that itself answered one.</summary>
    public static bool IsAnswer(string? subject) => ReplyPrefixes().IsMatch(subject ?? "");

    /// <summary>
    /// Whether <paramref name="subject"/> is <paramref name="original"/> forwarded: the same text with more forward
    /// prefixes before it ("FW:", "Fwd:", and Outlook's in other languages: "WG:", "TR:", "RV:", "I:", "ENC:", "Doorst:" …),
    /// reply prefixes between them aside. A tracked email that is itself a forward keeps its own "FW:": only one more counts.
    /// </summary>
    public static bool IsForwardOf(string? subject, string? original)
    {
        var (forwards, topic) = Prefixes(subject);
        var (originalForwards, originalTopic) = Prefixes(original);
        return forwards > originalForwards && topic.Length > 0 && string.Equals(topic, originalTopic, StringComparison.OrdinalIgnoreCase);
    }

    /// <summary>How many forward prefixes lead the subject, and its text after all leading reply and forward prefixes, its white space made single spaces.</summary>
    static (int Forwards, string Topic) Prefixes(string? subject)
    {
        var rest = subject ?? "";
        var forwards = 0;
        while (LeadingPrefix().Match(rest) is { Success: true } m)
        {
            if (m.Groups["forward"].Success) forwards++;
            rest = rest[m.Length..];
        }
        return (forwards, WhiteSpace().Replace(rest, " ").Trim());
    }

    [GeneratedRegex(@"^\s*(?:(?:re|aw|sv|vs|antw|antwort|r|rif|res|odp|ynt|atb|απ)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ReplyPrefixes();

    /// <summary>One reply or forward prefix. "VS:" is a Finnish reply's and a Danish or Norwegian forward's: taken as a forward.</summary>
    [GeneratedRegex(@"^\s*(?:(?<forward>fwd?|wg|tr|rv|i|enc|doorst|vb|vs|vl|pd|ilt|İlt|πρθ|转发|転送)|re|aw|sv|antw|antwort|r|rif|res|odp|ynt|atb|απ)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex LeadingPrefix();

    [GeneratedRegex(@"\s+")]
    private static partial Regex WhiteSpace();
}
