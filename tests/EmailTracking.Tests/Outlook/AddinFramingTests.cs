using System.Net;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.Options;

namespace EmailTracking.Tests.Outlook;

/// <summary>
/// Who may frame the add-in's pages: Outlook's own web origins (Outlook on the web and new Outlook show the panes in a
/// frame of theirs), nobody else; the rest of the site is never framed. The browser side is in OutlookPaneTests.
/// </summary>
public sealed class AddinFramingTests
{
    public static readonly string[] OutlookAncestors =
        ["https://outlook.office.com", "https://outlook.office365.com", "https://outlook.live.com", "https://*.cloud.microsoft"];

    /// <summary>The sources of the response's CSP frame-ancestors directive; none when it has none.</summary>
    public static string[] FrameAncestors(HttpResponseMessage res)
    {
        var csp = res.Headers.TryGetValues("Content-Security-Policy", out var values) ? string.Join(";", values) : "";
        var directive = csp.Split(';', StringSplitOptions.TrimEntries).FirstOrDefault(d => d.StartsWith("frame-ancestors ", StringComparison.Ordinal));
        return directive?.Split(' ', StringSplitOptions.RemoveEmptyEntries)[1..] ?? [];
    }

    [Fact]
    public async Task Only_outlooks_origins_may_frame_the_add_in_and_the_rest_of_the_site_is_never_framed()
    {
        await using var app = new ConfiguredApp();
        await app.NewUserAsync();
        var client = app.CreateClient();
        foreach (var path in new[] { "/addin/read.html", "/addin/compose.html", "/addin/launchevent.html", "/addin/launchevent.js" })
        {
            using var res = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal(OutlookAncestors, FrameAncestors(res));
            Assert.False(res.Headers.Contains("X-Frame-Options"), path);
        }
        foreach (var path in new[] { "/login", "/setup", "/api/outlook/config" })
        {
            using var res = await client.GetAsync(path);
            Assert.Equal(["'none'"], FrameAncestors(res));
            Assert.Equal("DENY", res.Headers.GetValues("X-Frame-Options").Single());
        }
    }

    [Fact]
    public async Task A_deployment_can_name_its_own_outlook_origins()
    {
        await using var app = new ConfiguredApp(("OutlookAddin:FrameAncestors:0", "https://outlook.office365.us"),
            ("OutlookAddin:FrameAncestors:1", "https://*.apps.mil"));
        using var res = await app.CreateClient().GetAsync("/addin/read.html");
        Assert.Equal(["https://outlook.office365.us", "https://*.apps.mil"], FrameAncestors(res));
    }

    [Theory]
    [InlineData("https://outlook.example.test; script-src *")]
    [InlineData("http://outlook.example.test")]
    [InlineData("*")]
    [InlineData("https://outlook.example.test/path")]
    public void A_frame_ancestor_that_is_not_an_https_origin_stops_the_server_from_starting(string source)
    {
        using var app = new ConfiguredApp(("OutlookAddin:FrameAncestors:0", source));
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("OutlookAddin:FrameAncestors", (e as OptionsValidationException ?? e.InnerException ?? e).Message);
    }
}

/// <summary>launchevent.js carries the server's origin: classic Outlook's JavaScript-only runtime has no other way to learn it.</summary>
public sealed class LaunchEventScriptTests
{
    [Fact]
    public async Task The_on_send_script_is_served_with_the_servers_origin_written_in()
    {
        await using var app = new SqliteApp();
        await app.InitializeAsync();
        var client = app.CreateClient();
        using var res = await client.GetAsync("/addin/launchevent.js");
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        Assert.Equal("text/javascript", res.Content.Headers.ContentType?.MediaType);
        var text = await res.Content.ReadAsStringAsync();
        Assert.DoesNotContain(EmailTracking.Server.Outlook.LaunchEventScript.OriginPlaceholder, text);
        Assert.Contains("\"http://localhost\"", text.Replace('`', '"').Replace('\'', '"'));
        Assert.Contains("onMessageSendHandler", text);
        Assert.Equal(AddinFramingTests.OutlookAncestors, AddinFramingTests.FrameAncestors(res));
        Assert.Equal(res.Content.Headers.ContentLength, System.Text.Encoding.UTF8.GetByteCount(text));

        // Another host name in the request: that origin (the file is not cached across hosts).
        using var other = new HttpRequestMessage(HttpMethod.Get, "/addin/launchevent.js");
        other.Headers.Host = "t.example.com";
        var otherText = await (await client.SendAsync(other)).Content.ReadAsStringAsync();
        Assert.Contains("\"http://t.example.com\"", otherText.Replace('`', '"').Replace('\'', '"'));

        using var head = await client.SendAsync(new HttpRequestMessage(HttpMethod.Head, "/addin/launchevent.js"));
        Assert.Equal(HttpStatusCode.OK, head.StatusCode);
    }
}
