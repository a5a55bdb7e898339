using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The message list with no messages says so, without an empty table's header row under it; the first message that
/// comes in while the list is open brings the table back, live. Screenshots of both.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class EmptyMessageListBrowserTests() : ServerBrowserTest("et-web-empty-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";

    [Fact]
    public async Task An_empty_list_shows_no_table_until_its_first_message_comes_in()
    {
        using var api = await NewTeamUserAsync(Email, Password);

        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");

        await page.WaitForSelectorAsync("body[data-live=on]");
        await Assertions.Expect(page.Locator(".messages .empty")).ToContainTextAsync("No tracked messages yet");
        await Assertions.Expect(page.Locator("#messages")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#messages thead th").First).ToBeHiddenAsync();
        await Chromium.ShotAsync(page, "empty-list-01-no-messages");

        // The first message is opened while the list is open: its rows come in, and the table with them.
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Email, subject = "First contact", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test" }, html = "<p>hello</p>",
        });
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        using (var recipient = new HttpClient())
        {
            recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
            (await recipient.GetAsync(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString())).EnsureSuccessStatusCode();
        }
        await Assertions.Expect(page.Locator("#messages tbody.message .opens")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#messages")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#messages thead th", new PageLocatorOptions { HasText = "Opens" })).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator(".messages .empty")).ToHaveCountAsync(0);
        await Chromium.ShotAsync(page, "empty-list-02-first-message-live");

        // Loaded afresh, it is shown as any list.
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#messages thead th", new PageLocatorOptions { HasText = "Opens" })).ToBeVisibleAsync();
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await context.CloseAsync();
    }
}
