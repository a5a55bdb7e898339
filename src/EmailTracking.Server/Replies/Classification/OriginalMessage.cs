using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Where a report's text ends and the copy of the original message begins, and what can be read from that copy
/// when it is quoted as text rather than attached.
/// </summary>
internal static partial class OriginalMessage
{
    /// <summary>Splits report text into the notice and the quoted original (empty when there is none).</summary>
    public static (string Notice, string Original) Split(string text)
    {
        var m = FirstSeparator(text);
        if (m.Success)
            return (text[..m.Index], text[m.Index..]);
        var headers = HeaderBlock().Match(text);
        if (headers.Success && headers.Index > 0)
            return (text[..headers.Index], text[headers.Index..]);
        return (text, "");
    }

    /// <summary>
    /// The first match of <see cref="Separator"/>, as its own scan would find it. The pattern's scan tries every line of
    /// the text; in ASCII text it is tried only at the start of the lines that hold one of <see cref="SeparatorWords"/>,
    /// since a match's first line always holds one. Other text goes to the pattern's scan, whose case rules reach beyond
    /// ASCII and which has words that are not ASCII.
    /// </summary>
    private static Match FirstSeparator(string text)
    {
        if (!Ascii.IsValid(text))
            return Separator().Match(text);
        var from = 0;
        while (from < text.Length)
        {
            var word = text.AsSpan(from).IndexOfAny(SeparatorWords);
            if (word < 0)
                break;
            word += from;
            var lineStart = text.LastIndexOf('\n', word) + 1;
            if (SeparatorAt().Match(text, lineStart) is { Success: true } match)
                return match;
            var lineEnd = text.IndexOf('\n', word);
            if (lineEnd < 0)
                break;
            from = lineEnd + 1;
        }
        return Match.Empty;
    }

    /// <summary>
    /// Words one of which the first line of every match of <see cref="Separator"/> holds in ASCII text (case aside):
    /// every branch has one verbatim before any line break it can span. Keep them in step with the pattern.
    /// </summary>
    private static readonly SearchValues<string> SeparatorWords = SearchValues.Create(
        ["message", "original mail", "the text you sent follows", "bounced e", "returned mail follows", "content-type:"], StringComparison.OrdinalIgnoreCase);

    /// <summary>The first Message-ID header in quoted header text, without brackets; null if none.</summary>
    public static string? MessageIdIn(string text)
    {
        if (text.Length == 0)
            return null;
        var m = MessageIdHeader().Match(text);
        return m.Success ? Normalize(m.Groups["id"].Value) : null;
    }

    /// <summary>The addresses of the first To header in quoted header text.</summary>
    public static List<string> ToAddressesIn(string text)
    {
        var m = ToHeader().Match(text);
        if (!m.Success)
            return [];
        var value = m.Groups["value"].Value;
        return Addresses.Email(value).Matches(value).Select(a => Addresses.Clean(a.Value)).Distinct().ToList();
    }

    /// <summary>A Message-ID as stored: no angle brackets, no surrounding space; null when it has no '@' or is too long.</summary>
    public static string? Normalize(string? id)
    {
        if (string.IsNullOrWhiteSpace(id))
            return null;
        var value = id.Trim();
        var lt = value.IndexOf('<');
        var gt = lt >= 0 ? value.IndexOf('>', lt + 1) : -1;
        if (lt >= 0 && gt > lt)
            value = value[(lt + 1)..gt];
        value = value.Trim().Trim('<', '>').Trim();
        return value.Length is > 2 and < 1000 && !value.Contains(' ') ? value : null;
    }

    // Lines that introduce the copy of the original in the reports of qmail, Exim, Postfix, Sendmail, Gmail, Exchange,
    // Domino, Notes, mFILTER, Courier and others.
    private const string SeparatorPattern = @"^[ \t>]*(?:-{2,}[ \t]*)?(?:" +
        @"below this line is a copy of the message|this is a copy of the message|original message (?:follows|headers?|header follows)|" +
        @"original message ?-|-*original message-*$|unsent message follows|returned message|message headers follow|" +
        @"(?:included is )?a copy of the (?:original )?message(?: header)?|the header of the original message|header of the original message|" +
        @"(?:the )?original message(?: was)?:|original mail(?: header)?|undelivered message (?:headers )?follows|" +
        @"copy of (?:the|your) (?:original )?message|below is a copy of the original message|your message (?:follows|reads)|" +
        @"the text you sent follows|bounced e-?mail:|message text follows|the original message headers|content of the original message|" +
        @"-*original message-*|original message is attached|mail header of the original message|returned mail follows|" +
        @"原メッセージ|元のメッセージ|送信されたメッセージ|content-type:\s*(?:message/rfc822|text/rfc822-headers))";

    [GeneratedRegex(SeparatorPattern, RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex Separator();

    /// <summary><see cref="Separator"/> tried at the start position given to Match only.</summary>
    [GeneratedRegex(@"\G(?:" + SeparatorPattern + ")", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex SeparatorAt();

    // Fallback: three header lines in a row at the start of a line (Received/Return-Path/Date/From/To/Subject/Message-ID…).
    [GeneratedRegex(@"^(?:(?:Received|Return-Path|Date|From|To|Subject|Message-I[Dd]|MIME-Version|DKIM-Signature|Delivered-To|X-[A-Za-z0-9-]+):[^\n]*\n(?:[ \t][^\n]*\n)*){3}", RegexOptions.Multiline)]
    private static partial Regex HeaderBlock();

    [GeneratedRegex(@"^[ \t>]*Message-I[Dd][ \t]*:[ \t]*(?:\r?\n[ \t>]+)?(?<id><?[^\s<>]+@[^\s<>]+>?)", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex MessageIdHeader();

    [GeneratedRegex(@"^[ \t>]*To[ \t]*:[ \t]*(?<value>[^\n]*(?:\n[ \t]+[^\n]*)*)", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex ToHeader();
}
