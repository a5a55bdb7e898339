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
    protected IPlaywright playwright = null!;
    protected IBrowser browser = null!;

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(20_000);
        app.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        app.StartServer();
        baseUrl = app.ClientOptions.BaseAddress.ToString().TrimEnd('/');
        playwright = await Playwright.CreateAsync();
        browser = await Chromium.LaunchAsync(playwright);
    }

    public async Task DisposeAsync()
    {
        await browser.DisposeAsync();
        playwright.Dispose();
        await ((IAsyncLifetime)app).DisposeAsync();
    }
}
