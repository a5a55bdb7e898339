using System.Net;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Html;

namespace EmailTracking.Tests.Web;

/// <summary>
/// The markup outsiders' text is written with among the pages' own words (OutsidersTextBrowserTests shows it in
/// Chromium): a name or a subject in a &lt;bdi&gt; as written, except what would end the isolation early; an address,
/// a URL or a machine's text in a &lt;bdi class="exact"&gt; with every invisible formatting character a U+FFFD.
/// </summary>
public sealed class DisplayBidiTests
{
    /// <summary>The HTML as written, with the encoder's character references read back.</summary>
    static string Html(IHtmlContent content)
    {
        using var writer = new StringWriter();
        content.WriteTo(writer, System.Text.Encodings.Web.HtmlEncoder.Default);
        return WebUtility.HtmlDecode(writer.ToString().Replace("&lt;", "&amp;lt;", StringComparison.Ordinal).Replace("&gt;", "&amp;gt;", StringComparison.Ordinal));
    }

    [Fact]
    public void A_name_is_isolated_as_written_but_cannot_close_its_isolation_early()
    {
        Assert.Equal("<bdi>Dana \u202Etset.live</bdi>", Html(Display.Isolated("Dana \u202Etset.live")));
        Assert.Equal("<bdi>a\u2067b\u2069c</bdi>", Html(Display.Isolated("a\u2067b\u2069c")));
        Assert.Equal("<bdi>x\uFFFD\u202Eabc</bdi>", Html(Display.Isolated("x\u2069\u202Eabc")));
        Assert.Equal("<bdi>a\uFFFD\uFFFDb</bdi>", Html(Display.Isolated("a\u2029\u0085b")));
        Assert.Equal("<bdi>&lt;b&gt;</bdi>", Html(Display.Isolated("<b>")));
        Assert.Equal("(no subject)", Html(Display.Subject("")));
    }

    [Fact]
    public void An_address_shows_every_hidden_character_and_so_can_never_show_as_another()
    {
        Assert.Equal("<bdi class=\"exact\">\uFFFDmoc.knab-terces@target.test</bdi>", Html(Display.Exact("\u202Emoc.knab-terces@target.test")));
        Assert.Equal("pay\uFFFDpal.com\uFFFD\uFFFD\uFFFD", Display.Plain("pay\u200Bpal.com\u200E\uFEFF\U000E0041"));
        Assert.Equal("ordinary text, עברית and عربي", Display.Plain("ordinary text, עברית and عربي"));
        Assert.Equal("<bdi>Dana \u202Etset.live</bdi> &lt;<bdi class=\"exact\">dana@target.test</bdi>&gt;", Html(Display.Person("Dana \u202Etset.live", "dana@target.test")));
        Assert.Equal("<bdi class=\"exact\">dana@target.test</bdi>", Html(Display.Person(null, "dana@target.test")));
    }
}
