using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Text from outside the team on the web app's pages in Chromium: a reply's From, a recipient's name, a mail server's
/// failure, a share link's reader and the link they followed, a sequence's name, each with a U+202E RIGHT-TO-LEFT
/// OVERRIDE in it. None may turn round the page's own words beside it ("deilper" for "replied", a badge, a date), and
/// an address or a URL shows what it is, its override a visible U+FFFD, never another address; whether the server
/// rendered the row or the live feed's script added it. The data is written to the database directly: what the API
/// accepts is not what these pages are tested on. Screenshots of each page.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class OutsidersTextBrowserTests() : ServerBrowserTest("et-web-bidi-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";
    const string Rlo = "\u202E";

    /// <summary>"&lt;U+202E&gt;moc.knab-terces@target.test": shown as "tset.tegrat@secret-bank.com" when the override works.</summary>
    const string DisguisedFrom = Rlo + "moc.knab-terces@target.test";
    const string ShownFrom = "\uFFFDmoc.knab-terces@target.test";

    Task<HttpClient> NewUserAsync() => NewTeamUserAsync(Email, Password);

    Task<IPage> SignInAsync(List<string> errors) =>
        SignedInPageAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 800 } }, Email, Password, page =>
        {
            page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
            page.PageError += (_, e) => errors.Add(e);
        });

    /// <summary>A reply from <paramref name="from"/> to the message, as the inbound pipeline records a forwarded colleague's.</summary>
    async Task ReplyAsync(Guid messageId, string from)
    {
        await using var db = OpenDb();
        var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
        var copy = await db.Copies.FirstAsync(c => c.TrackedMessageId == messageId);
        db.Events.Add(new TrackingEvent
        {
            TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = copy.Id, Kind = EventKind.Reply,
            OccurredAt = DateTimeOffset.UtcNow, FromAddress = from, Verdict = Verdict.Human,
            Reason = $"reply from {from} (not a recipient: forwarded or added)",
        });
        await db.SaveChangesAsync();
    }

    [Fact]
    public async Task Outsiders_text_cannot_turn_round_the_pages_words_nor_show_an_address_as_another()
    {
        using var api = await NewUserAsync();
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Email, subject = "Quarterly pricing", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "Dana <dana@target.test>", "alan@target.test" }, html = "<p>Hello</p>",
        });
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);
        var pixel = reg.GetProperty("copies")[1].GetProperty("pixelUrl").GetString()!;

        Guid sequenceId, documentId;
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == Email);
            // A name that puts ".live" before "tset", and a subject that ends in "exe.pdf".
            var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
            msg.Subject = "Quarterly pricing " + Rlo + "fdp.exe";
            (await db.Recipients.SingleAsync(r => r.TrackedMessageId == messageId && r.Address == "dana@target.test")).Name = "Dana " + Rlo + "tset.live";
            // A mail server's refusal that would turn round the date after it.
            var alan = await db.Recipients.SingleAsync(r => r.TrackedMessageId == messageId && r.Address == "alan@target.test");
            var alanCopy = await db.Copies.SingleAsync(c => c.Id == alan.CopyId);
            alanCopy.NotSentReason = "550 5.1.1 " + Rlo + "deifirev ton (refused)";
            alanCopy.NotSentAt = DateTimeOffset.UtcNow.AddMinutes(-30);

            // A sequence whose name would turn its status badge round; a U+2069 in it would close the isolation early.
            var mailbox = new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = Email, ProtectedSecret = "unused",
                Status = MailboxStatus.Disabled, CreatedAt = DateTimeOffset.UtcNow,
            };
            var template = new MailTemplate
            {
                TeamId = user.TeamId, UserId = user.Id, Name = "Intro " + Rlo + "1 pets", Subject = "Hello", Html = "<p>Hello</p>",
                CreatedAt = DateTimeOffset.UtcNow, UpdatedAt = DateTimeOffset.UtcNow,
            };
            var sequence = new Sequence
            {
                TeamId = user.TeamId, UserId = user.Id, Name = "Renewals \u2069" + Rlo + "Q4", MailboxId = mailbox.Id, TimeZone = "Europe/Berlin",
                Status = SequenceStatus.Paused, CreatedAt = DateTimeOffset.UtcNow,
                Steps = [new SequenceStep { Position = 0, TemplateId = template.Id }],
            };
            db.AddRange(mailbox, template, sequence);
            sequenceId = sequence.Id;

            // A document read through a share link by someone who gave a disguised address, and followed a disguised URL.
            var content = new ContentItem
            {
                TeamId = user.TeamId, UserId = user.Id, Name = "Price list " + Rlo + "fdp.exe", OriginalSha256 = new string('0', 64),
                PdfSha256 = new string('0', 64), PageCount = 2, CreatedAt = DateTimeOffset.UtcNow,
            };
            var link = new ContentLink
            {
                Token = "BidiShareLinkToken000001", ContentId = content.Id, TeamId = user.TeamId, UserId = user.Id,
                CreatedAt = DateTimeOffset.UtcNow, EmailGate = ReaderEmailGate.Email,
            };
            const string reader = Rlo + "moc.yrtsinim@reader.test";
            db.AddRange(content, link, new DocumentVisit
            {
                ContentLinkId = link.Id, ContentId = content.Id, TeamId = user.TeamId, UserId = user.Id, StartedAt = DateTimeOffset.UtcNow.AddMinutes(-5),
                LastSeenAt = DateTimeOffset.UtcNow, Verdict = Verdict.Human, Reason = "a person", ActiveMs = 4000, MaxPage = 1, ReaderEmail = reader,
            }, new TrackingEvent
            {
                TeamId = user.TeamId, UserId = user.Id, ContentId = content.Id, Kind = EventKind.DocumentLink, OccurredAt = DateTimeOffset.UtcNow,
                Verdict = Verdict.Human, Reason = "a person", Url = "https://docs.example.test/" + Rlo + "gnp.exe", Page = 1, ReaderEmail = reader,
            });
            documentId = content.Id;
            await db.SaveChangesAsync();
        }
        await ReplyAsync(messageId, DisguisedFrom);

        var errors = new List<string>();
        var page = await SignInAsync(errors);

        // The message page, as the server renders it: the recipients, the refusal and its date, the timeline's reply.
        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var reply = page.Locator("#feed li", new PageLocatorOptions { HasText = "replied" });
        await Assertions.Expect(reply).ToHaveCountAsync(1);
        await BidiLayout.InOrderAsync(page, "#feed li");
        await BidiLayout.InOrderAsync(page, "#recipients td:first-child");
        await BidiLayout.InOrderAsync(page, ".not-sent[role=note]");
        await BidiLayout.InOrderAsync(page, "h1");
        await Assertions.Expect(reply.Locator("strong .exact")).ToHaveTextAsync(ShownFrom);
        await Assertions.Expect(reply.Locator(".reason .exact")).ToHaveTextAsync($"reply from {ShownFrom} (not a recipient: forwarded or added)");
        await Assertions.Expect(page.Locator(".not-sent[role=note] .exact")).ToHaveTextAsync("550 5.1.1 \uFFFDdeifirev ton (refused)");
        await Chromium.ShotAsync(page, "bidi-01-message");

        // Another one arrives while the page is open: the script words it the same way.
        await ReplyAsync(messageId, DisguisedFrom.Replace("terces", "rehtona", StringComparison.Ordinal));
        using var crawler = new HttpClient();
        crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)");
        (await crawler.GetAsync(pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(reply).ToHaveCountAsync(2);
        await BidiLayout.InOrderAsync(page, "#feed li");
        await Assertions.Expect(reply.First.Locator("strong .exact")).ToHaveTextAsync("\uFFFDmoc.knab-rehtona@target.test");
        await Chromium.ShotAsync(page, "bidi-02-message-live");

        // The list and its live feed: the server's rows, then one the script adds.
        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var feed = page.Locator("#feed li", new PageLocatorOptions { HasText = "replied" });
        await Assertions.Expect(feed).ToHaveCountAsync(2);
        await ReplyAsync(messageId, DisguisedFrom.Replace("terces", "driht", StringComparison.Ordinal));
        (await crawler.GetAsync(pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(feed).ToHaveCountAsync(3);
        await BidiLayout.InOrderAsync(page, "#feed li");
        await BidiLayout.InOrderAsync(page, "#messages td");
        await Assertions.Expect(feed.First.Locator("strong .exact")).ToHaveTextAsync("\uFFFDmoc.knab-driht@target.test");
        await Assertions.Expect(feed.First).ToContainTextAsync("replied to Quarterly pricing");
        await Chromium.ShotAsync(page, "bidi-03-list-live");

        // The document: the reader's address apart from "(given by the reader, not verified)", and the URL they followed.
        await page.GotoAsync($"{server.BaseUrl}/documents/{documentId}");
        var readers = page.Locator("#readers tbody tr");
        await Assertions.Expect(readers).ToHaveCountAsync(1);
        await BidiLayout.InOrderAsync(page, "#readers td");
        await BidiLayout.InOrderAsync(page, "h1");
        await Assertions.Expect(readers.Locator("td").First).ToHaveTextAsync("\uFFFDmoc.yrtsinim@reader.test (given by the reader, not verified)");
        await Assertions.Expect(readers.Locator(".link-url")).ToHaveTextAsync("https://docs.example.test/\uFFFDgnp.exe");
        await Chromium.ShotAsync(page, "bidi-04-document");

        // The sequence: its status badge after its name, and its step's template.
        await page.GotoAsync($"{server.BaseUrl}/sequences/{sequenceId}");
        await Assertions.Expect(page.Locator("#sequence-status")).ToHaveTextAsync("paused");
        await BidiLayout.InOrderAsync(page, "#sequence-name");
        await BidiLayout.InOrderAsync(page, "#steps td");
        await page.GotoAsync(server.BaseUrl + "/sequences");
        await BidiLayout.InOrderAsync(page, "#sequences td");
        await Chromium.ShotAsync(page, "bidi-05-sequences");

        // Nowhere is an override left in an address or a URL on these pages.
        foreach (var path in new[] { $"/messages/{messageId}", "/", $"/documents/{documentId}" })
        {
            await page.GotoAsync(server.BaseUrl + path);
            var shown = await page.Locator("bdi.exact").AllTextContentsAsync();
            Assert.NotEmpty(shown);
            Assert.All(shown, t => Assert.True(t.IndexOfAny(BidiLayout.Controls.ToCharArray()) < 0, $"{path}: {t}"));
        }
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
