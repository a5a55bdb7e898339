using System.Buffers;
using System.Text;

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
        // Never half a character beyond the BMP: the squeezed text is stored (a bounce's diagnostic) and shown.
        if (length < text.Length && length > 0 && char.IsHighSurrogate(text[length - 1]))
            length--;
        if (length == 0)
            return "";
        var squeezed = string.Create(length, (text, lower), static (span, state) =>
        {
            var (source, lower) = state;
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
                span[written++] = lower ? LowerLatin1(c) : c;
            }
            span[written..].Fill(' ');
        }).TrimEnd();
        // Latin-1 is lowered above, character by character, as ToLowerInvariant would; anything beyond it (other than
        // punctuation such as ’) goes through one ToLowerInvariant call for the whole string, whose non-ASCII path is
        // a call into ICU: most mail in the seven languages never needs it.
        return lower && NeedsFullLowering(squeezed) ? squeezed.ToLowerInvariant() : squeezed;
    }

    /// <summary>ToLowerInvariant for ASCII and Latin-1 (À–Þ except ×); any other character is returned as it is.</summary>
    private static char LowerLatin1(char c)
    {
        if (c < 0x80)
            return (uint)(c - 'A') <= 'Z' - 'A' ? (char)(c | 0x20) : c;
        return c is >= '\u00C0' and <= '\u00DE' and not '\u00D7' ? (char)(c + 0x20) : c;
    }

    /// <summary>Whether the text holds characters <see cref="LowerLatin1"/> does not know (beyond Latin-1, outside General Punctuation).</summary>
    private static bool NeedsFullLowering(string text)
    {
        var span = text.AsSpan();
        var i = span.IndexOfAnyExceptInRange('\0', '\u00FF');
        if (i < 0)
            return false;
        foreach (var c in span[i..])
        {
            if (c > '\u00FF' && c is < '\u2000' or > '\u206F')
                return true;
        }
        return false;
    }
}

/// <summary>
/// Words sought as they are written (the text is lower case already). The ASCII ones are sought together in one
/// vectorised pass; the others (Japanese, Chinese, accented words) one by one, and only in a text that is not all ASCII:
/// mixed in with the rest they would make the whole search fall back to a much slower algorithm (for the out-of-office
/// statement words, 1.4 µs instead of 0.65 for a 150-character reply).
/// </summary>
internal sealed class Words(params string[] words)
{
    private readonly SearchValues<string> ascii = SearchValues.Create(words.Where(w => Ascii.IsValid(w)).ToArray(), StringComparison.Ordinal);
    private readonly string[] others = words.Where(w => !Ascii.IsValid(w)).ToArray();

    public bool AnyIn(string text) => AnyIn(text, Ascii.IsValid(text));

    /// <param name="textIsAscii">Whether the text is all ASCII, when the caller knows it already.</param>
    public bool AnyIn(string text, bool textIsAscii)
    {
        if (text.AsSpan().ContainsAny(ascii))
            return true;
        if (textIsAscii)
            return false;
        foreach (var word in others)
        {
            if (text.Contains(word, StringComparison.Ordinal))
                return true;
        }
        return false;
    }
}
