using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A share link pasted where no tracked message goes (a chat, a mail sent untracked): the sender's list page tells them
/// live when someone reads the document through it, hides a link previewer's fetch as any machine's, and keeps showing
/// the reads after a reload, each linked to the document's page. Screenshots of the list are saved.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ShareLinkFeedBrowserTests() : ServerBrowserTest("et-sharefeed-")
{
    const string Password = "Correct-Horse-9";

    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    // Headless Chromium says "HeadlessChrome", which the classifier rightly takes for a machine: the reader's browser
    // presents itself as the ordinary Chrome of the same engine.
    string DesktopUa => $"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{browser.Version.Split('.')[0]}.0.0.0 Safari/537.36";

    [Fact]
    public async Task A_read_through_a_share_link_outside_any_message_shows_live_in_the_senders_feed()
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(server.BaseUrl + "/");
        Assert.EndsWith("/setup", page.Url);
        await page.FillAsync("#Input_Team", "Encom");
        await page.FillAsync("#Input_Name", "Kevin Flynn");
        await page.FillAsync("#Input_Email", "flynn@encom.test");
        await page.FillAsync("#Input_Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "share test");
        await page.ClickAsync("form.inline button[type=submit]");
        var token = (await page.TextContentAsync("#new-token"))!.Trim();

        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(3), "Proposal.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        var linkText = await (await api.PostAsync($"/api/content/{contentId}/links", null)).Content.ReadAsStringAsync();
        var share = JsonDocument.Parse(linkText).RootElement.GetProperty("url").GetString()!;
        // Pasted into a mail an hour ago (opened seconds after it was made, it would be a gateway's check on delivery).
        await using (var db = OpenDb())
        {
            await db.ContentLinks.Where(l => l.ContentId == contentId).ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1)));
        }

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");

        // The chat it was pasted in fetches it for a preview: a machine, hidden and counted.
        using (var previewer = new HttpClient())
        {
            previewer.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)");
            await previewer.GetAsync(share);
        }
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveTextAsync("1 machine event hidden — show");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(0);

        // Someone opens it in their browser and reads page 1: the sender sees it as it happens.
        var reader = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 }, UserAgent = DesktopUa });
        var viewer = await reader.NewPageAsync();
        await viewer.GotoAsync(share);
        var opened = page.Locator("#feed li").Last;
        await Assertions.Expect(opened).ToContainTextAsync("someone opened Proposal.pdf from a share link");
        await Assertions.Expect(opened.Locator("a")).ToHaveAttributeAsync("href", $"/documents/{contentId}");
        await viewer.WaitForSelectorAsync("body[data-page='1']");
        // Reading: the viewer counts active time only while the reader does something.
        for (var i = 0; i < 8; i++)
        {
            await viewer.Mouse.MoveAsync(300 + 40 * i, 250 + 30 * (i % 5));
            await viewer.WaitForTimeoutAsync(250);
        }
        // Closing the tab (not the browser, which could cancel the beacon in flight): its beacon reports page 1.
        await viewer.CloseAsync();
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("someone is reading Proposal.pdf — page 1 of 3 from a share link");
        // No row of the message list moved: there is no message.
        await Assertions.Expect(page.Locator("tbody.message")).ToHaveCountAsync(0);
        await Shot(page, "17-list-share-link-live");

        // After a reload the page renders them itself.
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("someone read Proposal.pdf — page 1 of 3 from a share link");
        await Assertions.Expect(page.Locator("#feed li").Last).ToContainTextAsync("someone opened Proposal.pdf from a share link");
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveTextAsync("1 machine event hidden — show");
        await page.Locator("#feed li").First.Locator("a").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync($"{server.BaseUrl}/documents/{contentId}");
        Assert.Empty(errors);
        await reader.CloseAsync();
        await context.CloseAsync();
    }
}
