using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Long words without a break on the web app's pages in Chromium, at a laptop's 1280 px and a phone's 360 px: a URL as
/// a subject, long addresses, a mail server's refusal, a document's, a sequence's and a template's names, a webhook's
/// URL. None may push a page past the screen's edge (the live feed's cards, headings, the timeline, the delivery log's
/// list of targets, the share link's address form), and in the message list the figures stay in view beside the
/// subject. Screenshots of each page at each width.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class LongWordsLayoutBrowserTests() : ServerBrowserTest("et-web-long-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";
    const string UrlSubject = "Re: https://docs.example.com/document/d/1aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789/edit?usp=sharing";
    const string LongAddress = "procurement.notifications.department@eu-west.subsidiary-holdings-international.example.com";
    static readonly string LongWord = "Quarterly-pricing-and-renewal-terms-for-the-EMEA-region-" + new string('x', 80);

    Task<HttpClient> NewUserAsync() => NewTeamUserAsync(Email, Password);

    Task<IPage> SignInAsync(int width, int height) => SignedInPageAsync(new BrowserNewContextOptions
    {
        ViewportSize = new ViewportSize { Width = width, Height = height },
        // A phone lays a page out wider than its screen when the page asks for it, then zooms out: emulate one.
        IsMobile = width < 700, HasTouch = width < 700,
    }, Email, Password);

    /// <summary>The page's width as laid out, and what sticks out past the screen's right edge (the first few).</summary>
    static async Task<JsonElement> FitAsync(IPage page) => await page.EvaluateAsync<JsonElement>("""
        () => ({
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          past: Array.from(document.querySelectorAll("body *"))
            .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-scroll"))
            .slice(0, 5).map((e) => e.tagName.toLowerCase() + (e.id ? "#" + e.id : "") + (e.className ? "." + String(e.className).replace(/ /g, ".") : "")),
        })
        """);

    [Theory]
    [InlineData(1280, 800)]
    [InlineData(360, 740)]
    public async Task Long_words_wrap_and_no_page_scrolls_sideways(int width, int height)
    {
        using var api = await NewUserAsync();
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Email, subject = UrlSubject, perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { LongAddress, "alan@encom.test" }, html = "<p>See <a href=\"https://encom.test/grid\">the grid</a></p>",
        });
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);
        // The long address opens it: a card in the live feed, with the subject beside the address.
        using (var recipient = new HttpClient())
        {
            recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
            (await recipient.GetAsync(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString())).EnsureSuccessStatusCode();
        }

        Guid documentId, sequenceId, templateId;
        const string gateToken = "LongWordsGateToken000001";
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == Email);
            var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
            // Someone the mail was forwarded to answers, from a long address; Alan's copy was refused with a long reason.
            var copy = await db.Copies.FirstAsync(c => c.TrackedMessageId == messageId);
            db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = copy.Id, Kind = EventKind.Reply,
                OccurredAt = DateTimeOffset.UtcNow, FromAddress = "forwarded." + LongAddress, Verdict = Verdict.Human,
                Reason = $"reply from forwarded.{LongAddress} (not a recipient: forwarded or added)",
            });
            var alan = await db.Recipients.SingleAsync(r => r.TrackedMessageId == messageId && r.Address == "alan@encom.test");
            var alanCopy = await db.Copies.SingleAsync(c => c.Id == alan.CopyId);
            alanCopy.NotSentReason = $"550 5.1.1 <{LongAddress}>: Recipient address rejected: {LongWord}";
            alanCopy.NotSentAt = DateTimeOffset.UtcNow.AddMinutes(-30);

            var content = new ContentItem
            {
                TeamId = user.TeamId, UserId = user.Id, Name = LongWord + ".pdf", OriginalSha256 = new string('0', 64),
                PdfSha256 = new string('0', 64), PageCount = 2, CreatedAt = DateTimeOffset.UtcNow,
            };
            db.AddRange(content, new ContentLink
            {
                Token = gateToken, ContentId = content.Id, TeamId = user.TeamId, UserId = user.Id, CreatedAt = DateTimeOffset.UtcNow,
                EmailGate = ReaderEmailGate.Email,
            });
            documentId = content.Id;

            var mailbox = new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = Email, ProtectedSecret = "unused",
                Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
            };
            var template = new MailTemplate
            {
                TeamId = user.TeamId, UserId = user.Id, Name = LongWord, Subject = UrlSubject, Html = "<p>Hello</p>",
                CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
            };
            var sequence = new Sequence
            {
                TeamId = user.TeamId, UserId = user.Id, Name = LongWord, MailboxId = mailbox.Id, TimeZone = "Europe/Berlin",
                Status = SequenceStatus.Paused, CreatedAt = DateTimeOffset.UtcNow, Steps = [new SequenceStep { Position = 0, TemplateId = template.Id }],
            };
            db.AddRange(mailbox, template, sequence);
            sequenceId = sequence.Id;
            templateId = template.Id;
            // A webhook whose URL is one long word: the delivery log lists it among its targets.
            db.Webhooks.Add(new WebhookEndpoint
            {
                TeamId = user.TeamId, Url = "https://hooks.example.com/" + new string('h', 600), ProtectedSecret = "unused", EventTypes = "message.opened",
                CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }

        var page = await SignInAsync(width, height);
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        foreach (var (path, shot) in new[]
                 {
                     ("/", "list"), ($"/messages/{messageId}", "message"), ($"/documents/{documentId}", "document"), ($"/sequences/{sequenceId}", "sequence"),
                     ($"/templates/{templateId}", "template"), ("/sequences", "sequences"), ("/templates", "templates"), ("/webhooks/deliveries", "deliveries"),
                 })
        {
            await page.GotoAsync(server.BaseUrl + path);
            await Assertions.Expect(page.Locator("main h1").First).ToBeVisibleAsync();
            if (path == "/") await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
            if (path.StartsWith("/messages/", StringComparison.Ordinal)) await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
            var fit = await FitAsync(page);
            Assert.True(fit.GetProperty("innerWidth").GetInt32() == width, $"{width}px {path}: {fit}");
            Assert.True(fit.GetProperty("scrollWidth").GetInt32() <= width, $"{width}px {path}: {fit}");
            await Chromium.ShotAsync(page, $"long-words-{width}-{shot}");
        }

        // The share link's address form, as a reader sees it (the sender's own browser goes straight to the document).
        var reader = await (await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height }, IsMobile = width < 700, HasTouch = width < 700,
        })).NewPageAsync();
        await reader.GotoAsync($"{server.BaseUrl}/d/{gateToken}");
        await Assertions.Expect(reader.Locator("#gate-email-input")).ToBeVisibleAsync();
        var gate = await FitAsync(reader);
        Assert.True(gate.GetProperty("scrollWidth").GetInt32() <= width, $"{width}px the share link's gate: {gate}");
        await Chromium.ShotAsync(reader, $"long-words-{width}-share-link-gate");

        if (width >= 1024)
        {
            // The list's figures are in view beside the long subject, not behind its table's sideways scroll.
            await page.GotoAsync(server.BaseUrl + "/");
            var columns = await page.EvaluateAsync<JsonElement>("""
                () => {
                  const box = document.querySelector("#messages").closest(".table-scroll").getBoundingClientRect();
                  return Array.from(document.querySelectorAll("#messages thead th")).map((th) => {
                    const r = th.getBoundingClientRect();
                    return { name: th.textContent.trim(), left: r.left, right: r.right, boxRight: box.right, screen: window.innerWidth };
                  });
                }
                """);
            foreach (var column in columns.EnumerateArray())
            {
                var right = column.GetProperty("right").GetDouble();
                Assert.True(right <= column.GetProperty("boxRight").GetDouble() + 1 && right <= width, $"{column}");
            }
            Assert.Contains(columns.EnumerateArray(), c => c.GetProperty("name").GetString() == "Opens");
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
