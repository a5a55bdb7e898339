using System.Text.RegularExpressions;
using MimeKit;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>The per-recipient fields of a delivery status report (RFC 3464 section 2.3).</summary>
internal sealed class RecipientFields
{
    public string? FinalRecipient { get; set; }
    public string? OriginalRecipient { get; set; }
    public string? Action { get; set; }
    public string? Status { get; set; }
    public string? Diagnostic { get; set; }

    public bool HasRecipient => FinalRecipient is not null || OriginalRecipient is not null;
}

/// <summary>
/// Reads delivery-status fields, either from MimeKit's parsed <see cref="MessageDeliveryStatus"/> groups or from
/// "Name: value" lines that some servers put in a plain text part instead.
/// </summary>
internal static partial class DeliveryFields
{
    /// <summary>The recipient field sets of a message/delivery-status part.</summary>
    public static List<RecipientFields> FromPart(MessageDeliveryStatus part, int maxRecipients)
    {
        var groups = new List<List<(string Name, string Value)>>();
        try
        {
            foreach (var group in part.StatusGroups)
                groups.Add(group.Select(h => (h.Field, h.Value ?? "")).ToList());
        }
        catch (FormatException)
        {
            // A body MimeKit cannot read as fields: nothing here, the text rules may still find the recipients.
        }
        return Split(groups, maxRecipients);
    }

    /// <summary>Per-message fields of a message/delivery-status part (the first group).</summary>
    public static string? PerMessageField(MessageDeliveryStatus part, string name)
    {
        try
        {
            var groups = part.StatusGroups;
            return groups.Count > 0 && groups[0].IndexOf(name) is var i and >= 0 ? groups[0][i].Value?.Trim() : null;
        }
        catch (FormatException)
        {
            return null;
        }
    }

    /// <summary>Delivery-status fields written into plain text (Amazon WorkMail and others), grouped by blank lines.</summary>
    public static List<RecipientFields> FromText(string text, int maxRecipients)
    {
        if (!RecipientFieldInText().IsMatch(text))
            return [];
        var groups = new List<List<(string Name, string Value)>>();
        var current = new List<(string Name, string Value)>();
        string? name = null;
        var value = "";
        void Flush()
        {
            if (name is not null)
                current.Add((name, value.Trim()));
            name = null;
            value = "";
        }
        foreach (var raw in text.Split('\n'))
        {
            var line = raw.TrimEnd('\r');
            if (line.Trim().Length == 0)
            {
                Flush();
                if (current.Count > 0)
                    groups.Add(current);
                current = [];
                continue;
            }
            if (name is not null && (line[0] == ' ' || line[0] == '\t') && !FieldLine().IsMatch(line))
            {
                value += " " + line.Trim();
                continue;
            }
            Flush();
            var m = FieldLine().Match(line);
            if (m.Success)
            {
                name = m.Groups["name"].Value;
                value = m.Groups["value"].Value;
            }
        }
        Flush();
        if (current.Count > 0)
            groups.Add(current);
        return Split(groups, maxRecipients);
    }

    /// <summary>
    /// One field set per recipient: a new set starts with each group (blank-line separated) and whenever a group
    /// repeats a recipient field, which is what a report without its blank lines looks like.
    /// </summary>
    private static List<RecipientFields> Split(List<List<(string Name, string Value)>> groups, int maxRecipients)
    {
        var result = new List<RecipientFields>();
        foreach (var group in groups)
        {
            var current = new RecipientFields();
            foreach (var (name, value) in group)
            {
                switch (name.ToLowerInvariant())
                {
                    case "final-recipient":
                        if (current.FinalRecipient is not null)
                            current = Next(result, current);
                        current.FinalRecipient = value;
                        break;
                    case "original-recipient":
                        if (current.OriginalRecipient is not null)
                            current = Next(result, current);
                        current.OriginalRecipient = value;
                        break;
                    case "action":
                        if (current.Action is not null && current.HasRecipient)
                            current = Next(result, current);
                        current.Action ??= value;
                        break;
                    case "status":
                        current.Status ??= value;
                        break;
                    case "diagnostic-code":
                        current.Diagnostic ??= value;
                        break;
                }
                if (result.Count >= maxRecipients)
                    return result;
            }
            if (current.HasRecipient)
                result.Add(current);
        }
        return result.Count > maxRecipients ? result[..maxRecipients] : result;
    }

    private static RecipientFields Next(List<RecipientFields> result, RecipientFields current)
    {
        if (current.HasRecipient)
            result.Add(current);
        return new RecipientFields();
    }

    /// <summary>The address in "rfc822; user@example.com", "&lt;user@example.com&gt;" or a bare address; null if none.</summary>
    public static string? AddressOf(string? field)
    {
        if (string.IsNullOrWhiteSpace(field))
            return null;
        var value = field.Trim();
        var semicolon = value.IndexOf(';');
        if (semicolon >= 0 && semicolon < 20)
            value = value[(semicolon + 1)..];
        // RFC 6533's utf-8-addr-xtext: a non-ASCII address in a message/delivery-status part, with \x{HEX} escapes.
        if (value.Contains("\\x{", StringComparison.Ordinal))
            value = Utf8AddressEscape().Replace(value, e => Unescape(e.Groups["hex"].ValueSpan));
        var m = Addresses.Email(value).Match(value);
        return m.Success ? Addresses.Clean(m.Value) : null;
    }

    /// <summary>The character of a \x{HEX} escape; U+FFFD for a number that is no character (a surrogate, beyond U+10FFFF).</summary>
    private static string Unescape(ReadOnlySpan<char> hex)
    {
        var codePoint = int.Parse(hex, System.Globalization.NumberStyles.HexNumber, System.Globalization.CultureInfo.InvariantCulture);
        return codePoint is > 0x10FFFF or (>= 0xD800 and <= 0xDFFF) ? "\uFFFD" : char.ConvertFromUtf32(codePoint);
    }

    [GeneratedRegex(@"\\x\{(?<hex>[0-9A-Fa-f]{1,6})\}")]
    private static partial Regex Utf8AddressEscape();

    /// <summary>Diagnostic-Code without its type ("smtp; 550 …" → "550 …").</summary>
    public static string? DiagnosticText(string? field)
    {
        if (string.IsNullOrWhiteSpace(field))
            return null;
        var value = field.Trim();
        var m = DiagnosticType().Match(value);
        // The type says which program failed when it is not SMTP (X-Unix: a local delivery program); keep that one.
        if (!m.Success || value.StartsWith("x-unix", StringComparison.OrdinalIgnoreCase))
            return value;
        return value[m.Length..].Trim();
    }

    [GeneratedRegex(@"^(?<name>[A-Za-z][A-Za-z0-9-]{1,40})[ \t]*:[ \t]*(?<value>.*)$")]
    private static partial Regex FieldLine();

    [GeneratedRegex(@"^\s*(final|original)-recipient\s*:", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex RecipientFieldInText();

    [GeneratedRegex(@"^(smtp|x-[a-z0-9-]+|x400|x\.400|unix|mail|lmtp)\s*;", RegexOptions.IgnoreCase)]
    private static partial Regex DiagnosticType();
}
