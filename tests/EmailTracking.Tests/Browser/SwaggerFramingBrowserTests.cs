using System.Net;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Swagger UI (/swagger), whose "Try it out" calls the API with the signed-in user's cookie, may not be framed by
/// another site (clickjacking), as no other page of the server may: its answers carry frame-ancestors 'none' and
/// X-Frame-Options: DENY. Its own inline bootstrap still runs, and it still lists the API's operations in Chromium.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class SwaggerFramingBrowserTests() : ServerBrowserTest("et-web-swagger-")
{
    [Fact]
    public async Task Swagger_ui_works_and_no_other_site_can_frame_it()
    {
        using (var http = new HttpClient { BaseAddress = new Uri(server.BaseUrl) })
        {
            foreach (var path in new[] { "/swagger/index.html", "/swagger/index.js", "/swagger/v1/swagger.json" })
            {
                using var res = await http.GetAsync(path);
                Assert.Equal(HttpStatusCode.OK, res.StatusCode);
                Assert.Equal(["'none'"], EmailTracking.Tests.Outlook.AddinFramingTests.FrameAncestors(res));
                Assert.Equal("DENY", res.Headers.GetValues("X-Frame-Options").Single());
            }
        }

        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        var problems = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") lock (problems) problems.Add(m.Text); };
        page.PageError += (_, e) => { lock (problems) problems.Add("uncaught: " + e); };
        await context.AddInitScriptAsync("document.addEventListener('securitypolicyviolation', e => " +
                                         "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI), true);");

        // Swagger UI itself: its operations listed, nothing refused by the policy.
        await page.GotoAsync(server.BaseUrl + "/swagger/index.html");
        await Assertions.Expect(page.Locator(".opblock").First).ToBeVisibleAsync(new() { Timeout = 30_000 });
        await Assertions.Expect(page.Locator(".opblock-summary-path", new PageLocatorOptions { HasText = "/api/messages" }).First).ToBeVisibleAsync();
        await Chromium.ShotAsync(page, "swagger-01-ui");
        lock (problems) Assert.True(problems.Count == 0, string.Join("\n", problems));

        // The server as deployed on a public HTTPS origin (a public page may not frame a loopback address at all), and
        // another site that shows its Swagger UI in a frame: Chromium refuses, and says why.
        const string deployed = "https://et.example";
        await context.RouteAsync(deployed + "/**", async route =>
        {
            var answer = await route.FetchAsync(new RouteFetchOptions { Url = server.BaseUrl + new Uri(route.Request.Url).PathAndQuery });
            await route.FulfillAsync(new RouteFulfillOptions { Response = answer });
        });
        await context.RouteAsync("https://decoy.example/", route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 200, ContentType = "text/html",
            Body = $"<!doctype html><title>decoy</title><iframe id=\"ui\" src=\"{deployed}/swagger/index.html\" width=\"1000\" height=\"700\"></iframe>",
        }));
        await page.GotoAsync("https://decoy.example/");
        await page.WaitForFunctionAsync("() => document.getElementById('ui') !== null");
        var framed = page.FrameLocator("#ui");
        for (var waited = 0; waited < 100; waited++)
        {
            lock (problems) if (problems.Any(p => p.Contains("frame-ancestors 'none'", StringComparison.Ordinal))) break;
            await Task.Delay(100);
        }
        lock (problems) Assert.Contains(problems, p => p.Contains("violates the following Content Security Policy directive: \"frame-ancestors 'none'\"", StringComparison.Ordinal));
        await Assertions.Expect(framed.Locator(".opblock")).ToHaveCountAsync(0);
        Assert.DoesNotContain(page.Frames, f => f.Url.StartsWith(deployed, StringComparison.Ordinal));
        await context.CloseAsync();
    }
}
