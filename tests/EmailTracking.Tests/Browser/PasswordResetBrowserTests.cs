using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// "Forgot your password?" in Chromium against the real server: from the sign-in page to the mail (through a local
/// fake relay), the link, the new password and signing in with it; the session left open elsewhere is signed out and
/// the link does not work twice. The server listens on a port chosen first, so that its public base URL, which reset
/// links are built on, is its own. Screenshots of each page.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class PasswordResetBrowserTests : IAsyncLifetime
{
    const string Old = "Forgotten-Horse-9";
    const string New = "Remembered-Horse-10";
    const string Email = "flynn@encom.test";

    readonly string dir = Directory.CreateTempSubdirectory("et-reset-web-").FullName;
    readonly FakeSmtpRelay relay = new();
    ServerProcess server = null!;
    IBrowser browser = null!;
    Dictionary<string, string> settings = null!;

    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    static int FreePort()
    {
        var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        var port = FreePort();
        settings = new()
        {
            ["Database__Provider"] = "Sqlite",
            ["ConnectionStrings__Default"] = $"Data Source={Path.Combine(dir, "web.db")}",
            ["Tracking__PublicBaseUrl"] = $"http://127.0.0.1:{port}",
            ["Mail__From"] = "EmailTracking <no-reply@encom.test>",
            ["Mail__Smtp__Host"] = "127.0.0.1",
            ["Mail__Smtp__Port"] = relay.Port.ToString(System.Globalization.CultureInfo.InvariantCulture),
            ["Mail__Smtp__Security"] = "None",
        };
        server = await ServerProcess.StartAsync(dir, settings, port);
        browser = await Chromium.SharedAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Chromium.ReleaseAsync(browser);
        }
        finally
        {
            if (server is not null) await server.DisposeAsync();
            relay.Dispose();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    async Task<IPage> NewPageAsync() =>
        await (await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } })).NewPageAsync();

    async Task SignInAsync(IPage page, string password)
    {
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", Email);
        await page.FillAsync("#Password", password);
        await page.ClickAsync("button[type=submit]");
    }

    [Fact]
    public async Task A_forgotten_password_is_reset_from_the_sign_in_page_through_the_mailed_link()
    {
        await ServerProcess.AddUserAsync(settings, Email, "Encom", "team", Old);
        // A session left open on another computer (a password the operator chose: it asks for the user's own first).
        var elsewhere = await NewPageAsync();
        await SignInAsync(elsewhere, Old);
        await Assertions.Expect(elsewhere).ToHaveURLAsync(server.BaseUrl + "/password");

        var page = await NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.ClickAsync("#forgot");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/forgot-password");
        await page.FillAsync("#Email", Email);
        await Shot(page, "70-forgot-password");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator("#sent")).ToContainTextAsync($"If {Email} is the email of an EmailTracking account");
        await Assertions.Expect(page.Locator("#sent")).ToContainTextAsync("The link works once, for 1 hour.");
        await Shot(page, "71-forgot-password-sent");

        // The mail, through the server's relay, with a link on the server's public base URL.
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(15);
        while (relay.To(Email).Count == 0)
        {
            Assert.True(DateTime.UtcNow < until, "no reset mail arrived");
            await Task.Delay(100);
        }
        var mail = Assert.Single(relay.To(Email));
        Assert.Equal("Reset your EmailTracking password", mail.Subject);
        var link = Regex.Match(mail.TextBody ?? "", @"http://\S+/reset-password\?u=\S+").Value;
        Assert.StartsWith(server.BaseUrl + "/reset-password?u=", link);

        await page.GotoAsync(link);
        await Assertions.Expect(page.Locator("#reset-password")).ToHaveAttributeAsync("data-state", "Ready");
        await Assertions.Expect(page.Locator("#reset-password")).ToContainTextAsync(Email);
        // Identity's rules, with their message (the browser's own minlength check let through: the server's is tested).
        await page.EvalOnSelectorAllAsync("input[minlength]", "els => els.forEach(e => e.removeAttribute('minlength'))");
        await page.FillAsync("input[name=New]", "Short1a");
        await page.FillAsync("input[name=Confirm]", "Short1a");
        await page.ClickAsync("#reset-password button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("Passwords must be at least 10 characters.");
        await Shot(page, "72-reset-password-rules");
        await page.FillAsync("input[name=New]", New);
        await page.FillAsync("input[name=Confirm]", New);
        await page.ClickAsync("#reset-password button[type=submit]");
        await Assertions.Expect(page.Locator("#reset-password")).ToHaveAttributeAsync("data-state", "Done");
        await Shot(page, "73-reset-password-done");

        // Sign in with the new password.
        await page.ClickAsync("#reset-password a.button");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", Email);
        await page.FillAsync("#Password", New);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");

        // The other session is over at its next request.
        await elsewhere.ReloadAsync();
        await Assertions.Expect(elsewhere).ToHaveURLAsync(new Regex("/login"));

        // The link worked once.
        await page.GotoAsync(link);
        await Assertions.Expect(page.Locator("#reset-password")).ToHaveAttributeAsync("data-state", "Invalid");
        await Assertions.Expect(page.Locator("#reset-password")).ToContainTextAsync("it was used already");
        await Shot(page, "74-reset-password-used");
        // A refused form and a used link come back with 400, which the browser logs as a failed load.
        errors.RemoveAll(e => e.Contains("status of 400", StringComparison.Ordinal));
        Assert.Empty(errors);
    }
}
