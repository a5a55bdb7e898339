using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A share link turned off, or expiring, after the viewer's page has loaded, in Chromium against the real server: the
/// viewer's next fetch is refused with 410, and the reader is told the link no longer works (and why), not that the
/// sender removed the document. Screenshots of both.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ShareLinkClosedBrowserTests() : ServerBrowserTest("et-shareclosed-", expectTimeoutMs: 20_000)
{
    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    string DesktopUa => $"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{browser.Version.Split('.')[0]}.0.0.0 Safari/537.36";

    [Fact]
    public async Task A_link_turned_off_or_expired_after_the_viewer_loaded_says_the_link_no_longer_works_not_that_the_document_was_removed()
    {
        using var api = await NewTeamUserAsync("flynn@encom.test", "Correct-Horse-9");
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(3), "Proposal.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        var made = await api.PostAsync($"/api/content/{contentId}/links", null);
        var link = JsonDocument.Parse(await made.Content.ReadAsStringAsync()).RootElement;
        var token = link.GetProperty("token").GetString()!;
        var share = link.GetProperty("url").GetString()!;
        // Pasted into a mail an hour ago (a read seconds after the link was made would be a gateway's check).
        await using (var db = OpenDb())
        {
            await db.ContentLinks.Where(l => l.Token == token).ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1)));
        }

        var reader = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 }, UserAgent = DesktopUa });
        var viewer = await reader.NewPageAsync();
        var errors = new List<string>();
        viewer.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await viewer.GotoAsync(share);
        await viewer.WaitForSelectorAsync("body[data-page='1']");

        // The reader opens it again: the page comes while the link works, and the owner turns it off before the
        // viewer's script asks for its visit (held until then), as when a link is turned off while its page loads.
        Func<IRoute, Task> closeFirst = async route =>
        {
            var off = await api.PatchAsync($"/api/content/{contentId}/links/{token}", new StringContent("""{"disabled":true}""", Encoding.UTF8, "application/json"));
            Assert.True(off.IsSuccessStatusCode, $"{(int)off.StatusCode}");
            await route.ContinueAsync();
        };
        await reader.RouteAsync($"{server.BaseUrl}/d/{token}/visits", closeFirst);
        await viewer.GotoAsync(share);
        await Assertions.Expect(viewer.Locator("body[data-state=error]")).ToHaveCountAsync(1);
        await Assertions.Expect(viewer.Locator("#error-title")).ToHaveTextAsync("This link no longer works");
        await Assertions.Expect(viewer.Locator("#error-detail")).ToHaveTextAsync("The sender turned it off. Ask them for a new link.");
        await Assertions.Expect(viewer.Locator("#error")).Not.ToContainTextAsync("removed");
        await Assertions.Expect(viewer.Locator("#retry")).ToBeHiddenAsync();
        await Shot(viewer, "45-share-link-turned-off-in-viewer");
        await reader.UnrouteAsync($"{server.BaseUrl}/d/{token}/visits", closeFirst);

        // On again; then its time runs out while the page is open.
        await api.PatchAsync($"/api/content/{contentId}/links/{token}", new StringContent("""{"disabled":false}""", Encoding.UTF8, "application/json"));
        await reader.RouteAsync($"{server.BaseUrl}/d/{token}/visits", async route =>
        {
            await using (var db = OpenDb())
            {
                await db.ContentLinks.Where(l => l.Token == token).ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1)));
            }
            await route.ContinueAsync();
        });
        await viewer.GotoAsync(share);
        await Assertions.Expect(viewer.Locator("#error-title")).ToHaveTextAsync("This link no longer works");
        await Assertions.Expect(viewer.Locator("#error-detail")).ToHaveTextAsync("It has expired. Ask the sender for a new link.");
        await Shot(viewer, "46-share-link-expired-in-viewer");

        // The browser logs each refused fetch (the visit, the file) as a failed load, and looks for /favicon.ico, which
        // is not there.
        errors.RemoveAll(e => e.Contains("status of 410", StringComparison.Ordinal) || e.Contains("/favicon.ico", StringComparison.Ordinal));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await reader.CloseAsync();
    }

    [Fact]
    public async Task A_link_turned_off_while_its_document_is_on_screen_is_taken_off_screen_at_the_next_heartbeat()
    {
        using var api = await NewTeamUserAsync("flynn@encom.test", "Correct-Horse-9");
        var uploaded = await (await api.UploadAsync(await Documents.PdfAsync(3), "Proposal.pdf")).Content.ReadAsStringAsync();
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        var link = JsonDocument.Parse(await (await api.PostAsync($"/api/content/{contentId}/links", null)).Content.ReadAsStringAsync()).RootElement;
        var token = link.GetProperty("token").GetString()!;
        await using (var db = OpenDb())
        {
            await db.ContentLinks.Where(l => l.Token == token).ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1)));
        }

        var reader = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 }, UserAgent = DesktopUa });
        var viewer = await reader.NewPageAsync();
        var errors = new List<string>();
        viewer.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await viewer.GotoAsync(link.GetProperty("url").GetString()!);
        await viewer.WaitForSelectorAsync("body[data-page='1']");
        await Assertions.Expect(viewer.Locator("body[data-state=ready]")).ToHaveCountAsync(1);

        // The whole document is loaded: only the heartbeat (every 10 s while the reader is there) still asks the server.
        var off = await api.PatchAsync($"/api/content/{contentId}/links/{token}", new StringContent("""{"disabled":true}""", Encoding.UTF8, "application/json"));
        Assert.True(off.IsSuccessStatusCode, $"{(int)off.StatusCode}");
        var beat = await viewer.WaitForResponseAsync(r => r.Url.EndsWith("/beats", StringComparison.Ordinal), new PageWaitForResponseOptions { Timeout = 20_000 });
        Assert.Equal(410, beat.Status);
        await Assertions.Expect(viewer.Locator("body[data-state=error]")).ToHaveCountAsync(1);
        await Assertions.Expect(viewer.Locator("#error-title")).ToHaveTextAsync("This link no longer works");
        await Assertions.Expect(viewer.Locator("#error-detail")).ToHaveTextAsync("The sender turned it off. Ask them for a new link.");
        await Assertions.Expect(viewer.Locator("#page canvas")).ToHaveCountAsync(0);
        await Shot(viewer, "46-share-link-turned-off-while-reading");

        errors.RemoveAll(e => e.Contains("status of 410", StringComparison.Ordinal) || e.Contains("/favicon.ico", StringComparison.Ordinal));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await reader.CloseAsync();
    }
}
