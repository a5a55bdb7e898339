using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The web app in Chromium against the real server: destructive buttons ask first and do nothing unless the user
/// agrees; and the signed-in pages fit a phone, a tablet and a small laptop without scrolling sideways, their tables
/// scrolling inside their cards instead, except that on a phone the message list and a message's recipients stack with
/// every count in view. Screenshots of each width.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class WebAppLayoutAndConfirmTests() : ServerBrowserTest("et-web-layout-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";

    /// <summary>The user, made as `et users add` makes one, and an API client with their token.</summary>
    Task<HttpClient> NewUserAsync() => NewTeamUserAsync(Email, Password);

    Task<IPage> SignInAsync(BrowserNewContextOptions options) => SignedInPageAsync(options, Email, Password);

    [Fact]
    public async Task Remove_revoke_and_disconnect_ask_first_and_only_an_accepted_question_does_it()
    {
        using var api = await NewUserAsync();
        (await api.UploadAsync(await Documents.PdfAsync(1), "deck.pdf")).EnsureSuccessStatusCode();
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == Email);
            db.Mailboxes.Add(new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = Email, ProtectedSecret = "unused",
                Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        var page = await SignInAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 900 } });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };

        // Documents → Remove.
        await page.GotoAsync(server.BaseUrl + "/documents");
        var remove = page.Locator(".document", new PageLocatorOptions { HasText = "deck.pdf" }).Locator("button.danger");
        Assert.Equal("Remove deck.pdf? Links already sent will stop working: they will say the document was removed.",
            await Chromium.AnswerConfirmAsync(page, () => remove.ClickAsync(), accept: false));
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator(".document")).ToHaveCountAsync(1);
        await Chromium.AnswerConfirmAsync(page, () => remove.ClickAsync(), accept: true);
        await Assertions.Expect(page.Locator("#no-documents")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator(".document")).ToHaveCountAsync(0);

        // API tokens → Revoke.
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "laptop script");
        await page.ClickAsync("form.inline button[type=submit]");
        var laptop = page.Locator("tr", new PageLocatorOptions { HasText = "laptop script" });
        var newToken = (await page.TextContentAsync("#new-token"))!.Trim();
        Assert.Equal("Revoke the token “laptop script”? Programs and add-ins using it can no longer call the API, and this cannot be undone.",
            await Chromium.AnswerConfirmAsync(page, () => laptop.Locator("button.danger").ClickAsync(), accept: false));
        // Loaded afresh (a reload would post the creation form again).
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await Assertions.Expect(laptop.Locator("button.danger")).ToHaveTextAsync("Revoke");
        using (var script = new HttpClient { BaseAddress = new Uri(server.BaseUrl) })
        {
            script.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", newToken);
            Assert.True((await script.GetAsync("/api/me")).IsSuccessStatusCode);
            await Chromium.AnswerConfirmAsync(page, () => laptop.Locator("button.danger").ClickAsync(), accept: true);
            await Assertions.Expect(laptop).ToContainTextAsync("revoked");
            Assert.Equal(System.Net.HttpStatusCode.Unauthorized, (await script.GetAsync("/api/me")).StatusCode);
        }

        // Mailboxes → Disconnect.
        await page.GotoAsync(server.BaseUrl + "/mailboxes");
        var disconnect = page.Locator("#mailboxes tbody tr").Locator("button.danger");
        Assert.StartsWith($"Disconnect {Email}? Replies arriving in it are no longer seen",
            await Chromium.AnswerConfirmAsync(page, () => disconnect.ClickAsync(), accept: false));
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#mailboxes tbody tr")).ToHaveCountAsync(1);
        await Chromium.AnswerConfirmAsync(page, () => disconnect.ClickAsync(), accept: true);
        await Assertions.Expect(page.Locator("#no-mailboxes")).ToBeVisibleAsync();
        await using (var db = OpenDb()) Assert.Equal(0, await db.Mailboxes.CountAsync());

        // Addresses → a Microsoft account's Remove (it did not ask).
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == Email);
            db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
            {
                UserId = user.Id, TenantId = "tenant-1", ObjectId = Guid.NewGuid().ToString(), DisplayName = "Kevin Flynn",
                SignInName = "kflynn@encom.test", LinkedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        await page.GotoAsync(server.BaseUrl + "/addresses");
        var removeAccount = page.Locator("#microsoft-accounts li[data-microsoft-account] button[type=submit]");
        Assert.Equal("Remove the Microsoft account Kevin Flynn? The Outlook add-in signed in with it no longer signs in as you; "
            + "to use it again, link it again with the add-in's Link this Microsoft account button.",
            await Chromium.AnswerConfirmAsync(page, () => removeAccount.ClickAsync(), accept: false));
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#microsoft-accounts li[data-microsoft-account]")).ToHaveCountAsync(1);
        await using (var db = OpenDb()) Assert.Equal(1, await db.MicrosoftAccountLinks.CountAsync());
        await Chromium.AnswerConfirmAsync(page, () => removeAccount.ClickAsync(), accept: true);
        await Assertions.Expect(page.Locator("#no-microsoft-accounts")).ToBeVisibleAsync();
        await using (var db = OpenDb()) Assert.Equal(0, await db.MicrosoftAccountLinks.CountAsync());
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }

    [Theory]
    [InlineData(390, 844, "phone")]
    [InlineData(768, 1024, "tablet")]
    [InlineData(1024, 768, "laptop")]
    public async Task Signed_in_pages_fit_the_screen_without_sideways_scrolling(int width, int height, string name)
    {
        using var api = await NewUserAsync();
        // Long words that cannot wrap, and a full table: what pushed pages past the screen's edge.
        var reg = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Email, subject = "Proposal for the Grid expansion — pricing, timeline and the Q3 rollout plan", perRecipient = true,
            sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan.bradley@encom-research-division.test", "lora.baines@encom-laser-laboratory.test", "roy.kleinberg@dillinger-systems.test" },
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a></p>",
        });
        reg.EnsureSuccessStatusCode();
        // A document with a long name, for the documents page.
        var upload = await api.UploadAsync(await Documents.PdfAsync(2), "Grid-expansion-proposal-pricing-timeline-and-Q3-rollout-plan-final.pdf");
        upload.EnsureSuccessStatusCode();
        var documentId = JsonDocument.Parse(await upload.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        // Sent in a message and read by one recipient, for the document's readers.
        var share = JsonDocument.Parse(await (await api.PostAsync($"/api/content/{documentId}/links", null)).EnsureSuccessStatusCode().Content.ReadAsStringAsync())
            .RootElement.GetProperty("url").GetString();
        var withDocument = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Email, subject = "The proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "alan.bradley@encom-research-division.test" }, html = $"<p>See <a href=\"{share}\">the proposal</a></p>",
        });
        withDocument.EnsureSuccessStatusCode();
        var readerLink = ContentTestApi.DocumentLinks(JsonDocument.Parse(await withDocument.Content.ReadAsStringAsync()).RootElement
            .GetProperty("copies")[0].GetProperty("html").GetString()!).Single();
        using (var reader = new HttpClient())
        {
            reader.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (iPhone; CPU iPhone OS 18_1 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/18.1 Mobile/15E148 Safari/604.1");
            var visit = await reader.PostAsJsonAsync(readerLink + "/visits", new { });
            var visitId = JsonDocument.Parse(await visit.EnsureSuccessStatusCode().Content.ReadAsStringAsync()).RootElement.GetProperty("visitId").GetString();
            (await reader.PostAsync($"{readerLink}/visits/{visitId}/beats", new StringContent("""{"pages":{"1":4000,"2":2500},"order":[1,2],"current":2}""", System.Text.Encoding.UTF8, "application/json")))
                .EnsureSuccessStatusCode();
        }
        // A long alias, unconfirmed, for the addresses page.
        (await api.PostAsJsonAsync("/api/me/addresses", new { address = "regional-sales-and-partnerships-emea@encom-research-division.test" })).EnsureSuccessStatusCode();
        var message = JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement;
        using (var recipient = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }))
        {
            recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
            var copy = message.GetProperty("copies")[0];
            await recipient.GetAsync(copy.GetProperty("pixelUrl").GetString());
            await recipient.GetAsync(copy.GetProperty("links")[0].GetProperty("trackedUrl").GetString());
        }
        var page = await SignInAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height },
            // A phone lays a page out wider than its screen when the page asks for it, then zooms out: emulate one.
            IsMobile = width < 700, HasTouch = width < 700,
        });
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text); };

        var messageId = message.GetProperty("id").GetString();
        foreach (var (path, shot) in new[]
                 {
                     ("/", "messages"), ($"/messages/{messageId}", "message"), ("/tokens", "tokens"), ("/password", "password"), ("/addresses", "addresses"),
                     ("/documents", "documents"), ("/sequences", "sequences"), ("/templates", "templates"), ("/mailboxes", "mailboxes"),
                     ("/webhooks", "webhooks"), ("/salesforce", "salesforce"), ($"/documents/{documentId}", "document"),
                     ("/sequences/new", "sequence-new"), ("/templates/new", "template-new"), ("/webhooks/deliveries", "deliveries"),
                     ("/team", "team"), ("/compose", "compose"),
                 })
        {
            await page.GotoAsync(server.BaseUrl + path);
            await Assertions.Expect(page.Locator("main h1").First).ToBeVisibleAsync();
            var fit = await page.EvaluateAsync<JsonElement>("""
                () => ({
                  scrollWidth: document.documentElement.scrollWidth,
                  innerWidth: window.innerWidth,
                  // Whatever shows inside a card stays inside it (a table's cells scroll in their own box instead).
                  outside: Array.from(document.querySelectorAll("main .card")).flatMap((card) => {
                    const c = card.getBoundingClientRect();
                    return Array.from(card.querySelectorAll("*"))
                      .filter((e) => !e.parentElement.closest(".table-scroll"))
                      .filter((e) => { const r = e.getBoundingClientRect(); return r.width > 0 && (r.right > c.right + 1 || r.left < c.left - 1); })
                      .map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.getAttribute("type") ? "[type=" + e.getAttribute("type") + "]" : ""));
                  }),
                  signOut: (() => { const r = document.querySelector("header form button").getBoundingClientRect(); return { left: r.left, right: r.right }; })(),
                  // Each table shows no wider than the box it scrolls in, and that box stays on the screen.
                  tables: Array.from(document.querySelectorAll("table.grid")).map((t) => {
                    const box = t.closest(".table-scroll");
                    const shown = (box || t).getBoundingClientRect();
                    const aside = document.querySelector("aside.feed");
                    const beside = aside && aside.getBoundingClientRect();
                    // The counts of a stacked table: where the leftmost and rightmost of them show.
                    const figures = Array.from(t.querySelectorAll("td[data-label]")).map((f) => f.getBoundingClientRect());
                    return {
                      id: t.id, scrolls: !!box && getComputedStyle(box).overflowX === "auto", right: shown.right,
                      stack: t.classList.contains("phone-stack"), display: getComputedStyle(t).display,
                      hiddenSideways: t.scrollWidth > (box || t).clientWidth + 1,
                      figures: figures.length, figuresLeft: figures.length ? Math.min(...figures.map((r) => r.left)) : 0,
                      figuresRight: figures.length ? Math.max(...figures.map((r) => r.right)) : 0,
                      // The live panel, when it sits beside the table, starts where the table's box ends.
                      overlapsPanel: !!beside && beside.top < shown.bottom && beside.bottom > shown.top && beside.left < shown.right && beside.right > shown.left,
                    };
                  }),
                })
                """);
            var where = $"{name} {width}px {path}: {fit}";
            Assert.True(fit.GetProperty("innerWidth").GetInt32() == width, where);
            Assert.True(fit.GetProperty("scrollWidth").GetInt32() <= width, where);
            Assert.True(fit.GetProperty("outside").GetArrayLength() == 0, where);
            var signOut = fit.GetProperty("signOut");
            Assert.True(signOut.GetProperty("left").GetDouble() >= 0 && signOut.GetProperty("right").GetDouble() <= width, where);
            foreach (var table in fit.GetProperty("tables").EnumerateArray())
            {
                // On a phone the message list, a message's recipients and a document's readers stack: nothing is left to
                // scroll to, and every figure is on the screen. Other tables, and these on wider screens, scroll in their box.
                var stacks = table.GetProperty("stack").GetBoolean() && width <= 640;
                Assert.True(table.GetProperty("display").GetString() == (stacks ? "block" : "table"), where);
                if (stacks)
                {
                    Assert.False(table.GetProperty("hiddenSideways").GetBoolean(), where);
                    // The API tokens' table has one token here, with three figures (its start, created, last used).
                    Assert.True(table.GetProperty("figures").GetInt32() >= (table.GetProperty("id").GetString() == "tokens" ? 3 : 6), where);
                    Assert.True(table.GetProperty("figuresLeft").GetDouble() >= 0 && table.GetProperty("figuresRight").GetDouble() <= width, where);
                }
                Assert.True(table.GetProperty("scrolls").GetBoolean(), where);
                Assert.True(table.GetProperty("right").GetDouble() <= width, where);
                Assert.False(table.GetProperty("overlapsPanel").GetBoolean(), where);
            }
            await Chromium.ShotAsync(page, $"40-{name}-{shot}");
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
