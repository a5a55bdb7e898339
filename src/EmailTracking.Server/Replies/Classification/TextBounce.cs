using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>A failed address found in the text of a report, with the lines that explain it.</summary>
internal sealed record TextRecipient(string Address, string Diagnostic, int Strength);

/// <summary>
/// Reads failed addresses from the plain text of reports that are not RFC 3464: qmail, Exim, Postfix and Sendmail
/// without DSN, Exchange 2003, Domino, Gmail's and Yahoo's own notices, and the rest. Works on lines, never on MIME.
/// </summary>
internal static partial class TextBounce
{
    /// <summary>The address stands alone on its line among failure words: the strongest kind of mention.</summary>
    public const int StandaloneStrength = 3;

    private const int Standalone = StandaloneStrength;
    private const int Labelled = 2;
    private const int Inline = 1;

    /// <summary>Failed addresses in reading order, strongest kind of mention first when several kinds occur.</summary>
    /// <param name="exclude">Addresses that are not failed recipients (the sender's), by <see cref="Addresses.Key"/>.</param>
    public static List<TextRecipient> FindRecipients(string notice, ISet<string> exclude, int max)
    {
        var lines = notice.Split('\n');
        for (var i = 0; i < lines.Length; i++)
        {
            var line = lines[i].TrimEnd('\r');
            // Most lines are not quoted: the pattern is tried only where the first character after blanks is '>'.
            lines[i] = line.AsSpan().TrimStart(" \t").StartsWith('>') ? QuotePrefix().Replace(line, "") : line;
        }

        var found = new List<(string Address, int Line, int Strength, string After)>();
        for (var i = 0; i < lines.Length && found.Count < max * 4; i++)
        {
            var line = lines[i];
            if (line.Length == 0 || line.Length > 1000 || line.IndexOf('@') < 0)
                continue;
            if (HeaderOrCommandLine().IsMatch(line))
                continue;
            // The patterns that read the whole line answer the same for every address on it (a line often names its
            // address twice, "user@host: 550 <user@host>..."): each is tried once per line, when first needed.
            LineMatch? named = null, standalone = null, sendmail = null;
            bool? errorWords = null;
            foreach (var m in Addresses.Email(line).EnumerateMatches(line))
            {
                var address = Addresses.Clean(line.Substring(m.Index, m.Length));
                if (!LooksDeliverable(address) || exclude.Contains(Addresses.Key(address)))
                    continue;
                var strength = Inline;
                var rest = "";
                named ??= new LineMatch(NamedAddressLine().Match(line));
                if (named.Success && named.Address != address)
                    continue; // "user@a <other@b>": the bracketed one is meant
                var sa = named.Success ? named : standalone ??= new LineMatch(StandaloneAddress().Match(line));
                if (!sa.Success || sa.Address != address)
                    sa = sendmail ??= new LineMatch(SendmailLine().Match(line));
                if (sa.Success && sa.Address == address)
                {
                    // Alone on its line, but only a failed address if something around it speaks of failure or
                    // recipients; otherwise it is an address the notice merely mentions (a list's help address).
                    strength = HasFailureContext(lines, i, sa.Rest) ? Standalone : Inline;
                    rest = sa.Rest;
                    if (strength == Inline && !(errorWords ??= ErrorWords().IsMatch(line)))
                        continue;
                }
                else
                {
                    var before = line.AsSpan(0, m.Index);
                    if (RecipientLabel().IsMatch(before))
                    {
                        strength = Labelled;
                        rest = line[(m.Index + m.Length)..];
                    }
                    else if (!(errorWords ??= ErrorWords().IsMatch(line)))
                    {
                        continue;
                    }
                    else
                    {
                        rest = line;
                    }
                }
                found.Add((address, i, strength, rest));
            }
        }
        if (found.Count == 0)
            return [];

        var best = found.Max(f => f.Strength);
        var result = new List<TextRecipient>();
        // By Addresses.Key: one mailbox named in Unicode and in punycode ("bob@exämple.de", "bob@xn--exmple-cua.de") is one recipient.
        var byAddress = new Dictionary<string, int>(StringComparer.Ordinal);
        // The lines where a block ends, the same for every address: gathered once, not once per address.
        var addressLines = found.Where(o => o.Strength == best).Select(o => o.Line).ToHashSet();
        foreach (var f in found.Where(f => f.Strength == best))
        {
            var block = BlockAfter(lines, f.Line, f.After, addressLines);
            var key = Addresses.Key(f.Address);
            if (byAddress.TryGetValue(key, out var index))
            {
                // The same address twice (Office 365 names it in the summary and again in the details): keep both texts.
                var merged = result[index].Diagnostic.Length == 0 ? block : (result[index].Diagnostic + "\n" + block).Trim();
                result[index] = result[index] with { Diagnostic = MessageView.Clip(merged, 4000) };
                continue;
            }
            if (result.Count >= max)
                break;
            byAddress[key] = result.Count;
            result.Add(new TextRecipient(f.Address, block, best));
        }
        return result;
    }

