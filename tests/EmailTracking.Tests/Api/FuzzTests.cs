using System.Net;
using System.Text;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Routing;

namespace EmailTracking.Tests.Api;

/// <summary>
/// Hostile input on every public endpoint: the answer is the GIF, a 404 or another 4xx — never a 500 — and nothing is
/// recorded for a token that does not exist.
/// </summary>
public abstract class FuzzTests(AppFactory app)
{
    static IEnumerable<string> Tokens()
    {
        yield return "";
        yield return "A";
        yield return "AAAAAAAAAAAAAAAAAAAAAAA"; // 23
        yield return "AAAAAAAAAAAAAAAAAAAAAAAAA"; // 25
        yield return "AAAAAAAAAAAAAAAAAAAAAAAA"; // right shape, unknown
        yield return "..%2F..%2F..%2Fetc%2Fpasswd";
        yield return "%2e%2e%5c%2e%2e%5cwindows%5cwin.ini";
        yield return "....//....//";
        yield return "%F0%9F%92%A9%E2%80%AE%E2%80%8B%EF%BB%BF";
        yield return "%C0%AF%C0%AF"; // overlong UTF-8
        yield return "%ZZ";
        yield return "' OR 1=1 --";
        yield return "<script>alert(1)</script>";
        yield return new string('9', 10_000);
        yield return "x.gif.gif";
        yield return "AAAAAAAAAAAAAAAAAAAAAAAA.GIF";
        yield return "AAAAAAAAAAAA%20AAAAAAAAAAA";
    }

    [Fact]
    public async Task Malformed_tokens_on_pixel_and_click_never_fail_and_record_nothing()
    {
        var user = await app.NewUserAsync();
        await user.RegisterSimpleAsync();
        var before = app.WithDb(db => db.Events.Count());
        var client = app.Anonymous();
        foreach (var t in Tokens())
        {
            foreach (var method in new[] { "GET", "HEAD" })
            {
                var pixel = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/o/" + t));
                Assert.True(pixel.StatusCode is HttpStatusCode.OK or HttpStatusCode.NotFound, $"{method} /o/{t[..Math.Min(t.Length, 40)]}: {(int)pixel.StatusCode}");
                if (pixel.StatusCode == HttpStatusCode.OK) Assert.Equal("image/gif", pixel.Content.Headers.ContentType?.MediaType);

                var click = await client.SendAsync(new HttpRequestMessage(new HttpMethod(method), "/c/" + t));
                Assert.True((int)click.StatusCode is >= 400 and < 500, $"{method} /c/{t[..Math.Min(t.Length, 40)]}: {(int)click.StatusCode}");
                Assert.Null(click.Headers.Location);
            }
        }
        Assert.Equal(before, app.WithDb(db => db.Events.Count()));
    }

