using System.Globalization;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Times in the reader's own time zone: the pages write each time in UTC inside a time element, and the app's script
/// shows it in the browser's zone with the exact UTC time as its tooltip, on the rows the live feed adds too. The same
/// message is read from New York and from Tokyo (British English, so that the expected text is fixed), and once
/// without script, where the UTC text stands.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class LocalTimesBrowserTests() : ServerBrowserTest("et-times-")
{
    const string Password = "Correct-Horse-9";
    const string AppleMail = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";

    /// <summary>When the message left: 20:30 UTC on 15 January 2025, 15:30 in New York (EST) and 05:30 the next day in Tokyo.</summary>
    static readonly DateTimeOffset Sent = new(2025, 1, 15, 20, 30, 0, TimeSpan.Zero);

    Task<IBrowserContext> ContextAsync(string? zone, bool script = true) => browser.NewContextAsync(new BrowserNewContextOptions
    {
        ViewportSize = new ViewportSize { Width = 1360, Height = 900 },
        TimezoneId = zone,
        Locale = "en-GB",
        JavaScriptEnabled = script,
    });

    static async Task<IPage> PageAsync(IBrowserContext context, List<string> errors)
    {
        var page = await context.NewPageAsync();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        return page;
    }

    async Task SignInAsync(IPage page)
    {
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", "flynn@encom.test");
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
    }

    /// <summary>What a time element must show in <paramref name="zone"/>, read from its own datetime: "16 Jan 2025, 05:30".</summary>
    static async Task AssertLocalAsync(ILocator time, string zone)
    {
        await Assertions.Expect(time).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"));
        var iso = (await time.GetAttributeAsync("datetime"))!;
        var at = DateTimeOffset.Parse(iso, CultureInfo.InvariantCulture);
        var local = TimeZoneInfo.ConvertTime(at, TimeZoneInfo.FindSystemTimeZoneById(zone));
        // The month as en-GB abbreviates it ("Sept" for September in recent ICU data, "Sep" in older).
        await Assertions.Expect(time).ToHaveTextAsync(new System.Text.RegularExpressions.Regex(
            $"^{local.Day} {local.ToString("MMM", CultureInfo.InvariantCulture)}t? {local.Year}, {local.ToString("HH:mm", CultureInfo.InvariantCulture)}$"));
        Assert.Equal(at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture) + " UTC", await time.GetAttributeAsync("title"));
    }

    [Fact]
    public async Task Times_are_shown_in_the_readers_zone_with_utc_in_the_tooltip_live_rows_too()
    {
        var errors = new List<string>();

        // The first user, and a token for the API, from New York.
        var ny = await ContextAsync("America/New_York");
        var page = await PageAsync(ny, errors);
        await page.GotoAsync(server.BaseUrl + "/");
        Assert.EndsWith("/setup", page.Url);
        await page.FillAsync("#Input_Team", "Encom");
        await page.FillAsync("#Input_Name", "Kevin Flynn");
        await page.FillAsync("#Input_Email", "flynn@encom.test");
        await page.FillAsync("#Input_Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "times test");
        await page.ClickAsync("form.inline button[type=submit]");
        var token = (await page.TextContentAsync("#new-token"))!.Trim();
        // The token's creation time, written by the page a moment ago, in New York's time.
        await AssertLocalAsync(page.Locator("table.grid tbody tr").First.Locator("time"), "America/New_York");

        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid proposal", perRecipient = true, sentAt = Sent,
            to = new[] { "alan@encom.test", "lora@encom.test" }, html = "<p>See <a href=\"https://encom.test/grid\">the grid</a></p>",
        });
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        string Copy(int i, string what) => what == "pixel"
            ? reg.GetProperty("copies")[i].GetProperty("pixelUrl").GetString()!
            : reg.GetProperty("copies")[i].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!;
        using var recipient = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd(AppleMail);
        // Alan opens before the page is drawn: his open is written by the server.
        (await recipient.GetAsync(Copy(0, "pixel"))).EnsureSuccessStatusCode();

        // The message page in New York: the send time, Alan's first open and the timeline's open.
        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var sent = page.Locator("p.meta time");
        await Assertions.Expect(sent).ToHaveTextAsync("15 Jan 2025, 15:30");
        await Assertions.Expect(sent).ToHaveAttributeAsync("title", "2025-01-15 20:30:00 UTC");
        await Assertions.Expect(sent).ToHaveAttributeAsync("datetime", "2025-01-15T20:30:00.0000000Z");
        var alan = page.Locator("#recipients tr[data-recipient-id]").Nth(0);
        var lora = page.Locator("#recipients tr[data-recipient-id]").Nth(1);
        await AssertLocalAsync(alan.Locator(".first time"), "America/New_York");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(1);
        await AssertLocalAsync(page.Locator("#feed li time"), "America/New_York");
        await Assertions.Expect(lora.Locator(".first")).ToHaveTextAsync("—");

        // Lora opens while the page is open: the live row and her first open read the same way.
        (await recipient.GetAsync(Copy(1, "pixel"))).EnsureSuccessStatusCode();
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
        await AssertLocalAsync(page.Locator("#feed li").First.Locator("time"), "America/New_York");
        await AssertLocalAsync(lora.Locator(".first time"), "America/New_York");
        await Chromium.ShotAsync(page, "30-times-new-york");
        await ny.CloseAsync();

        // The list in Tokyo: the same message sent on the 16th, and Alan's click arriving live.
        var tokyo = await ContextAsync("Asia/Tokyo");
        page = await PageAsync(tokyo, errors);
        await SignInAsync(page);
        await page.WaitForSelectorAsync("body[data-live=on]");
        var listSent = page.Locator($"tbody[data-message-id='{messageId}'] .subject .meta time");
        await Assertions.Expect(listSent).ToHaveTextAsync("16 Jan 2025, 05:30");
        await Assertions.Expect(listSent).ToHaveAttributeAsync("title", "2025-01-15 20:30:00 UTC");
        var alanRow = page.Locator($"tbody[data-message-id='{messageId}'] tr").Nth(0);
        await AssertLocalAsync(alanRow.Locator(".last time"), "Asia/Tokyo");
        await AssertLocalAsync(page.Locator("#feed li").First.Locator("time"), "Asia/Tokyo");
        await recipient.GetAsync(Copy(0, "link"));
        await Assertions.Expect(alanRow.Locator(".clicks")).ToHaveTextAsync("1");
        await Assertions.Expect(alanRow.Locator(".last")).ToContainTextAsync("clicked");
        await AssertLocalAsync(alanRow.Locator(".last time"), "Asia/Tokyo");
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("clicked a link in Grid proposal");
        await AssertLocalAsync(page.Locator("#feed li").First.Locator("time"), "Asia/Tokyo");
        await Chromium.ShotAsync(page, "31-times-tokyo");
        await tokyo.CloseAsync();

        // Without script the page still tells the time, in UTC.
        var plain = await ContextAsync("Asia/Tokyo", script: false);
        page = await PageAsync(plain, errors);
        await SignInAsync(page);
        await Assertions.Expect(page.Locator($"tbody[data-message-id='{messageId}'] .subject .meta time")).ToHaveTextAsync("2025-01-15 20:30:00 UTC");
        await plain.CloseAsync();

        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
