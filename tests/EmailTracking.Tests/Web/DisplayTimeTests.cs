using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Html;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The markup every time on the pages is written with: a time element carrying the instant in UTC (ISO 8601), whose
/// text is right without script; the app's script rewrites it into the reader's zone (see LocalTimesBrowserTests).
/// </summary>
public sealed class DisplayTimeTests
{
    static string Html(IHtmlContent content)
    {
        using var writer = new StringWriter();
        content.WriteTo(writer, System.Text.Encodings.Web.HtmlEncoder.Default);
        return writer.ToString();
    }

    static readonly DateTimeOffset Vienna = new(2025, 1, 15, 21, 30, 5, TimeSpan.FromHours(1));

    [Fact]
    public void A_time_is_a_time_element_with_its_utc_instant_and_utc_text()
    {
        Assert.Equal("<time datetime=\"2025-01-15T20:30:05.0000000Z\">2025-01-15 20:30:05 UTC</time>", Html(Display.When(Vienna)));
        Assert.Equal("2025-01-15 20:30:05 UTC", Display.Time(Vienna));
    }

    [Fact]
    public void A_missing_time_is_its_word_encoded()
    {
        Assert.Equal("never", Html(Display.When(null, "never")));
        Assert.Equal("—", System.Net.WebUtility.HtmlDecode(Html(Display.When(null, "—"))));
        Assert.Equal("&lt;b&gt;", Html(Display.When(null, "<b>")));
        Assert.Equal(Html(Display.When(Vienna)), Html(Display.When((DateTimeOffset?)Vienna, "never")));
    }

    [Fact]
    public void A_time_kept_in_utc_on_purpose_says_so_to_the_script()
    {
        Assert.Equal("<time datetime=\"2025-01-15T20:30:05.0000000Z\" data-zone=\"utc\">2025-01-15 20:30:05 UTC</time>", Html(Display.WhenUtc(Vienna)));
    }
}