    [Fact]
    public async Task Unusual_methods_huge_headers_and_odd_paths_are_4xx_never_5xx()
    {
        var client = app.Anonymous();
        var paths = new[] { "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif", "/c/AAAAAAAAAAAAAAAAAAAAAAAA", "/api/messages", "/api/messages/not-a-guid",
            $"/api/messages/{Guid.NewGuid()}", "/api/feed", "/api/tokens", "/api/me", "/login", "/setup", "/messages/x", "/%2e%2e/%2e%2e/etc/passwd",
            "/css/../../appsettings.json", "/swagger/v1/swagger.json", "/api/content", $"/api/content/{Guid.NewGuid()}/stats",
            "/d/AAAAAAAAAAAAAAAAAAAAAAAA", "/d/AAAAAAAAAAAAAAAAAAAAAAAA/visits", $"/d/AAAAAAAAAAAAAAAAAAAAAAAA/visits/{Guid.NewGuid()}/beats",
            "/d/AAAAAAAAAAAAAAAAAAAAAAAA/file", "/d/..%2F..%2Fetc%2Fpasswd/download", "/documents", "/viewer/../appsettings.json" };
        foreach (var method in new[] { "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "PROPFIND", "GET" })
        {
            foreach (var path in paths)
            {
                var req = new HttpRequestMessage(new HttpMethod(method), path);
                req.Headers.TryAddWithoutValidation("User-Agent", new string('U', 20_000));
                req.Headers.TryAddWithoutValidation("Cookie", "et_device=" + new string('c', 8_000) + "; et_session=%%%");
                req.Headers.TryAddWithoutValidation("X-Forwarded-For", "not-an-ip, 999.1.1.1");
                req.Headers.TryAddWithoutValidation("Authorization", "Bearer \u00e9\u00e9\u00e9");
                if (method is "POST" or "PUT" or "PATCH") req.Content = new StringContent("\u0000{{{\"", Encoding.UTF8, "application/json");
                var res = await client.SendAsync(req);
                Assert.True((int)res.StatusCode < 500, $"{method} {path}: {(int)res.StatusCode}");
            }
        }
        // appsettings.json is never served.
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/appsettings.json")).StatusCode);
    }

    /// <summary>Values put in each route parameter of every mapped endpoint.</summary>
    static readonly string[] HostileValues =
    [
        "..%2F..%2Fetc%2Fpasswd", "%F0%9F%92%A9%E2%80%AE%E2%80%8B", "' OR 1=1 --", new string('9', 5_000), "00000000-0000-0000-0000-000000000000",
        "-1", "%ZZ",
    ];

    /// <summary>
    /// Every endpoint the server maps, found from its routing table rather than listed here (so one added later is
    /// covered too): each route parameter filled with hostile values, each with its own methods and with methods it does
    /// not have, anonymous and signed in, with a hostile body and hostile headers. The answer is never a 5xx but for
    /// the mailbox providers' "not configured" problem.
    /// </summary>
    [Fact]
    public async Task Every_mapped_endpoint_answers_hostile_input_without_a_5xx()
    {
        var user = await app.NewUserAsync();
        var endpoints = Routes.Endpoints(app);
        Assert.True(endpoints.Count > 50, $"only {endpoints.Count} endpoints found");
        var failures = new List<string>();
        var requests = 0;
        foreach (var endpoint in endpoints)
        {
            var pattern = endpoint.RoutePattern;
            var methods = endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? [];
            var paths = HostileValues.Select(value => Routes.Path(pattern, parameter => parameter.IsCatchAll ? value + "/" + value : value)).Distinct().ToList();
            if (pattern.Parameters.Count == 0) paths = [paths[0]];
            foreach (var path in paths)
            {
                foreach (var method in methods.Concat(["GET", "POST", "DELETE"]).Distinct())
                {
                    foreach (var client in new[] { app.Anonymous(), user.Client })
                    {
                        using var request = new HttpRequestMessage(new HttpMethod(method), path);
                        request.Headers.TryAddWithoutValidation("User-Agent", new string('U', 8_000));
                        request.Headers.TryAddWithoutValidation("X-Forwarded-For", "not-an-ip, 999.1.1.1");
                        request.Headers.TryAddWithoutValidation("Last-Event-ID", "-99999999999999999999");
                        request.Headers.TryAddWithoutValidation("X-Goog-Channel-Token", "\u0000");
                        if (method is "POST" or "PUT" or "PATCH") request.Content = new StringContent("\u0000{{{\"", Encoding.UTF8, "application/json");
                        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
                        // Headers only: a feed that accepts the request streams until it is closed.
                        using var response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
                        requests++;
                        // The one 5xx allowed: a problem saying that a mailbox provider is not configured on this server
                        // (this test's server has no Google or Microsoft app), which no input can change.
                        var notConfigured = response.StatusCode == HttpStatusCode.ServiceUnavailable
                                            && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
                                            && (await response.Content.ReadAsStringAsync(timeout.Token)).Contains("is not configured on this server", StringComparison.Ordinal);
                        if ((int)response.StatusCode >= 500 && !notConfigured)
                            failures.Add($"{method} {path[..Math.Min(path.Length, 120)]} ({pattern.RawText}): {(int)response.StatusCode}");
                    }
                }
            }
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {requests} requests answered 5xx:\n" + string.Join("\n", failures.Distinct().Take(60)));
    }

    [Fact]
    public async Task Hostile_registration_bodies_are_400_problems()
    {
        var user = await app.NewUserAsync();
        foreach (var body in new[] { "null", "[]", "{\"to\": 5}", "{\"from\": {}}", "\"x\"", "{\"perRecipient\": \"yes\"}", "{\"sentAt\": \"yesterday\"}", "{\"source\": \"martian\"}" })
        {
            var res = await user.Client.PostAsync("/api/messages", new StringContent(body, Encoding.UTF8, "application/json"));
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        }
        var html = "<p>" + string.Concat(Enumerable.Repeat("<div><a href=\"https://x.test/\u202e\">\ud83d\udca9</a>", 400)) + "</p>";
        var ok = await user.Client.PostAsync("/api/messages", System.Net.Http.Json.JsonContent.Create(new { from = user.Email, subject = "\u202e\u0000odd", to = new[] { "a@b.test" }, html }));
        Assert.True(ok.IsSuccessStatusCode, await ok.Content.ReadAsStringAsync());
    }
}

public sealed class FuzzOnSqlite(SqliteApp app) : FuzzTests(app), IClassFixture<SqliteApp>;
