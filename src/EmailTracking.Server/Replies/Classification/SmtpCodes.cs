using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>Finding RFC 3463 enhanced status codes and RFC 5321 reply codes in server error text.</summary>
internal static partial class SmtpCodes
{
    /// <summary>
    /// The enhanced status code of a failure in the text, or null: one that follows an SMTP reply code ("550 5.1.1",
    /// "550-'5.7.1") is preferred over a bare one, success codes (2.x.x of an earlier step in a transcript) are
    /// skipped, and so is <paramref name="except"/> (the report's own Status, to find what the text adds to it).
    /// </summary>
    public static string? FindStatus(string? text, string? except = null)
    {
        if (string.IsNullOrEmpty(text))
            return null;
        string? first = null;
        foreach (Match m in EnhancedCode().Matches(text))
        {
            // "5.1.1" inside "192.5.1.1" or a version number "1.5.0.3" is not a status code: the lookarounds reject those.
            var code = m.Value;
            if (!IsValidStatus(code) || code[0] == '2' || code == except)
                continue;
            if (AfterReplyCode().IsMatch(text.AsSpan(Math.Max(0, m.Index - 8), Math.Min(8, m.Index))))
                return code;
            first ??= code;
        }
        return first;
    }

    /// <summary>The code in a Status: field ("5.1.1", "5.0.0 (reason)", "2.1.5"), any class; null if there is none.</summary>
    public static string? FieldStatus(string? field)
    {
        if (string.IsNullOrEmpty(field))
            return null;
        var m = EnhancedCode().Match(field);
        return m.Success && IsValidStatus(m.Value) ? m.Value : null;
    }

    /// <summary>A syntactically valid enhanced status code: class 2, 4 or 5, subject 0–7, detail up to three digits.</summary>
    public static bool IsValidStatus(string? code)
    {
        if (code is null)
            return false;
        var m = EnhancedCodeExact().Match(code);
        return m.Success;
    }

    /// <summary>The first SMTP reply code (4xx or 5xx, 2xx only if asked) that starts a reply in the text, or null.</summary>
    public static string? FindReplyCode(string? text, bool includeSuccess = false)
    {
        if (string.IsNullOrEmpty(text))
            return null;
        foreach (Match m in ReplyCode().Matches(text))
        {
            var code = m.Groups["code"].Value;
            if (code[0] == '2' && !includeSuccess)
                continue;
            return code;
        }
        return null;
    }

    /// <summary>X.0.0: only the class is known.</summary>
    public static bool IsClassOnly(string code) => code.EndsWith(".0.0", StringComparison.Ordinal);

    /// <summary>
    /// Chooses between the Status: field of a report and the code inside its error text. The field wins unless it says
    /// less (x.0.0, or x.y.0 against a specific code in the text), or disagrees on the class with the SMTP reply code
    /// that the text's code agrees with.
    /// </summary>
    public static string? Prefer(string? field, string? inText, string? replyCode)
    {
        if (string.IsNullOrEmpty(field))
            return inText;
        if (string.IsNullOrEmpty(inText) || field == inText)
            return field;
        if (replyCode is { Length: > 0 } && field[0] != inText[0])
        {
            if (replyCode[0] == field[0])
                return field;
            if (replyCode[0] == inText[0])
                return inText;
        }
        if (IsClassOnly(field))
            return IsClassOnly(inText) ? field : inText;
        if (IsClassOnly(inText))
            return field;
        if (field.EndsWith(".0", StringComparison.Ordinal) && !inText.EndsWith(".0", StringComparison.Ordinal))
            return inText;
        // Codes that describe the session rather than the recipient; the server's own words are more precise.
        if (field is "4.4.7" or "4.7.0" || field.StartsWith("5.3.", StringComparison.Ordinal) ||
            field[1..] is ".5.1" or ".5.2" or ".5.4" or ".5.5")
            return inText;
        // A generic "user unknown" beside the server's own, more specific words ("5.7.1 … blacklisted").
        if (field == "5.1.1" && !inText.EndsWith(".0", StringComparison.Ordinal) && !inText.StartsWith("5.5.", StringComparison.Ordinal))
            return inText;
        if (field == "5.1.3" && inText.StartsWith("5.7.", StringComparison.Ordinal))
            return inText;
        return field;
    }

    [GeneratedRegex(@"(?<![\d.])[245]\.\d{1,3}\.\d{1,3}(?!\.?\d)")]
    private static partial Regex EnhancedCode();

    [GeneratedRegex(@"[245]\d\d[ \-]?['""]?\s?$")]
    private static partial Regex AfterReplyCode();

    [GeneratedRegex(@"^[245]\.[0-7]\.\d{1,3}$")]
    private static partial Regex EnhancedCodeExact();

    // A reply code starts a line or follows "said:", "returned", "error:" etc.; it is followed by a space, a dash or
    // the end of the text, never by another digit or a dot (that would be an IP address or a status code).
    [GeneratedRegex(@"(?:^|[\s:(\[""'<>=;])(?<code>[245][0-5]\d)(?=[\s\-,;)\]]|$)", RegexOptions.Multiline)]
    private static partial Regex ReplyCode();
}
