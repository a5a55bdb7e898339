using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A share link's expiry typed on the document's page in the user's own time, in Chromium set to Berlin: 18:00 in
/// winter is stored as 17:00 UTC, 18:00 in summer as 16:00 UTC, and both are shown back as 18:00 with the zone named.
/// Without script the page says UTC and takes UTC. Screenshot of the links in Berlin time.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ShareLinkExpiryBrowserTests() : ServerBrowserTest("et-shareexpiry-")
{
    const string Password = "Correct-Horse-9";

    Task<IBrowserContext> ContextAsync(bool script, string zone = "Europe/Berlin") => browser.NewContextAsync(new BrowserNewContextOptions
    {
        ViewportSize = new ViewportSize { Width = 1360, Height = 900 },
        TimezoneId = zone,
        Locale = "en-GB",
        JavaScriptEnabled = script,
    });

    async Task<IPage> SignInAsync(IBrowserContext context, List<string> errors, string email = "flynn@encom.test")
    {
        var page = await context.NewPageAsync();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        return page;
    }

    async Task<DateTimeOffset?> StoredExpiryAsync(string token)
    {
        await using var db = OpenDb();
        return (await db.ContentLinks.SingleAsync(l => l.Token == token)).ExpiresAt;
    }

    [Fact]
    public async Task An_expiry_typed_at_18_00_in_Berlin_is_stored_as_17_00_UTC_in_winter_and_16_00_in_summer_and_shown_back_as_18_00()
    {
        using var api = await NewTeamUserAsync("flynn@encom.test", Password);
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(2), "Proposal.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        var year = DateTime.UtcNow.Year + 1;

        var errors = new List<string>();
        var context = await ContextAsync(script: true);
        var page = await SignInAsync(context, errors);
        await page.GotoAsync($"{server.BaseUrl}/documents/{contentId}");
        await Assertions.Expect(page.Locator("#new-share-link .local-zone")).ToHaveTextAsync("Europe/Berlin");
        await page.FillAsync("#new-link-expires", $"{year}-01-15T18:00");
        await page.ClickAsync("#new-share-link button[type=submit]");
        var row = page.Locator("#links tr.share-link");
        await Assertions.Expect(row).ToHaveCountAsync(1);
        var token = (await row.GetAttributeAsync("data-token"))!;
        Assert.Equal(new DateTimeOffset(year, 1, 15, 17, 0, 0, TimeSpan.Zero), await StoredExpiryAsync(token));
        await Assertions.Expect(row.Locator("input.link-expires")).ToHaveValueAsync($"{year}-01-15T18:00");
        await Assertions.Expect(page.Locator("#links thead .local-zone")).ToHaveTextAsync("Europe/Berlin");

        // Moved to a summer evening on the link's own row: Berlin is then two hours ahead.
        await row.Locator("input.link-expires").FillAsync($"{year}-07-15T18:00");
        await row.Locator("button.save-link").ClickAsync();
        await Assertions.Expect(page.Locator("#links tr.share-link.changed input.link-expires")).ToHaveValueAsync($"{year}-07-15T18:00");
        Assert.Equal(new DateTimeOffset(year, 7, 15, 16, 0, 0, TimeSpan.Zero), await StoredExpiryAsync(token));
        await Chromium.ShotAsync(page, "47-share-link-expiry-local-time");
        // Saving again without touching it keeps the time (no drift by the offset).
        await page.Locator("#links tr.share-link button.save-link").ClickAsync();
        await Assertions.Expect(page.Locator("#links tr.share-link.changed")).ToHaveCountAsync(1);
        Assert.Equal(new DateTimeOffset(year, 7, 15, 16, 0, 0, TimeSpan.Zero), await StoredExpiryAsync(token));

        // Without script: the page says UTC, shows the stored time in UTC and reads a typed one as UTC.
        var plain = await ContextAsync(script: false);
        var noScript = await SignInAsync(plain, errors);
        await noScript.GotoAsync($"{server.BaseUrl}/documents/{contentId}");
        Assert.Equal("UTC", (await noScript.Locator("#new-share-link .local-zone").TextContentAsync())?.Trim());
        Assert.Equal($"{year}-07-15T16:00", await noScript.Locator("#links tr.share-link input.link-expires").InputValueAsync());
        await noScript.FillAsync("#new-link-expires", $"{year}-01-15T18:00");
        await noScript.ClickAsync("#new-share-link button[type=submit]");
        await noScript.WaitForSelectorAsync("#links tr.share-link.changed");
        var second = (await noScript.Locator("#links tr.share-link.changed").GetAttributeAsync("data-token"))!;
        Assert.Equal(new DateTimeOffset(year, 1, 15, 18, 0, 0, TimeSpan.Zero), await StoredExpiryAsync(second));

        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await plain.CloseAsync();
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_last_expiry_there_is_seen_from_Tokyo_shows_in_UTC_and_saving_the_links_other_settings_keeps_it()
    {
        using var api = await NewTeamUserAsync("sark@encom.test", Password);
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(1), "Terms.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        var errors = new List<string>();
        var context = await ContextAsync(script: true, zone: "Asia/Tokyo");
        var page = await SignInAsync(context, errors, "sark@encom.test");
        await page.GotoAsync($"{server.BaseUrl}/documents/{contentId}");
        await page.ClickAsync("#new-share-link button[type=submit]");
        var row = page.Locator("#links tr.share-link");
        await Assertions.Expect(row).ToHaveCountAsync(1);
        var token = (await row.GetAttributeAsync("data-token"))!;
        // 31 December 9999 23:59 UTC, the latest a field can hold: in Tokyo it is 08:59 on 1 January 10000.
        var last = new DateTimeOffset(9999, 12, 31, 23, 59, 0, TimeSpan.Zero);
        await using (var db = OpenDb())
        {
            (await db.ContentLinks.SingleAsync(l => l.Token == token)).ExpiresAt = last;
            await db.SaveChangesAsync();
        }

        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#links thead .local-zone")).ToHaveTextAsync("Asia/Tokyo");
        // Shown as it is, in UTC, and said so: a time the field and the server can both read.
        var expires = row.Locator("input.link-expires");
        await Assertions.Expect(expires).ToHaveValueAsync("9999-12-31T23:59");
        await Assertions.Expect(expires).ToHaveAttributeAsync("aria-label", "Expires (UTC)");
        await Assertions.Expect(row.Locator(".field-zone")).ToHaveTextAsync("UTC");
        Assert.True(await expires.EvaluateAsync<bool>("input => input.checkValidity()"));
        await Chromium.ShotAsync(page, "48-share-link-last-expiry-tokyo");

        // Downloads changed, the expiry left alone: the downloads change and the expiry stays.
        await row.Locator("select[name=downloads]").SelectOptionAsync("no");
        await row.Locator("button.save-link").ClickAsync();
        await Assertions.Expect(page.Locator("#links tr.share-link.changed")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#link-problem")).ToHaveCountAsync(0);
        await using (var db = OpenDb())
        {
            var link = await db.ContentLinks.AsNoTracking().SingleAsync(l => l.Token == token);
            Assert.Equal(last, link.ExpiresAt);
            Assert.False(link.AllowDownload);
        }
        await Assertions.Expect(page.Locator("#links tr.share-link input.link-expires")).ToHaveValueAsync("9999-12-31T23:59");

        // An ordinary expiry on another link of the same page still shows in Tokyo time.
        var year = DateTime.UtcNow.Year + 1;
        await page.FillAsync("#new-link-expires", $"{year}-01-15T18:00");
        await page.ClickAsync("#new-share-link button[type=submit]");
        var fresh = page.Locator("#links tr.share-link.changed");
        await Assertions.Expect(fresh.Locator("input.link-expires")).ToHaveValueAsync($"{year}-01-15T18:00");
        await Assertions.Expect(fresh.Locator(".field-zone")).ToHaveCountAsync(0);
        var freshToken = (await fresh.GetAttributeAsync("data-token"))!;
        Assert.Equal(new DateTimeOffset(year, 1, 15, 9, 0, 0, TimeSpan.Zero), await StoredExpiryAsync(freshToken));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await context.CloseAsync();
    }
}
