namespace EmailTracking.Server.Web;

/// <summary>
/// Shortens text to a length that a column, a field or a message allows, counted in UTF-16 units as .NET and the
/// databases' length limits count it, and never between the two halves of a character beyond the BMP (an emoji): a
/// lone half is not text PostgreSQL takes, so a row holding one fails to save (with every other row of its batch or
/// transaction), and in JSON or a page it shows as a broken character.
/// </summary>
public static class TextClip
{
    /// <summary>The first <paramref name="max"/> units of the text at most, one fewer when the last would be half a character.</summary>
    public static string Prefix(string text, int max)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(max);
        if (text.Length <= max) return text;
        return text[..SafeEnd(text, max)];
    }

    /// <inheritdoc cref="Prefix(string, int)"/>
    public static string? PrefixOrNull(string? text, int max) => text is null ? null : Prefix(text, max);

    /// <summary>
    /// The text itself when it fits in <paramref name="max"/> units; else as much of it as fits with an ellipsis
    /// (one unit) standing for the rest.
    /// </summary>
    public static string Shorten(string text, int max)
    {
        ArgumentOutOfRangeException.ThrowIfLessThan(max, 1);
        if (text.Length <= max) return text;
        return string.Concat(text.AsSpan(0, SafeEnd(text, max - 1)), "…");
    }

    /// <inheritdoc cref="Shorten(string, int)"/>
    public static string? ShortenOrNull(string? text, int max) => text is null ? null : Shorten(text, max);

    /// <summary>Where a cut before <paramref name="end"/> keeps whole characters: one unit earlier when it would split a pair.</summary>
    static int SafeEnd(string text, int end) => end > 0 && char.IsHighSurrogate(text[end - 1]) ? end - 1 : end;
}
