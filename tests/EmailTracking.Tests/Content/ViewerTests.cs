using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Content;

/// <summary>What a recipient's browser does with a tracked document link, at the HTTP level.</summary>
public abstract class ViewerTests(AppFactory app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";

    /// <summary>A message to alan and flynn with a 4-page document; answers each one's document link path.</summary>
    async Task<(TestUser User, Guid ContentId, string Alan, string Flynn)> SentWithDocumentAsync(bool allowDownload = true)
    {
        var user = await app.NewUserAsync();
        var item = await user.UploadOkAsync(await Documents.PdfAsync(4), "Proposal.pdf", allowDownload);
        var share = await user.ShareLinkAsync(item);
        var reg = await user.RegisterSimpleAsync($"<p>See <a href=\"{share}\">the proposal</a></p>", to: ["alan@encom.test", "flynn@encom.test"]);
        var links = reg.GetProperty("copies").EnumerateArray()
            .ToDictionary(c => c.GetProperty("recipients")[0].GetString()!, c => TestApi.Path(ContentTestApi.DocumentLinks(c.GetProperty("html").GetString()!).Single()));
        return (user, item.GetProperty("id").GetGuid(), links["alan@encom.test"], links["flynn@encom.test"]);
    }

    static HttpClient Browser(AppFactory app, string? cookie = null)
    {
        var client = app.Anonymous(Chrome);
        if (cookie is not null) client.DefaultRequestHeaders.Add("Cookie", cookie);
        return client;
    }

    static async Task<JsonElement> StartVisitAsync(HttpClient client, string link)
    {
        var res = await client.PostAsJsonAsync(link + "/visits", new { });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    static Task<HttpResponseMessage> BeatAsync(HttpClient client, string link, string visitId, string json) =>
        client.PostAsync($"{link}/visits/{visitId}/beats", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task The_viewer_page_is_served_with_a_strict_policy_and_its_opening_is_recorded_per_recipient()
    {
        var (user, contentId, alan, _) = await SentWithDocumentAsync();
        var page = await Browser(app).GetAsync(alan);
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        Assert.Equal("text/html", page.Content.Headers.ContentType?.MediaType);
        var csp = page.Headers.GetValues("Content-Security-Policy").Single();
        Assert.Contains("script-src 'self';", csp);
        Assert.DoesNotContain("unsafe-inline", csp);
        Assert.DoesNotContain("unsafe-eval", csp);
        Assert.Contains("frame-ancestors 'none'", csp);
        var html = await page.Content.ReadAsStringAsync();
        Assert.DoesNotMatch("<script(?![^>]*\\bsrc=)[^>]*>", html); // no inline script
        Assert.DoesNotContain(" style=", html);

        // Its script is served compressed and, its name carrying a hash of its content, cached for good.
        var script = System.Text.RegularExpressions.Regex.Match(html, "src=\"(/viewer/assets/[^\"]+\\.js)\"").Groups[1].Value;
        Assert.NotEmpty(script);
        var asset = new HttpRequestMessage(HttpMethod.Get, script);
        asset.Headers.AcceptEncoding.ParseAdd("gzip");
        var served = await Browser(app).SendAsync(asset);
        Assert.Equal(HttpStatusCode.OK, served.StatusCode);
        Assert.Contains("gzip", served.Content.Headers.ContentEncoding);
        Assert.Contains("immutable", served.Headers.CacheControl?.ToString());

        var views = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId && e.Kind == EventKind.DocumentView).ToList());
        var view = Assert.Single(views);
        Assert.Equal(Verdict.Human, view.Verdict);
        Assert.Equal("alan@encom.test", app.WithDb(db => db.Recipients.Single(r => r.Id == view.RecipientId).Address));

        // A link previewer fetching the page is recorded as a machine; the unknown link is a plain 404.
        await app.Anonymous("Slackbot-LinkExpanding 1.0 (+https://api.slack.com/robots)").GetAsync(alan);
        Assert.Contains(app.WithDb(db => db.Events.Where(e => e.ContentId == contentId && e.Kind == EventKind.DocumentView).Select(e => e.Verdict).ToList()), v => v == Verdict.Bot);
        Assert.Equal(HttpStatusCode.NotFound, (await Browser(app).GetAsync("/d/AAAAAAAAAAAAAAAAAAAAAAAA")).StatusCode);
        _ = user;
    }

    [Fact]
    public async Task Time_per_page_order_and_downloads_are_recorded_from_cumulative_beats_and_retries_change_nothing()
    {
        var (user, contentId, alan, flynn) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var visit = await StartVisitAsync(browser, alan);
        Assert.False(visit.GetProperty("preview").GetBoolean());
        Assert.Equal(4, visit.GetProperty("pageCount").GetInt32());
        Assert.Equal("Proposal.pdf", visit.GetProperty("name").GetString());
        var id = visit.GetProperty("visitId").GetString()!;

        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, alan, id, """{"pages":{"1":1500},"order":[1],"current":1}""")).StatusCode);
        await Task.Delay(1500);
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, alan, id, """{"pages":{"1":2500,"3":1200},"order":[1,3],"current":3}""")).StatusCode);
        // A late retry of the first beat lowers nothing.
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, alan, id, """{"pages":{"1":1500},"order":[1],"current":1}""")).StatusCode);
        // A page cannot claim more time than the visit has lasted (plus a little slack).
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, alan, id, """{"pages":{"1":2500,"3":1200,"2":999999999},"order":[1,3,2],"current":2}""")).StatusCode);

        var download = await browser.GetAsync(visit.GetProperty("downloadUrl").GetString());
        Assert.Equal(HttpStatusCode.OK, download.StatusCode);
        Assert.Equal("Proposal.pdf", download.Content.Headers.ContentDisposition?.FileNameStar ?? download.Content.Headers.ContentDisposition?.FileName?.Trim('"'));

        var stats = await user.Client.GetJsonAsync($"/api/content/{contentId}/stats");
        Assert.Equal(1, stats.GetProperty("visits").GetInt32());
        Assert.Equal(1, stats.GetProperty("downloads").GetInt32());
        var reader = stats.GetProperty("readers").EnumerateArray().Single();
        Assert.Equal("alan@encom.test", reader.GetProperty("reader").GetString());
        Assert.Equal(3, reader.GetProperty("maxPage").GetInt32());
        var pageMs = reader.GetProperty("pageMs").EnumerateArray().Select(e => e.GetInt64()).ToArray();
        Assert.Equal(2500, pageMs[0]);
        Assert.InRange(pageMs[1], 1, 15_000); // capped near the visit's length, not 999999999
        Assert.Equal(1200, pageMs[2]);
        Assert.Equal(0, pageMs[3]);
        var order = app.WithDb(db => db.DocumentPageTimes.Where(p => p.VisitId == Guid.Parse(id)).OrderBy(p => p.Order).Select(p => p.Page).ToList());
        Assert.Equal([1, 3, 2], order);

        // The live feed got one event per page reached, and the download.
        var kinds = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId).OrderBy(e => e.Id).Select(e => new { e.Kind, e.Page }).ToList());
        Assert.Equal([1, 3, 2], kinds.Where(k => k.Kind == EventKind.DocumentPage).Select(k => k.Page!.Value));
        Assert.Single(kinds, k => k.Kind == EventKind.Download);

        // The message's timeline names the document and the page (what the live feed shows as "is reading … page 3 of 4").
        var messageId = app.WithDb(db => db.Events.First(e => e.ContentId == contentId).TrackedMessageId);
        var timeline = (await user.Client.GetJsonAsync($"/api/messages/{messageId}")).GetProperty("events").EnumerateArray().ToList();
        var third = timeline.Single(e => e.GetProperty("kind").GetString() == "document-page" && e.GetProperty("page").GetInt32() == 3);
        Assert.Equal("Proposal.pdf", third.GetProperty("document").GetString());
        Assert.Equal(4, third.GetProperty("pageCount").GetInt32());
        Assert.Equal("alan@encom.test", third.GetProperty("recipient").GetString());

        // Flynn has read nothing; his link is his own.
        Assert.DoesNotContain(stats.GetProperty("readers").EnumerateArray(), r => r.GetProperty("reader").GetString() == "flynn@encom.test");
        _ = flynn;
    }

    [Fact]
    public async Task Readers_of_shared_copies_are_counted_per_copy_and_named_by_its_recipients_apart_from_the_share_links_readers()
    {
        // The Outlook add-in and the Gmail add-on register every message as one shared copy, so the document links in it
        // name no recipient. Two such messages to two prospects, and the share link itself pasted elsewhere: three rows.
        var user = await app.NewUserAsync();
        var item = await user.UploadOkAsync(await Documents.PdfAsync(3), "Proposal.pdf");
        var contentId = item.GetProperty("id").GetGuid();
        var share = await user.ShareLinkAsync(item);
        // The share link made an hour ago, as the messages were sent: opened seconds after it was made, a visit is a scanner's.
        var token = ContentTestApi.Token(share);
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        var sent = new List<(string Link, string MessageId, string To)>();
        foreach (var to in new[] { new[] { "alan@encom.test", "lora@encom.test" }, new[] { "bob@other.test" } })
        {
            var reg = await user.RegisterSimpleAsync($"<p>See <a href=\"{share}\">the proposal</a></p>", perRecipient: false, to: to);
            sent.Add((TestApi.Path(ContentTestApi.DocumentLinks(reg.GetProperty("copies")[0].GetProperty("html").GetString()!).Single()),
                reg.GetProperty("id").GetString()!, string.Join(", ", to)));
        }
        foreach (var ((link, _, _), page) in sent.Append((TestApi.Path(share), "", "")).Zip(new[] { 1, 3, 2 }))
        {
            var browser = Browser(app);
            var id = (await StartVisitAsync(browser, link)).GetProperty("visitId").GetString()!;
            Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, link, id, $$"""{"pages":{"{{page}}":1000},"order":[{{page}}],"current":{{page}}}""")).StatusCode);
            Assert.Equal(HttpStatusCode.NoContent, (await LinkAsync(browser, link, id, $$"""{"url":"https://encom.test/p{{page}}","page":{{page}}}""")).StatusCode);
        }

        var stats = await user.Client.GetJsonAsync($"/api/content/{contentId}/stats");
        var readers = stats.GetProperty("readers").EnumerateArray().ToDictionary(r => r.GetProperty("reader").GetString()!);
        Assert.Equal(["Readers of the share link", "alan@encom.test, lora@encom.test", "bob@other.test"], readers.Keys.Order(StringComparer.Ordinal));
        string Row(JsonElement r) => $"visits={r.GetProperty("visits").GetInt32()} far={r.GetProperty("maxPage").GetInt32()} message={r.GetProperty("messageId")} " +
                                     $"links={string.Join(",", r.GetProperty("links").EnumerateArray().Select(l => l.GetProperty("url").GetString()))}";
        Assert.Equal($"visits=1 far=1 message={sent[0].MessageId} links=https://encom.test/p1", Row(readers[sent[0].To]));
        Assert.Equal($"visits=1 far=3 message={sent[1].MessageId} links=https://encom.test/p3", Row(readers[sent[1].To]));
        Assert.Equal("visits=1 far=2 message= links=https://encom.test/p2", Row(readers["Readers of the share link"]));
        Assert.Equal(JsonValueKind.Null, readers[sent[0].To].GetProperty("recipientId").ValueKind);
        Assert.NotEqual(readers[sent[0].To].GetProperty("copyId").GetGuid(), readers[sent[1].To].GetProperty("copyId").GetGuid());
    }

    [Fact]
    public async Task A_beat_that_brings_two_new_pages_gives_each_its_live_event_in_reading_order()
    {
        var (_, contentId, alan, _) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;
        // The reader turned from page 2 to page 1 before the first heartbeat: one beat, two new pages.
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, alan, id, """{"pages":{"1":300,"2":500},"order":[2,1],"current":1}""")).StatusCode);
        var pages = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId && e.Kind == EventKind.DocumentPage).OrderBy(e => e.Id).Select(e => e.Page).ToList());
        Assert.Equal([2, 1], pages);
    }

    [Fact]
    public async Task The_live_feed_says_who_is_reading_which_page()
    {
        var (user, _, alan, _) = await SentWithDocumentAsync();
        using var feed = await Sse.OpenAsync(user.Client, "/api/feed?after=0");
        var browser = Browser(app);
        await browser.GetAsync(alan);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;
        await BeatAsync(browser, alan, id, """{"pages":{"1":400},"order":[1],"current":1}""");
        await BeatAsync(browser, alan, id, """{"pages":{"1":400,"3":200},"order":[1,3],"current":3}""");
        var items = new List<JsonElement>();
        while (items.Count < 3) items.Add((await feed.NextAsync(TimeSpan.FromSeconds(15))).Data);
        Assert.Equal(["document-view", "document-page", "document-page"], items.Select(i => i.GetProperty("kind").GetString()));
        var last = items[^1];
        Assert.Equal("alan@encom.test", last.GetProperty("recipient").GetString());
        Assert.Equal("Proposal.pdf", last.GetProperty("document").GetString());
        Assert.Equal(3, last.GetProperty("page").GetInt32());
        Assert.Equal(4, last.GetProperty("pageCount").GetInt32());
        Assert.Equal("human", last.GetProperty("verdict").GetString());
    }

    [Fact]
    public async Task The_senders_own_preview_is_never_recorded()
    {
        var (user, contentId, alan, _) = await SentWithDocumentAsync();
        var cookie = $"{DeviceCookie.Name}={app.Services.GetRequiredService<DeviceCookie>().Protect(user.Id)}";
        var browser = Browser(app, cookie);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(alan)).StatusCode);
        var visit = await StartVisitAsync(browser, alan);
        Assert.True(visit.GetProperty("preview").GetBoolean());
        Assert.Equal(JsonValueKind.Null, visit.GetProperty("visitId").ValueKind);
        Assert.Equal(HttpStatusCode.OK, (await browser.GetAsync(visit.GetProperty("downloadUrl").GetString())).StatusCode);
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId)));
        Assert.Equal(0, app.WithDb(db => db.DocumentVisits.Count(v => v.ContentId == contentId)));
    }

    [Fact]
    public async Task The_pdf_is_served_in_ranges_and_downloads_follow_the_senders_choice()
    {
        var (_, _, alan, _) = await SentWithDocumentAsync(allowDownload: false);
        var browser = Browser(app);
        var req = new HttpRequestMessage(HttpMethod.Get, alan + "/file");
        req.Headers.Range = new RangeHeaderValue(0, 1023);
        var part = await browser.SendAsync(req);
        Assert.Equal(HttpStatusCode.PartialContent, part.StatusCode);
        Assert.Equal(1024, (await part.Content.ReadAsByteArrayAsync()).Length);
        Assert.Equal("bytes", part.Headers.AcceptRanges.Single());
        Assert.NotNull(part.Content.Headers.ContentRange?.Length);

        var visit = await StartVisitAsync(browser, alan);
        Assert.False(visit.GetProperty("allowDownload").GetBoolean());
        Assert.Equal(JsonValueKind.Null, visit.GetProperty("downloadUrl").ValueKind);
        Assert.Equal(HttpStatusCode.Forbidden, (await browser.GetAsync(alan + "/download")).StatusCode);
    }

    [Fact]
    public async Task A_download_is_served_in_ranges_and_counted_once_per_visit_however_many_requests_fetch_it()
    {
        var (user, contentId, alan, _) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var download = (await StartVisitAsync(browser, alan)).GetProperty("downloadUrl").GetString()!;
        var whole = await browser.GetAsync(download);
        Assert.Equal(HttpStatusCode.OK, whole.StatusCode);
        Assert.Equal("bytes", whole.Headers.AcceptRanges.Single());
        var bytes = await whole.Content.ReadAsByteArrayAsync();
        var half = bytes.Length / 2;

        async Task<HttpResponseMessage> RangeAsync(string url, long from, long? to, EntityTagHeaderValue? ifRange = null)
        {
            var req = new HttpRequestMessage(HttpMethod.Get, url);
            req.Headers.Range = new RangeHeaderValue(from, to);
            if (ifRange is not null) req.Headers.IfRange = new RangeConditionHeaderValue(ifRange);
            var res = await browser.SendAsync(req);
            Assert.Equal(HttpStatusCode.PartialContent, res.StatusCode);
            Assert.Equal(from, res.Content.Headers.ContentRange?.From);
            Assert.Equal(bytes.Length, res.Content.Headers.ContentRange?.Length);
            Assert.Equal(bytes[(int)from..(int)((to ?? bytes.Length - 1) + 1)], await res.Content.ReadAsByteArrayAsync());
            return res;
        }
        int Downloads() => app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.Download));

        // A download manager fetches the file in two halves, and the browser resumes the second (If-Range: the same
        // file): one download.
        await RangeAsync(download, 0, half - 1);
        await RangeAsync(download, half, null);
        await RangeAsync(download, half, null, whole.Headers.ETag);
        Assert.Equal(1, (await user.Client.GetJsonAsync($"/api/content/{contentId}/stats")).GetProperty("downloads").GetInt32());
        Assert.Equal(1, Downloads());

        // The reader comes back another day: a download resumed in that visit is not a new one, saving it again is.
        var again = (await StartVisitAsync(browser, alan)).GetProperty("downloadUrl").GetString()!;
        await RangeAsync(again, half, null);
        Assert.Equal(1, Downloads());
        await RangeAsync(again, 0, null);
        Assert.Equal(2, (await user.Client.GetJsonAsync($"/api/content/{contentId}/stats")).GetProperty("downloads").GetInt32());
        Assert.Equal(2, Downloads());
    }

    [Fact]
    public async Task The_pages_of_a_visit_together_never_claim_more_time_than_the_visit_lasted_and_never_less_than_none()
    {
        var (user, contentId, alan, flynn) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;
        // One beat claims every page for an hour, seconds into the visit: the pages share the visit's length.
        Assert.Equal(HttpStatusCode.NoContent,
            (await BeatAsync(browser, alan, id, """{"pages":{"1":3600000,"2":3600000,"3":3600000,"4":3600000},"order":[1,2,3,4],"current":4}""")).StatusCode);
        var pages = app.WithDb(db => db.DocumentPageTimes.Where(p => p.VisitId == Guid.Parse(id)).OrderBy(p => p.Page).Select(p => p.ActiveMs).ToList());
        Assert.Equal(4, pages.Count);
        Assert.All(pages, ms => Assert.InRange(ms, 1, 15_000));
        Assert.Single(pages.Distinct());
        var stats = await user.Client.GetJsonAsync($"/api/content/{contentId}/stats");
        var pageSum = stats.GetProperty("pageMs").EnumerateArray().Sum(e => e.GetInt64());
        Assert.True(pageSum <= stats.GetProperty("activeMs").GetInt64(), $"pages {pageSum} ms in a visit of {stats.GetProperty("activeMs").GetInt64()} ms");

        // A visit whose start is ahead of this server's clock (another instance's clock, or this one stepped back):
        // a page's time is never below nothing.
        var ahead = (await StartVisitAsync(browser, flynn)).GetProperty("visitId").GetString()!;
        await app.WithDbAsync(db => db.DocumentVisits.Where(v => v.Id == Guid.Parse(ahead))
            .ExecuteUpdateAsync(u => u.SetProperty(v => v.StartedAt, DateTimeOffset.UtcNow.AddHours(1))));
        Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, flynn, ahead, """{"pages":{"1":1000},"order":[1],"current":1}""")).StatusCode);
        Assert.Equal([0L], app.WithDb(db => db.DocumentPageTimes.Where(p => p.VisitId == Guid.Parse(ahead)).Select(p => p.ActiveMs).ToList()));
        Assert.Equal(0, app.WithDb(db => db.DocumentVisits.Single(v => v.Id == Guid.Parse(ahead)).ActiveMs));
    }

    static Task<HttpResponseMessage> LinkAsync(HttpClient client, string link, string visitId, string json) =>
        client.PostAsync($"{link}/visits/{visitId}/links", new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task A_followed_link_with_a_control_character_is_refused_with_a_400_saying_so_never_stored()
    {
        // A URL has control characters percent-encoded. A NUL as sent failed the query and the insert on PostgreSQL (a 500).
        var (_, contentId, alan, _) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;
        // JSON escapes, as a page's script sends them.
        foreach (var url in new[] { @"https://x.com/\u0000", @"mailto:a\u0000@b.com", @"https://x.com/a\u0007b", @"https://x.com/a\r\nb" })
        {
            var res = await LinkAsync(browser, alan, id, $$"""{"url":"{{url}}","page":1}""");
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Contains("control characters", (await res.Content.ReadAsStringAsync()));
        }
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink)));
    }

    [Fact]
    public async Task A_link_followed_inside_the_document_is_one_event_with_its_address_and_page_and_bad_reports_change_nothing()
    {
        var (user, contentId, alan, flynn) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;

        Assert.Equal(HttpStatusCode.NoContent, (await LinkAsync(browser, alan, id, """{"url":"https://encom.test/pricing","page":2}""")).StatusCode);
        // The beacon's retry, or a double click: still one.
        Assert.Equal(HttpStatusCode.NoContent, (await LinkAsync(browser, alan, id, """{"url":"https://encom.test/pricing","page":2}""")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await LinkAsync(browser, alan, id, """{"url":"mailto:sales@encom.test","page":3}""")).StatusCode);
        var followed = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink).OrderBy(e => e.Id).ToList());
        Assert.Equal(["https://encom.test/pricing", "mailto:sales@encom.test"], followed.Select(e => e.Url));
        Assert.Equal([2, 3], followed.Select(e => e.Page!.Value));
        Assert.All(followed, e => Assert.Equal(Verdict.Human, e.Verdict));
        Assert.Equal("alan@encom.test", app.WithDb(db => db.Recipients.Single(r => r.Id == followed[0].RecipientId).Address));

        // The sender's timeline says who followed which link, in which document and on which page.
        var detail = await user.Client.GetJsonAsync($"/api/messages/{followed[0].TrackedMessageId}");
        Assert.Contains(detail.GetProperty("events").EnumerateArray(),
            i => i.GetProperty("kind").GetString() == "document-link" && i.GetProperty("linkUrl").GetString() == "https://encom.test/pricing"
                 && i.GetProperty("page").GetInt32() == 2 && i.GetProperty("document").GetString() == "Proposal.pdf");

        // The document's statistics list them per reader.
        var stats = await user.Client.GetJsonAsync($"/api/content/{contentId}/stats");
        var reader = stats.GetProperty("readers").EnumerateArray().Single(r => r.GetProperty("reader").GetString() == "alan@encom.test");
        Assert.Equal(["https://encom.test/pricing@2", "mailto:sales@encom.test@3"],
            reader.GetProperty("links").EnumerateArray().Select(l => $"{l.GetProperty("url").GetString()}@{l.GetProperty("page").GetInt32()}"));

        // What a page cannot send: other schemes, relative or overlong addresses, pages the document does not have,
        // broken or oversized bodies, someone else's visit, an unknown one.
        foreach (var body in new[]
                 {
                     "", "null", "{}", """{"url":"javascript:alert(1)","page":1}""", """{"url":"data:text/html,x","page":1}""",
                     """{"url":"/d/elsewhere","page":1}""", """{"url":"https://encom.test/x"}""", """{"url":"https://encom.test/x","page":0}""",
                     """{"url":"https://encom.test/x","page":5}""", "{\"url\":\"https://encom.test/" + new string('a', 2001) + "\",\"page\":1}", "{{{",
                     "{\"url\":\"https://encom.test/x\",\"page\":1," + new string(' ', 5000) + "}",
                 })
        {
            var res = await LinkAsync(browser, alan, id, body);
            Assert.True((int)res.StatusCode is >= 400 and < 500, $"{body[..Math.Min(body.Length, 40)]}: {(int)res.StatusCode}");
        }
        Assert.Equal(HttpStatusCode.NotFound, (await LinkAsync(browser, flynn, id, """{"url":"https://encom.test/x","page":1}""")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await LinkAsync(browser, alan, Guid.NewGuid().ToString(), """{"url":"https://encom.test/x","page":1}""")).StatusCode);
        Assert.Equal(2, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink)));

        // A page reporting link after link (a hostile reader) is cut off at the hourly limit: 429, nothing more recorded.
        for (var i = 2; i < EmailTracking.Server.Content.ViewerApi.MaxLinksPerHour; i++)
        {
            Assert.Equal(HttpStatusCode.NoContent, (await LinkAsync(browser, alan, id, $$"""{"url":"https://encom.test/p{{i}}","page":1}""")).StatusCode);
        }
        var flooded = await LinkAsync(browser, alan, id, """{"url":"https://encom.test/one-too-many","page":1}""");
        Assert.Equal(HttpStatusCode.TooManyRequests, flooded.StatusCode);
        Assert.Equal("application/problem+json", flooded.Content.Headers.ContentType?.MediaType);
        Assert.Equal(EmailTracking.Server.Content.ViewerApi.MaxLinksPerHour,
            app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink)));
    }

    [Fact]
    public async Task Once_the_document_is_removed_heartbeats_and_followed_links_are_410_removed_and_nothing_more_is_recorded()
    {
        // Viewers open on the document through a recipient's link and through its share link when the sender removes it:
        // their next heartbeat and link report are told it is gone (the viewer's script takes the document off the
        // screen), and neither the visit's time nor the feed gets anything more.
        var (user, contentId, alan, _) = await SentWithDocumentAsync();
        var shared = app.WithDb(db => db.ContentLinks.Single(l => l.ContentId == contentId && l.TrackedMessageId == null && l.SharedFromId == null).Token);
        var browser = Browser(app);
        var visits = new List<(string Link, string Id)>();
        foreach (var link in new[] { alan, "/d/" + shared })
        {
            var id = (await StartVisitAsync(browser, link)).GetProperty("visitId").GetString()!;
            Assert.Equal(HttpStatusCode.NoContent, (await BeatAsync(browser, link, id, """{"pages":{"1":800},"order":[1],"current":1}""")).StatusCode);
            visits.Add((link, id));
        }
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/content/{contentId}")).StatusCode);
        var visitIds = visits.Select(v => Guid.Parse(v.Id)).ToList();
        // What is recorded of the reading: its events, each page's time, each visit's totals.
        string Recorded() => app.WithDb(db => string.Join("\n", [
            $"events {db.Events.Count(e => e.ContentId == contentId)}",
            .. db.DocumentPageTimes.Where(p => visitIds.Contains(p.VisitId)).AsEnumerable()
                .OrderBy(p => p.VisitId).ThenBy(p => p.Page).Select(p => $"page {p.VisitId} {p.Page} {p.ActiveMs}"),
            .. db.DocumentVisits.Where(v => visitIds.Contains(v.Id)).AsEnumerable()
                .OrderBy(v => v.Id).Select(v => $"visit {v.Id} {v.ActiveMs} {v.MaxPage} {v.LastSeenAt.ToUnixTimeMilliseconds()} {v.Downloads}"),
        ]));
        var before = Recorded();
        Assert.Contains("page ", before);

        await Task.Delay(1200);
        foreach (var (link, id) in visits)
        {
            Assert.Equal(HttpStatusCode.Gone, (await browser.GetAsync($"{link}/download?visit={id}")).StatusCode);
            foreach (var res in new[]
                     {
                         await BeatAsync(browser, link, id, """{"pages":{"1":2500,"2":1000},"order":[1,2],"current":2}"""),
                         await LinkAsync(browser, link, id, """{"url":"https://x.test/","page":1}"""),
                     })
            {
                var text = await res.Content.ReadAsStringAsync();
                Assert.True(res.StatusCode == HttpStatusCode.Gone, $"{res.RequestMessage!.RequestUri!.AbsolutePath}: {(int)res.StatusCode} {text}");
                Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
                Assert.Equal(EmailTracking.Server.Content.ViewerApi.GoneReason.Removed, JsonDocument.Parse(text).RootElement.GetProperty("reason").GetString());
            }
        }
        Assert.Equal(before, Recorded());
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && (e.Kind == EventKind.DocumentPage && e.Page == 2 || e.Kind == EventKind.DocumentLink))));
    }

    [Fact]
    public async Task Malformed_beats_and_hostile_paths_are_4xx_and_change_nothing()
    {
        var (_, contentId, alan, flynn) = await SentWithDocumentAsync();
        var browser = Browser(app);
        var id = (await StartVisitAsync(browser, alan)).GetProperty("visitId").GetString()!;
        foreach (var body in new[] { "", "null", "[]", "{\"pages\":5}", "{\"pages\":{\"0\":10}}", "{\"pages\":{\"5\":10}}", "{\"pages\":{\"1\":-4}}",
                     "{\"pages\":{\"x\":1}}", "{\"pages\":{\"1\":1e400}}", "{{{", "{\"pages\":{\"1\":1}," + new string(' ', 20_000) + "}" })
        {
            var res = await BeatAsync(browser, alan, id, body);
            Assert.True((int)res.StatusCode is >= 400 and < 500, $"{body[..Math.Min(body.Length, 30)]}: {(int)res.StatusCode}");
        }
        // Someone else's visit through another link, an unknown visit, unknown and malformed tokens.
        Assert.Equal(HttpStatusCode.NotFound, (await BeatAsync(browser, flynn, id, """{"pages":{"1":10}}""")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await BeatAsync(browser, alan, Guid.NewGuid().ToString(), """{"pages":{"1":10}}""")).StatusCode);
        foreach (var path in new[] { "/d/..%2F..%2Fetc%2Fpasswd", "/d/AAAAAAAAAAAAAAAAAAAAAAAA/file", "/d/%2500/download", "/d/x/visits", "/d/" + new string('A', 5000) })
        {
            var get = await browser.GetAsync(path);
            Assert.True((int)get.StatusCode is >= 400 and < 500, $"GET {path[..Math.Min(path.Length, 40)]}: {(int)get.StatusCode}");
            var post = await browser.PostAsync(path, new StringContent("{}", Encoding.UTF8, "application/json"));
            Assert.True((int)post.StatusCode is >= 400 and < 500, $"POST {path[..Math.Min(path.Length, 40)]}: {(int)post.StatusCode}");
        }
        Assert.Equal(0, app.WithDb(db => db.DocumentPageTimes.Count(p => p.VisitId == Guid.Parse(id))));
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.DocumentPage)));
    }
}

public sealed class ViewerOnSqlite(SqliteApp app) : ViewerTests(app), IClassFixture<SqliteApp>;

public sealed class ViewerOnPostgres(PostgresApp app) : ViewerTests(app), IClassFixture<PostgresApp>;
