using EmailTracking.Server.Web;

namespace EmailTracking.Tests.Web;

public class TextClipTests
{
    // "ab😀cd": the emoji is two UTF-16 units, at 2 and 3.
    const string WithEmoji = "ab\U0001F600cd";

    [Theory]
    [InlineData(10, WithEmoji)]
    [InlineData(6, WithEmoji)]
    [InlineData(4, "ab\U0001F600")]
    [InlineData(3, "ab")] // not "ab" and half the emoji
    [InlineData(2, "ab")]
    [InlineData(0, "")]
    public void Prefix_keeps_whole_characters(int max, string expected)
    {
        Assert.Equal(expected, TextClip.Prefix(WithEmoji, max));
        Assert.False(HasLoneSurrogate(TextClip.Prefix(WithEmoji, max)));
    }

    [Theory]
    [InlineData(6, WithEmoji)]
    [InlineData(5, "ab\U0001F600…")]
    [InlineData(4, "ab…")] // the emoji and the ellipsis do not fit in 4: not "ab" + half + "…"
    [InlineData(3, "ab…")]
    [InlineData(1, "…")]
    public void Shorten_keeps_whole_characters_and_stays_within_the_length(int max, string expected)
    {
        var shortened = TextClip.Shorten(WithEmoji, max);
        Assert.Equal(expected, shortened);
        Assert.True(shortened.Length <= max);
        Assert.False(HasLoneSurrogate(shortened));
    }

    [Fact]
    public void Null_stays_null_and_bad_lengths_are_refused()
    {
        Assert.Null(TextClip.PrefixOrNull(null, 5));
        Assert.Null(TextClip.ShortenOrNull(null, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => TextClip.Prefix("abc", -1));
        Assert.Throws<ArgumentOutOfRangeException>(() => TextClip.Shorten("abc", 0));
    }

    internal static bool HasLoneSurrogate(string s)
    {
        for (var i = 0; i < s.Length; i++)
        {
            if (char.IsHighSurrogate(s[i]) && i + 1 < s.Length && char.IsLowSurrogate(s[i + 1])) { i++; continue; }
            if (char.IsSurrogate(s[i])) return true;
        }
        return false;
    }
}
