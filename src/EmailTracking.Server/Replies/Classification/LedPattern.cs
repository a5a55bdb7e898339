using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// A large alternation of phrases, tried only where one of its leading words starts.
/// </summary>
/// <remarks>
/// <para>The out-of-office rules are alternations of fifty phrases in a dozen languages. Where a match may start, .NET's
/// generated matcher can only narrow to "one of these twenty letters", and then tries every alternative at nearly
/// every position of the text: 7 to 22 µs for a 150-character reply, for each of them (bench/replies, session 35). A
/// person's reply that says "I'm" or "I will" paid that three or four times over, for patterns that could not match.</para>
/// <para>Every alternative of such a pattern begins with one of a few words: its leads ("i'm", "ich bin", "nos
/// bureaux", "不在"). The pattern is compiled anchored (<c>\G</c>) and tried at each place a lead starts, from the
/// first on; the first success is the match the unanchored pattern finds, because no match can start anywhere else,
/// and at that place the alternatives are tried in their order as the whole pattern would. Lookbehinds and <c>\b</c>
/// still see the text before the place (<see cref="Regex.Match(string, int)"/>), and <c>^</c> still means the start of
/// the text. The leads must cover every alternative: a test draws random phrases from each alternative and checks
/// that both find the same match.</para>
/// <para>ASCII leads are sought together in one vectorised pass; the others (Japanese, Chinese, accented words) one by
/// one, and only in a text that is not all ASCII: mixed in with the rest they would make the whole search fall back to a
/// much slower algorithm.</para>
/// </remarks>
internal sealed class LedPattern
{
    private readonly Regex anchored;
    private readonly SearchValues<string> ascii;
    private readonly string[] others;

    /// <param name="anchored">The pattern as <c>\G(?:…)</c>.</param>
    /// <param name="leads">Words one of which starts every match (lower case, as the text is).</param>
    public LedPattern(Regex anchored, params string[] leads)
    {
        if (!anchored.ToString().StartsWith(@"\G", StringComparison.Ordinal))
            throw new ArgumentException("The pattern must be anchored with \\G.", nameof(anchored));
        this.anchored = anchored;
        ascii = SearchValues.Create([.. leads.Where(l => Ascii.IsValid(l))], StringComparison.Ordinal);
        others = [.. leads.Where(l => !Ascii.IsValid(l))];
    }

    /// <summary>The pattern's anchored form, for tests.</summary>
    internal Regex Anchored => anchored;

    public bool IsMatch(string text) => Match(text).Success;

    /// <summary>The first match in the text, as the unanchored pattern would find it; <see cref="Match.Empty"/> when none.</summary>
    public Match Match(string text)
    {
        var span = text.AsSpan();
        // The next place each non-ASCII lead starts at or after the current position (-1: none left), found lazily.
        int[]? next = null;
        if (others.Length > 0 && !Ascii.IsValid(span))
        {
            next = new int[others.Length];
            Array.Fill(next, int.MinValue);
        }
        var position = 0;
        while (position < text.Length)
        {
            var found = span[position..].IndexOfAny(ascii);
            var at = found < 0 ? int.MaxValue : position + found;
            if (next is not null)
            {
                for (var i = 0; i < others.Length; i++)
                {
                    if (next[i] != -1 && next[i] < position)
                        next[i] = text.IndexOf(others[i], position, StringComparison.Ordinal);
                    if (next[i] >= 0 && next[i] < at)
                        at = next[i];
                }
            }
            if (at == int.MaxValue)
                break;
            var match = anchored.Match(text, at);
            if (match.Success)
                return match;
            position = at + 1;
        }
        return System.Text.RegularExpressions.Match.Empty;
    }
}
