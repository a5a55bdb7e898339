using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies;

/// <summary>What an email's subject says beyond the prefixes mail clients put before an answer's.</summary>
public static partial class Subjects
{
    /// <summary>A subject without the reply prefixes mail clients put before it ("Re:", "AW:", "SV:", "R:", "RES:" …), trimmed.</summary>
    public static string Topic(string? subject) => ReplyPrefixes().Replace(subject ?? "", "").Trim();

    /// <summary>Whether the subject starts with a reply prefix: an answer's, or a tracked email that itself answered one.</summary>
    public static bool IsAnswer(string? subject) => ReplyPrefixes().IsMatch(subject ?? "");

    [GeneratedRegex(@"^\s*(?:(?:re|aw|sv|vs|antw|antwort|r|rif|res|odp|ynt|atb|απ)\s*(?:\[\d+\]|\(\d+\))?\s*[:：]\s*)+",
        RegexOptions.IgnoreCase | RegexOptions.CultureInvariant)]
    private static partial Regex ReplyPrefixes();
}
