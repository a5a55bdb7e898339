using System.Net.Http.Headers;
using System.Text.Json;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A share link that asks its reader for their email address, in Chromium against the real server: the owner makes it
/// on the document's page, the reader gives a malformed address then a good one and reads, the owner's feed and the
/// document's page name the reader as given and not verified, and a link turned off tells its reader so. Screenshots of
/// the gate, the document's page and the turned-off link.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ShareLinkGateBrowserTests() : ServerBrowserTest("et-sharegate-", expectTimeoutMs: 20_000)
{
    const string Password = "Correct-Horse-9";

    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    // Headless Chromium says "HeadlessChrome", which the classifier rightly takes for a machine: the reader's browser
    // presents itself as the ordinary Chrome of the same engine.
    string DesktopUa => $"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{browser.Version.Split('.')[0]}.0.0.0 Safari/537.36";

    [Fact]
    public async Task A_reader_gives_their_address_at_the_gate_and_the_owner_sees_them_named_by_it()
    {
        var token = await ServerProcess.AddUserAsync(Settings, "flynn@encom.test", "Encom", "team", Password, ownPassword: true);
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", "flynn@encom.test");
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");

        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(3), "Proposal.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();

        // The owner makes a link that asks for the reader's address, on the document's page.
        await page.GotoAsync($"{server.BaseUrl}/documents/{contentId}");
        await Assertions.Expect(page.Locator("#no-links")).ToBeVisibleAsync();
        // No relay on this server: the page does not offer the mailed code.
        await Assertions.Expect(page.Locator("#new-link-reader option[value=verify]")).ToHaveCountAsync(0);
        await page.SelectOptionAsync("#new-link-reader", "email");
        await page.ClickAsync("#new-share-link button[type=submit]");
        var row = page.Locator("#links tr.share-link");
        await Assertions.Expect(row).ToHaveCountAsync(1);
        await Assertions.Expect(row.Locator(".link-state")).ToHaveTextAsync("on");
        await Assertions.Expect(row.Locator("select[name=reader]")).ToHaveValueAsync("email");
        var share = await row.Locator("input.link-url-input").InputValueAsync();
        Assert.StartsWith(server.BaseUrl + "/d/", share);
        // Pasted into a mail an hour ago (opened seconds after it was made, it would be a gateway's check on delivery).
        await using (var db = OpenDb())
        {
            await db.ContentLinks.Where(l => l.ContentId == contentId).ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1)));
        }
        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");

        // The reader: the gate first, nothing recorded; a malformed address is refused with the reason.
        var reader = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 }, UserAgent = DesktopUa });
        var viewer = await reader.NewPageAsync();
        var readerErrors = new List<string>();
        viewer.Console += (_, m) => { if (m.Type == "error") readerErrors.Add(m.Text + " @ " + m.Location); };
        await viewer.GotoAsync(share);
        await Assertions.Expect(viewer.Locator("#reader-gate")).ToContainTextAsync("asks for your email address");
        await Shot(viewer, "40-share-link-gate");
        await viewer.FillAsync("#gate-email-input", "dana at example");
        // The browser's own check would stop a malformed address before it is sent; the server's is the one tested.
        await viewer.EvalOnSelectorAsync("#reader-gate form", "f => f.noValidate = true");
        await viewer.ClickAsync("#gate-submit");
        await Assertions.Expect(viewer.Locator("#gate-error")).ToContainTextAsync("is not an email address");
        await Shot(viewer, "41-share-link-gate-refused");
        await using (var db = OpenDb())
        {
            Assert.Equal(0, await db.Events.CountAsync(e => e.ContentId == contentId));
        }
        // The browser logs the refused form's 400 as a failed load.
        readerErrors.RemoveAll(e => e.Contains("status of 400", StringComparison.Ordinal));

        await viewer.FillAsync("#gate-email-input", "dana@example.com");
        await viewer.ClickAsync("#gate-submit");
        await viewer.WaitForSelectorAsync("body[data-page='1']");
        var opened = page.Locator("#feed li").Last;
        await Assertions.Expect(opened).ToContainTextAsync("dana@example.com (given by the reader, not verified) opened Proposal.pdf from a share link");
        for (var i = 0; i < 8; i++)
        {
            await viewer.Mouse.MoveAsync(300 + 40 * i, 250 + 30 * (i % 5));
            await viewer.WaitForTimeoutAsync(250);
        }
        await Shot(viewer, "42-share-link-read");
        var again = await reader.NewPageAsync();
        await viewer.CloseAsync();
        await Assertions.Expect(page.Locator("#feed li").First)
            .ToContainTextAsync("dana@example.com (given by the reader, not verified) is reading Proposal.pdf — page 1 of 3 from a share link");

        // The document's page names her among its readers and counts the link's read.
        await page.GotoAsync($"{server.BaseUrl}/documents/{contentId}");
        await Assertions.Expect(page.Locator("#readers")).ToContainTextAsync("dana@example.com (given by the reader, not verified)");
        await Assertions.Expect(page.Locator("#links .link-reads")).ToContainTextAsync("1 · 1 named reader");
        await Shot(page, "43-document-share-links");

        // Turned off: the reader's next visit is told to ask for a new link.
        await page.Locator("#links button.toggle-link").ClickAsync();
        await Assertions.Expect(page.Locator("#links .link-state")).ToHaveTextAsync("turned off");
        var closed = await again.GotoAsync(share);
        Assert.Equal(410, closed!.Status);
        await Assertions.Expect(again.Locator("body")).ToContainTextAsync("This link has been turned off — ask the sender for a new one.");
        await Shot(again, "44-share-link-turned-off");
        // The 410 page and the gate are plain pages: the browser looks for /favicon.ico beside them, which is not there.
        readerErrors.RemoveAll(e => e.Contains("status of 410", StringComparison.Ordinal) || e.Contains("/favicon.ico", StringComparison.Ordinal));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        Assert.True(readerErrors.Count == 0, string.Join("\n", readerErrors));
        await reader.CloseAsync();
        await context.CloseAsync();
    }
}
