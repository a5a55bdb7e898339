namespace EmailTracking.Server.Replies.Classification;

/// <summary>Small text helpers that run on every message, written without regular expressions.</summary>
internal static class TextTools
{
    /// <summary>
    /// The text with every run of white space made one space and the ends trimmed, optionally lower-cased, reading at
    /// most <paramref name="max"/> characters of it.
    /// </summary>
    public static string Squeeze(string text, int max, bool lower)
    {
        var length = Math.Min(text.Length, max);
        if (length == 0)
            return "";
        var squeezed = string.Create(length, text, static (span, source) =>
        {
            var written = 0;
            var space = false;
            for (var i = 0; i < span.Length; i++)
            {
                var c = source[i];
                if (char.IsWhiteSpace(c))
                {
                    space = true;
                    continue;
                }
                if (space && written > 0)
                    span[written++] = ' ';
                space = false;
                span[written++] = c;
            }
            span[written..].Fill(' ');
        }).TrimEnd();
        // One call for the whole string: its ASCII path is vectorised, a call per character is not.
        return lower ? squeezed.ToLowerInvariant() : squeezed;
    }
}
