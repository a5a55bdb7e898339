using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Web;

/// <summary>The reset tests' server (a relay, so that reset requests are taken) with these settings on top.</summary>
public sealed class ForwardedHeadersApp(params (string Key, string Value)[] settings) : PasswordResetApp(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        foreach (var (key, value) in settings) builder.UseSetting(key, value);
    }
}

/// <summary>
/// X-Forwarded-For, -Proto and -Host are believed only from the proxies named in <c>Server:KnownProxies</c>; with none
/// named they are not read at all. Otherwise anyone could choose the address an open is recorded from (outside a
/// scanner's range, inside Apple's relay), get a fresh per-client allowance of password reset requests with each
/// request, and choose the host that links are built on. The socket's address is X-Test-Remote-Ip here (see AppFactory).
/// </summary>
public sealed class ForwardedHeadersTests
{
    const string Unlisted = "203.0.113.7";
    const string Proxy = "192.0.2.10";
    const string InProxyRange = "198.51.100.77";

    static HttpRequestMessage From(HttpMethod method, string path, string socket, string? forwardedFor = null, string? forwardedHost = null)
    {
        var req = new HttpRequestMessage(method, path);
        req.Headers.Add("X-Test-Remote-Ip", socket);
        if (forwardedFor is not null) req.Headers.Add("X-Forwarded-For", forwardedFor);
        if (forwardedHost is not null)
        {
            req.Headers.Add("X-Forwarded-Host", forwardedHost);
            req.Headers.Add("X-Forwarded-Proto", "https");
        }
        return req;
    }

    /// <summary>The address the open of a fresh message's pixel, fetched from <paramref name="socket"/>, is recorded with.</summary>
    static async Task<string?> OpenRecordedFromAsync(AppFactory app, TestUser user, string socket, string forwardedFor)
    {
        var reg = await user.RegisterSimpleAsync();
        var pixel = reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        using var res = await app.Anonymous().SendAsync(From(HttpMethod.Get, TestApi.Path(pixel), socket, forwardedFor));
        Assert.Equal(HttpStatusCode.OK, res.StatusCode);
        var id = reg.GetProperty("id").GetGuid();
        return app.WithDb(db => db.Events.AsNoTracking().Single(e => e.TrackedMessageId == id && e.Kind == EventKind.Open).Ip);
    }