    /// <summary>A match of a whole-line pattern with its address cleaned, read once however many addresses the line has.</summary>
    private sealed class LineMatch(Match match)
    {
        public bool Success { get; } = match.Success;
        public string Address { get; } = match.Success ? Addresses.Clean(match.Groups["addr"].Value) : "";
        public string Rest { get; } = match.Success ? match.Groups["rest"].Value : "";
    }

    /// <summary>
    /// The rest of the address's line and the lines after it up to a blank line, the next failed address or the
    /// copy of the original; at most twelve lines.
    /// </summary>
    private static string BlockAfter(string[] lines, int index, string rest, HashSet<int> addressLines)
    {
        // What is left of the line after the address may be just its closing punctuation (">.", ":").
        var trimmed = rest.Trim();
        var sb = new StringBuilder(HasLetterOrDigit(trimmed) ? trimmed : "");
        var taken = 0;
        for (var i = index + 1; i < lines.Length && taken < 12; i++)
        {
            var line = lines[i];
            if (addressLines.Contains(i))
                break;
            // Rules of "=" or "*" are blank lines as far as the explanation goes.
            if (!HasLetterOrDigit(line))
            {
                // Skip blank lines only before the explanation has started (Gmail, Domino put one in between).
                if (taken == 0 && sb.Length == 0 && i - index <= 2)
                    continue;
                break;
            }
            sb.Append('\n').Append(line.Trim());
            taken++;
        }
        return sb.ToString().Trim();
    }

    // A loop over the characters rather than LINQ over the string: no enumerator, no delegate call per character.
    private static bool HasLetterOrDigit(string text)
    {
        foreach (var c in text)
        {
            if (char.IsLetterOrDigit(c))
                return true;
        }
        return false;
    }

    /// <summary>Failure or recipient words on the address's line, in the lines just before it, or in its explanation.</summary>
    private static bool HasFailureContext(string[] lines, int index, string rest)
    {
        if (ContextWords().IsMatch(rest))
            return true;
        var seen = 0;
        for (var i = index - 1; i >= 0 && seen < 2; i--)
        {
            if (lines[i].Trim().Length == 0)
                continue;
            if (ContextWords().IsMatch(lines[i]))
                return true;
            seen++;
        }
        seen = 0;
        for (var i = index + 1; i < lines.Length && seen < 3; i++)
        {
            if (lines[i].Trim().Length == 0)
            {
                if (seen > 0)
                    break;
                continue;
            }
            if (ContextWords().IsMatch(lines[i]))
                return true;
            seen++;
        }
        return false;
    }

    /// <summary>An address a report would name as failed: not a message id, not an image in HTML.</summary>
    private static bool LooksDeliverable(string address)
    {
        var at = address.IndexOf('@');
        if (at <= 0 || at == address.Length - 1)
            return false;
        var domain = address[(at + 1)..];
        return domain.Contains('.') && !domain.EndsWith(".png", StringComparison.Ordinal) && !domain.EndsWith(".gif", StringComparison.Ordinal)
               && !domain.EndsWith(".jpg", StringComparison.Ordinal);
    }

