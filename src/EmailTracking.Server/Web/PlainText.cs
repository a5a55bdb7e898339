using System.Buffers;
using System.Text;

namespace EmailTracking.Server.Web;

/// <summary>
/// Free text from a request (a subject, a name, a description) made fit to store and show. PostgreSQL text cannot hold
/// U+0000, so a NUL stored as given failed the insert (a 500 on PostgreSQL, while SQLite kept it); a line break in a
/// name or a mail header starts a new line where none belongs ("Evil\r\nBcc: a@b.com" read as a header in a list, a
/// log or an export), and other control characters (BEL, ESC) are nothing a person meant to write.
/// </summary>
public static class PlainText
{
    /// <summary>C0 controls, DEL and C1 controls: what <see cref="char.IsControl(char)"/> is true of.</summary>
    static readonly SearchValues<char> Controls = SearchValues.Create(
        [.. Enumerable.Range(0, 0x20).Select(i => (char)i), '\u007f', .. Enumerable.Range(0x80, 0x20).Select(i => (char)i)]);

    /// <summary>
    /// A setting's length of time in words, for a message to a person: "an hour", "2 hours", "a minute", "5 minutes",
    /// "30 seconds" (the largest whole unit; seconds rounded up).
    /// </summary>
    public static string Duration(TimeSpan t) =>
        t.TotalHours >= 1 && t.TotalHours == Math.Floor(t.TotalHours) ? (t.TotalHours == 1 ? "an hour" : $"{t.TotalHours:0} hours")
        : t.TotalMinutes >= 1 && t.TotalMinutes == Math.Floor(t.TotalMinutes) ? (t.TotalMinutes == 1 ? "a minute" : $"{t.TotalMinutes:0} minutes")
        : Math.Ceiling(t.TotalSeconds) <= 1 ? "a second" : $"{Math.Ceiling(t.TotalSeconds):0} seconds";

    /// <summary>
    /// The text as one line: a line break or tab (text pasted from a document) is a space, runs of them and the spaces
    /// around them one space, and at either end none; any other control character (NUL, BEL, ESC) is dropped. Text
    /// without control characters is returned as it is.
    /// </summary>
    public static string OneLine(string text)
    {
        if (!text.AsSpan().ContainsAny(Controls)) return text;
        var kept = new StringBuilder(text.Length);
        foreach (var c in text)
        {
            if (c is '\r' or '\n' or '\t') kept.Append('\n');
            else if (!char.IsControl(c)) kept.Append(c);
        }
        var line = kept.ToString();
        if (!line.Contains('\n')) return line;
        return string.Join(' ', line.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
    }

    /// <inheritdoc cref="OneLine(string)"/>
    public static string? OneLineOrNull(string? text) => text is null ? null : OneLine(text);

    /// <summary>
    /// True when the text holds a control character. A URL never does (RFC 3986 has them percent-encoded): one that
    /// does is refused rather than cleaned, as a cleaned URL would be another address than the one given.
    /// </summary>
    public static bool HasControl(string text) => text.AsSpan().ContainsAny(Controls);
}