    /// <summary>Reset requests from <paramref name="socket"/>, each for a new address; the status of each.</summary>
    static async Task<HttpStatusCode[]> AskForResetsAsync(AppFactory app, string socket, Func<int, string?> forwardedFor, int count)
    {
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < count; i++)
        {
            var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
            browser.DefaultRequestHeaders.Add("X-Test-Remote-Ip", socket);
            if (forwardedFor(i) is { } xff) browser.DefaultRequestHeaders.Add("X-Forwarded-For", xff);
            statuses.Add((await PasswordResetTests.AskAsync(browser, $"nobody-{Guid.NewGuid():N}"[..18] + "@sender.test")).StatusCode);
        }
        return [.. statuses];
    }

    static string FreshClient(int i) => $"100.64.{i / 250}.{i % 250 + 1}";

    [Fact]
    public async Task Without_known_proxies_no_sender_is_believed_about_the_address_an_open_comes_from()
    {
        await using var app = new ForwardedHeadersApp();
        var user = await app.NewUserAsync();
        // 17.58.0.1 is in Apple's relay ranges: a forged header must not make an open the relay's prefetch.
        Assert.Equal(Unlisted, await OpenRecordedFromAsync(app, user, Unlisted, "17.58.0.1"));
        Assert.Equal(Proxy, await OpenRecordedFromAsync(app, user, Proxy, "17.58.0.1"));
    }

    [Fact]
    public async Task Without_known_proxies_a_forwarded_address_does_not_escape_the_reset_limit_per_client()
    {
        await using var app = new ForwardedHeadersApp();
        // A fresh X-Forwarded-For each time is still the one client: its eleventh request in the hour is refused.
        var statuses = await AskForResetsAsync(app, Unlisted, FreshClient, PasswordResetLimits.PerClientPerHour + 1);
        Assert.All(statuses[..^1], s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal((HttpStatusCode)429, statuses[^1]);
    }

    [Fact]
    public async Task Without_known_proxies_the_forwarded_host_does_not_choose_the_links_host()
    {
        await using var app = new ConfiguredApp(("Tracking:PublicBaseUrl", ""));
        var user = await app.NewUserAsync();
        using var req = From(HttpMethod.Post, "/api/messages", Unlisted, forwardedHost: "evil.example");
        req.Content = System.Net.Http.Json.JsonContent.Create(new { from = user.Email, subject = "s", to = new[] { "alan@encom.test" }, html = "<p>x</p>" });
        using var res = await user.Client.SendAsync(req);
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        var pixel = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        Assert.StartsWith("http://localhost/", pixel);
    }

    [Fact]
    public async Task A_listed_proxy_is_believed_and_any_other_sender_is_not()
    {
        // One value separated by commas, as an environment variable gives it (Server__KnownProxies).
        await using var app = new ForwardedHeadersApp(("Server:KnownProxies", $"{Proxy}, 198.51.100.0/24"), ("Tracking:PublicBaseUrl", ""));
        var user = await app.NewUserAsync();
        Assert.Equal("203.0.113.20", await OpenRecordedFromAsync(app, user, Proxy, "203.0.113.20"));
        Assert.Equal("203.0.113.21", await OpenRecordedFromAsync(app, user, InProxyRange, "203.0.113.21"));
        Assert.Equal(Unlisted, await OpenRecordedFromAsync(app, user, Unlisted, "203.0.113.22"));

        // The host: the proxy's word is taken, another sender's is not.
        foreach (var (socket, expected) in new[] { (Proxy, "https://t.example.com/"), (Unlisted, "http://localhost/") })
        {
            using var req = From(HttpMethod.Post, "/api/messages", socket, forwardedHost: "t.example.com");
            req.Content = System.Net.Http.Json.JsonContent.Create(new { from = user.Email, subject = "s", to = new[] { "alan@encom.test" }, html = "<p>x</p>" });
            using var res = await user.Client.SendAsync(req);
            Assert.Equal(HttpStatusCode.Created, res.StatusCode);
            var pixel = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
            Assert.StartsWith(expected, pixel);
        }
    }

    [Fact]
    public async Task Behind_a_listed_proxy_reset_requests_count_per_forwarded_client_and_an_unlisted_sender_cannot_escape_its_count()
    {
        await using var app = new ForwardedHeadersApp(("Server:KnownProxies:0", Proxy));
        // Through the proxy, each client is counted by the address it forwards: many clients are not one.
        var many = await AskForResetsAsync(app, Proxy, FreshClient, PasswordResetLimits.PerClientPerHour + 1);
        Assert.All(many, s => Assert.Equal(HttpStatusCode.OK, s));
        var one = await AskForResetsAsync(app, Proxy, _ => "203.0.113.40", PasswordResetLimits.PerClientPerHour + 1);
        Assert.All(one[..^1], s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal((HttpStatusCode)429, one[^1]);
        // Sent directly by anyone else, the header is not read.
        var direct = await AskForResetsAsync(app, Unlisted, i => FreshClient(i + 100), PasswordResetLimits.PerClientPerHour + 1);
        Assert.All(direct[..^1], s => Assert.Equal(HttpStatusCode.OK, s));
        Assert.Equal((HttpStatusCode)429, direct[^1]);
    }

    [Theory]
    [InlineData("Server:KnownProxies:0", "proxy.internal")]
    [InlineData("Server:KnownProxies:0", "10.0.0.0/33")]
    [InlineData("Server:KnownProxies", "10.0.0.5, 10.0.0.300")]
    public void A_known_proxy_that_is_neither_an_address_nor_a_range_stops_the_server_from_starting(string key, string value)
    {
        using var app = new ConfiguredApp((key, value));
        var e = Assert.ThrowsAny<Exception>(() => app.CreateClient());
        Assert.Contains("Server:KnownProxies", (e.InnerException ?? e).Message);
    }
}