    [GeneratedRegex(@"^(?:[ \t]*>)+[ \t]?")]
    private static partial Regex QuotePrefix();

    // Lines that name the sender or are SMTP commands about the sender, never the failed recipient.
    [GeneratedRegex(@"^\s*(?:>{3}\s*)?(?:from|return-path|reply-to|sender|envelope-from|errors-to|message-id|in-reply-to|references|mail from|received|x-[a-z-]+|dkim-signature|authentication-results|list-[a-z]+)\s*:", RegexOptions.IgnoreCase)]
    private static partial Regex HeaderOrCommandLine();

    // The address alone on its line, decorated the ways reports decorate it: bullets, brackets, quotes, a trailing
    // colon or "...", "on <date>", "[reason]", "(reason)", "<mailto:…>", or followed by ": reason".
    [GeneratedRegex(@"^\s*(?:[*\-•#>·]+\s*|\d+[.)]\s+|(?:rcpt|recipient|address)\s*:\s*)?[""'<(\[]?(?<addr>[^\s<>""'()\[\]]+@[^\s<>""'()\[\],;:]+)[>""')\]]?(?:<mailto:[^>]*>)?\s*(?:(?<rest>(?::|\.\.\.|\s-\s|\s+on\s|\s+\[|\s+\(|\s+has\s|\s+was\s|\s+is\s|\s+-{2,}|\s*,|\s+\d{3}\s|\s+<).*)|[:.,;]?)\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex StandaloneAddress();

    // Words that precede a failed address in a sentence ("could not be delivered to:", "RCPT TO:<", "Unknown user:").
    [GeneratedRegex(@"(?:rcpt to|recipient(?:s)?|to|deliver(?:ed|ing|y)?(?: (?:your|the) (?:mail|message))?(?: to)?|user|address(?:ee)?|mailbox|destinat(?:ion|ario|aire)|empf[aä]nger|" +
        @"failed|undeliverable(?: to)?|not delivered to|target mail address|for|account|member(?:s)? of|mailing list|group|failure|addresses?|unknown|rejected|invalid)\s*[:=]?\s*[""'<(\[]*\s*$", RegexOptions.IgnoreCase)]
    private static partial Regex RecipientLabel();

    // Sendmail: "550 5.1.1 <user@example.com>... User unknown", also after "<<< ".
    [GeneratedRegex(@"^\s*(?:<<<\s*)?[245]\d\d[ -](?:[245]\.\d{1,3}\.\d{1,3}\s+)?<?(?<addr>[^\s<>""]+@[^\s<>""]+?)>?\.\.\.\s*(?<rest>.*)$")]
    private static partial Regex SendmailLine();

    // "user@example.com <other@example.net>: reason" or "Name <user@example.com>": the bracketed address is the one.
    [GeneratedRegex(@"^\s*(?:[^\s<>""]+@[^\s<>""]+|""[^""]{0,80}"")\s*<(?<addr>[^\s<>""]+@[^\s<>""]+)>\s*(?<rest>(?::|\s).*)?$")]
    private static partial Regex NamedAddressLine();

    [GeneratedRegex(@"fail|error|recipient|deliver|reject|refus|denied|unknown|not found|does not exist|doesn't exist|no such|invalid|undeliver|bounce|" +
        @"quota|full|disabled|blocked|unable|could not|couldn't|cannot|problem|[245]\d\d|[245]\.\d\.\d|not (?:a )?member|not listed|destinat|empf[aä]nger|" +
        @"エラー|失敗|宛先|送信できません|届きません|配信", RegexOptions.IgnoreCase)]
    private static partial Regex ContextWords();

    [GeneratedRegex(@"\b[245]\d\d\b|\b[245]\.\d{1,3}\.\d{1,3}\b|unknown|not found|does not exist|doesn't exist|no such|invalid|rejected|refused|denied|failed|failure|full|quota|disabled|not (?:a )?member|undeliverable|error|unable|blocked|malformed|duplicated", RegexOptions.IgnoreCase)]
    private static partial Regex ErrorWords();
}
