using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The Documents pages in Chromium against the real server: upload from the page (a bad file gets its message, a
/// Word file is converted), add to email, the document's page with time per page as a chart after a recipient read
/// it, and a solo-plan team told what to do. Screenshots of each.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class DocumentsPageTests() : ServerBrowserTest("et-docs-web-", expectTimeoutMs: 20_000)
{
    const string Password = "Correct-Horse-9";

    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    /// <summary>A user made as `et users add` makes one (with their API token), signed in in a fresh browser context.</summary>
    async Task<(IPage Page, string Token)> SignedInAsync(string email, string team, string plan)
    {
        var token = await ServerProcess.AddUserAsync(Settings, email, team, plan, Password, ownPassword: true);
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var page = await context.NewPageAsync();
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        return (page, token);
    }

    [Fact]
    public async Task Upload_add_to_email_and_the_documents_reading_chart()
    {
        var (page, token) = await SignedInAsync("flynn@encom.test", "Encom", "team");
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };
        await page.GotoAsync(server.BaseUrl + "/documents");
        await Assertions.Expect(page.Locator("#no-documents")).ToBeVisibleAsync();

        // A program renamed to .pdf: refused with the reason, and nothing is listed.
        var exe = new byte[2048];
        "MZ"u8.CopyTo(exe);
        await page.SetInputFilesAsync("input[type=file]", new FilePayload { Name = "Proposal.pdf", MimeType = "application/pdf", Buffer = exe });
        await page.ClickAsync("#upload-form button[type=submit]");
        await Assertions.Expect(page.Locator("#upload-problem")).ToContainTextAsync("Windows program");
        await Assertions.Expect(page.Locator("#no-documents")).ToBeVisibleAsync();
        await Shot(page, "20-documents-refused");
        // The refused form comes back with the upload's status (415), which the browser logs as a failed load.
        errors.RemoveAll(e => e.Contains("status of 415", StringComparison.Ordinal));

        // A Word file: converted, listed with its page count and first-page thumbnail.
        await page.SetInputFilesAsync("input[type=file]", new FilePayload { Name = "Proposal.docx", MimeType = "application/octet-stream", Buffer = await Documents.DocxAsync(3) });
        await page.ClickAsync("#upload-form button[type=submit]");
        await Assertions.Expect(page.Locator("#added")).ToContainTextAsync("Proposal.docx was added (3 pages)");
        var row = page.Locator(".document").First;
        await Assertions.Expect(row.Locator(".doc-name")).ToHaveTextAsync("Proposal.docx");
        await Assertions.Expect(row).ToContainTextAsync("3 pages");
        // The row is drawn before its thumbnail has arrived: wait for the image to load or fail, then look.
        Assert.True(await row.Locator("img.thumb").EvaluateAsync<bool>(
            "img => img.complete ? img.naturalWidth > 0 : new Promise(done => { img.addEventListener('load', () => done(img.naturalWidth > 0)); img.addEventListener('error', () => done(false)); })"),
            "the thumbnail did not load");

        await row.Locator("button.add-link").ClickAsync();
        var url = await page.InputValueAsync("#new-link-url");
        Assert.StartsWith(server.BaseUrl + "/d/", url);
        Assert.Contains("Proposal.docx (3 pages)", await page.InputValueAsync("#new-link-html"));
        await Shot(page, "21-documents");

        // A recipient reads it through their own link (as the viewer's script does), then the sender looks.
        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var reg = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan@encom.test" }, html = $"<p>Our proposal: <a href=\"{url}\">Proposal</a></p>",
        });
        var copy = JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement.GetProperty("copies")[0];
        var link = new Uri(ContentTestApi.DocumentLinks(copy.GetProperty("html").GetString()!).Single()).AbsolutePath;
        using var reader = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        reader.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 14_5) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.5 Safari/605.1.15");
        var visit = JsonDocument.Parse(await (await reader.PostAsJsonAsync(link + "/visits", new { })).Content.ReadAsStringAsync()).RootElement;
        var visitId = visit.GetProperty("visitId").GetString();
        await Task.Delay(3000);
        var beat = await reader.PostAsync($"{link}/visits/{visitId}/beats",
            new StringContent("""{"pages":{"1":2000,"2":800},"order":[1,2],"current":2}""", Encoding.UTF8, "application/json"));
        Assert.True(beat.IsSuccessStatusCode);
        // They follow a link inside it, on page 2.
        var followed = await reader.PostAsync($"{link}/visits/{visitId}/links",
            new StringContent("{\"url\":\"https://encom.test/pricing\",\"page\":2}", Encoding.UTF8, "application/json"));
        Assert.True(followed.IsSuccessStatusCode);

        await page.ClickAsync(".document .doc-name");
        await Assertions.Expect(page.Locator("#doc-title")).ToHaveTextAsync("Proposal.docx");
        await Assertions.Expect(page.Locator("#readers")).ToContainTextAsync("alan@encom.test");
        await Assertions.Expect(page.Locator("#readers")).ToContainTextAsync("page 2 of 3");
        await Assertions.Expect(page.Locator("#readers .links-followed")).ToHaveTextAsync("https://encom.test/pricing · page 2");
        var bars = page.Locator("#page-chart .bar");
        await Assertions.Expect(bars).ToHaveCountAsync(3);
        var heights = await bars.Locator("rect").EvaluateAllAsync<double[]>("rs => rs.map(r => r.getBBox().height)");
        Assert.True(heights[0] > heights[1] && heights[1] > heights[2], string.Join(", ", heights));
        await Shot(page, "22-document-readers");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Fact]
    public async Task A_solo_plan_sees_what_to_do_instead_of_an_upload_form()
    {
        var (page, _) = await SignedInAsync("sam@solo.test", "Solo shop", "solo");
        await page.GotoAsync(server.BaseUrl + "/documents");
        await Assertions.Expect(page.Locator("#plan-problem")).ToContainTextAsync("Tracked content is a Team-plan feature");
        await Assertions.Expect(page.Locator("#plan-problem")).ToContainTextAsync("et teams plan");
        await Assertions.Expect(page.Locator("#upload-form")).ToHaveCountAsync(0);
        await Shot(page, "23-documents-solo");
    }
}
