using System.Net;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Browser tests of pages served by a test's own server in this process (an <see cref="AppFactory"/> on a real Kestrel
/// port), where the test drives what the server cannot be asked over HTTP: a fake clock, a recording transport, its
/// database. Chromium opens <see cref="baseUrl"/>.
/// </summary>
public abstract class InProcessBrowserTest<TApp> : IAsyncLifetime where TApp : AppFactory, new()
{
    protected const string Password = "Correct-Horse-9";
    protected readonly TApp app = new();
    protected string baseUrl = "";
    protected IBrowser browser = null!;

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(20_000);
        app.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        app.StartServer();
        baseUrl = app.ClientOptions.BaseAddress.ToString().TrimEnd('/');
        browser = await Chromium.SharedAsync();
    }

    /// <summary>
    /// A client of the real server (not the in-memory one: Kestrel's own limits apply), signed in as
    /// <paramref name="user"/>, and the antiforgery token of the page at <paramref name="path"/>, for a form posted to it.
    /// </summary>
    protected async Task<(HttpClient Web, string Token)> SignedInWithTokenAsync(TestUser user, string path)
    {
        var web = new HttpClient(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl) };
        await Web.SignInTests.PostLoginAsync(web, new() { ["Email"] = user.Email, ["Password"] = Password });
        var page = await web.GetStringAsync(path);
        return (web, System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value);
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Chromium.ReleaseAsync(browser);
        }
        finally
        {
            await ((IAsyncLifetime)app).DisposeAsync();
        }
    }
}
