using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The recipient's document viewer (/d/{token}) in Chromium against the real server process: a recipient turns pages
/// and the sender's statistics show the time they spent on each, in order; a download is counted; the sender's own
/// preview records nothing; and the page runs under its Content Security Policy without a single violation.
/// Screenshots of the viewer (desktop and phone) are saved.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class ViewerBrowserTests(ITestOutputHelper output) : ServerBrowserTest("et-viewer-")
{
    /// <summary>
    /// How far a page's recorded time may be from the time the test measured. The test times each page in the page
    /// itself, on the browser's clock, from the change of body[data-page] that shows it to the one that shows the next
    /// (the last page: to just before the tab closes), as the viewer does: the two agree within tens of milliseconds,
    /// the last page's closing round trip the most. 1.5 s leaves room for a busy machine, yet is well under the 2 s or
    /// more between the planned dwell times, so time credited to the wrong page, counted twice or lost on the way out
    /// (the closing beacon) still fails.
    /// </summary>
    const double ToleranceMs = 1_500;

    const string Password = "Correct-Horse-9";
    const string Sender = "flynn@encom.test";
    const string Recipient = "alan@encom.test";

    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    // Headless Chromium says "HeadlessChrome" in its user agent, which the classifier rightly takes for a machine; a
    // recipient's browser is an ordinary Chrome, so the contexts present the same engine's version as one.
    string ChromeMajor => browser.Version.Split('.')[0];
    string DesktopUa => $"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{ChromeMajor}.0.0.0 Safari/537.36";
    string PhoneUa => $"Mozilla/5.0 (Linux; Android 10; K) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{ChromeMajor}.0.0.0 Mobile Safari/537.36";

    sealed record Sent(IBrowserContext SenderContext, HttpClient Api, Guid ContentId, string RecipientLink, Guid MessageId);

    /// <summary>
    /// The sender sets the server up in their browser (team plan; the web app marks this browser as theirs with the
    /// device cookie), makes an API token, uploads a PDF, adds it to a message to alan and registers the message; the
    /// answer holds alan's own document link.
    /// </summary>
    async Task<Sent> SendDocumentAsync(int pages, byte[]? document = null)
    {
        var pdf = document ?? await Documents.PdfAsync(pages);
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 1360, Height = 900 }, UserAgent = DesktopUa,
        });
        var page = await context.NewPageAsync();
        await page.GotoAsync(server.BaseUrl + "/");
        Assert.EndsWith("/setup", page.Url);
        await page.FillAsync("#Input_Team", "Encom");
        await page.FillAsync("#Input_Name", "Kevin Flynn");
        await page.FillAsync("#Input_Email", Sender);
        await page.FillAsync("#Input_Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        Assert.Contains(await context.CookiesAsync(server.BaseUrl), c => c.Name == "et_device");
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "viewer test");
        await page.ClickAsync("form.inline button[type=submit]");
        var token = (await page.TextContentAsync("#new-token"))!.Trim();
        await page.CloseAsync();

        var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        var upload = await api.UploadAsync(pdf, "Proposal.pdf");
        var uploaded = await upload.Content.ReadAsStringAsync();
        Assert.True(upload.IsSuccessStatusCode, $"upload: {(int)upload.StatusCode} {uploaded}\n{server.Output}");
        var contentId = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetGuid();
        Assert.Equal(pages, JsonDocument.Parse(uploaded).RootElement.GetProperty("pages").GetInt32());

        var link = await api.PostAsync($"/api/content/{contentId}/links", null);
        var linkText = await link.Content.ReadAsStringAsync();
        Assert.True(link.IsSuccessStatusCode, $"link: {(int)link.StatusCode} {linkText}");
        var share = JsonDocument.Parse(linkText).RootElement.GetProperty("url").GetString()!;

        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Sender, subject = "Grid proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { Recipient }, html = $"<p>Here is <a href=\"{share}\">the proposal</a>.</p>",
        });
        var regText = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, $"register: {(int)res.StatusCode} {regText}");
        var reg = JsonDocument.Parse(regText).RootElement;
        var copy = reg.GetProperty("copies").EnumerateArray().Single();
        Assert.Equal(Recipient, copy.GetProperty("recipients")[0].GetString());
        var recipientLink = ContentTestApi.DocumentLinks(copy.GetProperty("html").GetString()!).Single();
        Assert.NotEqual(share, recipientLink); // the recipient's own link, not the share link
        return new Sent(context, api, contentId, recipientLink, reg.GetProperty("id").GetGuid());
    }

    /// <summary>A recipient's browser: a fresh context, no cookies.</summary>
    async Task<IBrowserContext> RecipientContextAsync(bool phone = false) => await browser.NewContextAsync(phone
        ? new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = 390, Height = 844 }, DeviceScaleFactor = 3, IsMobile = true, HasTouch = true,
            UserAgent = PhoneUa, AcceptDownloads = true,
        }
        : new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 860 }, UserAgent = DesktopUa, AcceptDownloads = true });

    /// <summary>
    /// A page whose Content Security Policy violations, uncaught errors and console errors are collected. Chromium
    /// logs every violation to the console ("… violates the following Content Security Policy directive …"); the
    /// securitypolicyviolation event is logged too, so a violation reported only as an event is not missed.
    /// </summary>
    static async Task<(IPage Page, List<string> Csp, List<string> Errors)> ViewerPageAsync(IBrowserContext context)
    {
        var page = await context.NewPageAsync();
        var csp = new List<string>();
        var errors = new List<string>();
        await page.AddInitScriptAsync("document.addEventListener('securitypolicyviolation', e => " +
                                      "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI), true);");
        page.Console += (_, m) =>
        {
            lock (csp)
            {
                if (m.Text.Contains("Content Security Policy", StringComparison.OrdinalIgnoreCase)) csp.Add(m.Text + " @ " + m.Location);
                // The browser asks for /favicon.ico by itself; the viewer has no icon, and the 404 is not the viewer's error.
                else if (m.Type == "error" && !m.Location.Contains("/favicon.ico", StringComparison.Ordinal)) errors.Add(m.Text + " @ " + m.Location);
            }
        };
        page.PageError += (_, e) => { lock (csp) errors.Add("uncaught: " + e); };
        return (page, csp, errors);
    }

    async Task OpenAsync(IPage page, string link)
    {
        var log = new List<string>();
        page.Console += (_, m) => { lock (log) log.Add($"console {m.Type}: {m.Text}"); };
        page.RequestFailed += (_, r) => { lock (log) log.Add($"failed {r.Method} {r.Url}: {r.Failure}"); };
        page.Response += (_, r) => { lock (log) log.Add($"{r.Status} {r.Request.Method} {r.Url} {r.Request.Headers.GetValueOrDefault("range")}"); };
        await page.GotoAsync(link);
        try
        {
            await page.WaitForSelectorAsync("body[data-state=ready][data-page='1']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        }
        catch (TimeoutException e)
        {
            // What the page is, whatever it is: the viewer (its state and error text) or something else (a server's page).
            string state;
            try
            {
                state = await page.EvaluateAsync<string>("""
                    () => {
                        const error = document.getElementById('error');
                        return location.href + ' state=' + document.body?.dataset.state + ' page=' + document.body?.dataset.page + ' '
                            + (error ? error.innerText : 'not the viewer: ' + (document.body?.innerText ?? '').slice(0, 500));
                    }
                    """);
            }
            catch (PlaywrightException pe)
            {
                state = "(the page could not be read: " + pe.Message + ")";
            }
            string lines;
            lock (log) lines = string.Join("\n", log);
            throw new TimeoutException($"the viewer did not draw page 1: {state}\n{lines}\n--- server ---\n{server.Output}", e);
        }
    }

    static async Task WaitForPageAsync(IPage page, int n) =>
        await page.WaitForSelectorAsync($"body[data-page='{n}']", new PageWaitForSelectorOptions { State = WaitForSelectorState.Attached, Timeout = 15_000 });

    /// <summary>Reads for a while as a person does: the pointer moves over the page and now and then a key is pressed.</summary>
    static async Task ReadAsync(IPage page, TimeSpan time)
    {
        var clock = Stopwatch.StartNew();
        var i = 0;
        while (clock.Elapsed < time)
        {
            await page.Mouse.MoveAsync(300 + 40 * (i % 7), 250 + 30 * (i % 5));
            if (i % 4 == 0) await page.Keyboard.PressAsync("Shift");
            i++;
            var left = time - clock.Elapsed;
            if (left > TimeSpan.Zero) await Task.Delay(left < TimeSpan.FromMilliseconds(250) ? left : TimeSpan.FromMilliseconds(250));
        }
    }

    async Task<JsonElement> StatsAsync(HttpClient api, Guid contentId, bool machines = false) =>
        await api.GetJsonAsync($"/api/content/{contentId}/stats" + (machines ? "?machines=true" : ""));

    /// <summary>Polls the sender's statistics until <paramref name="done"/> holds (heartbeats and beacons arrive on their own time).</summary>
    async Task<JsonElement> WaitForStatsAsync(HttpClient api, Guid contentId, Func<JsonElement, bool> done, TimeSpan? timeout = null)
    {
        var until = Stopwatch.StartNew();
        while (true)
        {
            var stats = await StatsAsync(api, contentId);
            if (done(stats) || until.Elapsed > (timeout ?? TimeSpan.FromSeconds(15))) return stats;
            await Task.Delay(200);
        }
    }

    static long[] PageMs(JsonElement readerOrStats) => [.. readerOrStats.GetProperty("pageMs").EnumerateArray().Select(e => e.GetInt64())];

    static void NoViolations(List<string> csp, List<string> errors)
    {
        lock (csp)
        {
            Assert.True(csp.Count == 0, "Content Security Policy violations:\n" + string.Join("\n", csp));
            Assert.True(errors.Count == 0, "errors in the viewer:\n" + string.Join("\n", errors));
        }
    }

    List<TrackingEvent> LinkEvents(Guid contentId)
    {
        using var db = OpenDb();
        return [.. db.Events.Where(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink)];
    }

    [Fact]
    public async Task The_pages_text_can_be_selected_and_its_links_followed()
    {
        var sent = await SendDocumentAsync(pages: 2, await Documents.LinksPdfAsync());
        var context = await RecipientContextAsync();
        var (page, csp, errors) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        await WaitForPageAsync(page, 1);
        // The page shows as soon as its picture is drawn; its text and links follow.
        await Assertions.Expect(page.Locator(".sheet[data-layers='ready']")).ToHaveCountAsync(1);

        // The words over the picture can be selected (and so copied), as in a PDF reader.
        var words = page.Locator(".sheet .textLayer span", new() { HasText = "Quarterly pricing" }).First;
        await words.ClickAsync(new() { ClickCount = 3 });
        Assert.Contains("Quarterly pricing for the grid", await page.EvaluateAsync<string>("() => document.getSelection().toString()"));

        // A web link opens in a new tab, sending nothing about the viewer; it sits where its words are drawn.
        var web = page.Locator($".sheet .linkLayer a[href='{Documents.LinkTarget}']");
        await Assertions.Expect(web).ToHaveAttributeAsync("target", "_blank");
        await Assertions.Expect(web).ToHaveAttributeAsync("rel", "noopener noreferrer nofollow");
        var linkBox = (await web.BoundingBoxAsync())!;
        var linkWords = (await page.Locator(".sheet .textLayer span", new() { HasText = "price list" }).First.BoundingBoxAsync())!;
        Assert.True(linkBox.Y < linkWords.Y + linkWords.Height && linkWords.Y < linkBox.Y + linkBox.Height,
            $"link at y {linkBox.Y}..{linkBox.Y + linkBox.Height}, its words at {linkWords.Y}..{linkWords.Y + linkWords.Height}");
        await web.HoverAsync();
        await Shot(page, "viewer-06-text-and-links");

        // Following it opens the address in a new tab (answered here by the test, the address being made up) and
        // tells the sender which link was followed, on which page.
        await context.RouteAsync(Documents.LinkTarget, route => route.FulfillAsync(new() { Status = 200, ContentType = "text/html", Body = "<p>Price list</p>" }));
        var popup = await page.RunAndWaitForPopupAsync(() => web.ClickAsync());
        await Assertions.Expect(popup).ToHaveURLAsync(Documents.LinkTarget);
        await popup.CloseAsync();
        await Eventually.TrueAsync(() => Task.FromResult(LinkEvents(sent.ContentId).Count == 1), "the followed link's event");
        var followed = LinkEvents(sent.ContentId).Single();
        Assert.Equal((Documents.LinkTarget, 1, Verdict.Human), (followed.Url, followed.Page, followed.Verdict));

        // A link to the appendix turns to its page.
        await page.Locator(".sheet .linkLayer a[data-dest]").ClickAsync();
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(page.Locator("#page-number")).ToHaveValueAsync("2");
        await Assertions.Expect(page.Locator(".sheet[data-layers='ready'] .textLayer")).ToContainTextAsync("Appendix: terms and conditions");
        // Turning to a page of the document is not a link followed out of it.
        Assert.Single(LinkEvents(sent.ContentId));
        NoViolations(csp, errors);
    }

    [Fact]
    public async Task Find_shows_each_match_in_turn_on_its_page_and_says_when_there_is_none()
    {
        var sent = await SendDocumentAsync(pages: 2, await Documents.LinksPdfAsync());
        var context = await RecipientContextAsync();
        var (page, csp, errors) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        await WaitForPageAsync(page, 1);
        await Assertions.Expect(page.Locator(".sheet[data-layers='ready']")).ToHaveCountAsync(1);
        var status = page.Locator("#find-status");
        var current = page.Locator(".sheet[data-layers='ready'] .textLayer mark.match.current");

        // Ctrl+F opens the viewer's own search (the browser's would see only the page shown).
        await page.Keyboard.PressAsync("Control+f");
        await Assertions.Expect(page.Locator("#find")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#find-text")).ToBeFocusedAsync();

        // "terms" is on both pages: the first match is on the page being read, whatever the case typed.
        await page.Locator("#find-text").FillAsync("TERMS");
        await Assertions.Expect(status).ToHaveTextAsync("1 of 2");
        await Assertions.Expect(current).ToHaveTextAsync("terms");
        await Assertions.Expect(page.Locator(".sheet .textLayer span", new() { HasText = "The terms are in" }).Locator("mark")).ToHaveCountAsync(1);
        await Shot(page, "viewer-07-find");

        // Enter goes to the next match, on the next page; past the last, back to the first; the up arrow goes back.
        await page.Locator("#find-text").PressAsync("Enter");
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(status).ToHaveTextAsync("2 of 2");
        await Assertions.Expect(current).ToHaveTextAsync("terms");
        await Assertions.Expect(page.Locator("#page-number")).ToHaveValueAsync("2");
        await page.Locator("#find-text").PressAsync("Enter");
        await WaitForPageAsync(page, 1);
        await Assertions.Expect(status).ToHaveTextAsync("1 of 2");
        await page.Locator("#find-prev").ClickAsync();
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(status).ToHaveTextAsync("2 of 2");

        // Words across a line of the PDF, and a word that is not there.
        await page.Locator("#find-text").FillAsync("grid  the");
        await WaitForPageAsync(page, 1);
        await Assertions.Expect(status).ToHaveTextAsync("1 of 1");
        await Assertions.Expect(page.Locator(".sheet .textLayer mark.match")).ToHaveCountAsync(2); // "grid" and "the", one per line
        await page.Locator("#find-text").FillAsync("zebra");
        await Assertions.Expect(status).ToHaveTextAsync("No matches");
        await Assertions.Expect(page.Locator(".sheet .textLayer mark")).ToHaveCountAsync(0);

        // Escape closes the search and takes its marks away; the page's text is as it was.
        await page.Locator("#find-text").FillAsync("appendix");
        await Assertions.Expect(status).ToHaveTextAsync("1 of 2");
        await page.Locator("#find-text").PressAsync("Escape");
        await Assertions.Expect(page.Locator("#find")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator(".sheet .textLayer mark")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator(".sheet .textLayer span", new() { HasText = "The terms are in" })).ToHaveCountAsync(1);
        NoViolations(csp, errors);
    }

    [Fact]
    public async Task A_recipient_turning_pages_is_recorded_with_the_time_spent_on_each_page_in_order()
    {
        var sent = await SendDocumentAsync(pages: 5);
        var context = await RecipientContextAsync();
        var (page, csp, errors) = await ViewerPageAsync(context);
        // When each page was shown, on the browser's own clock, as the viewer counts it (from the moment body[data-page]
        // changes): timed from the test, each step's round trips to a busy browser would be counted in.
        await page.AddInitScriptAsync("""
            window.__shown = [];
            new MutationObserver(() => {
              const shown = document.body && document.body.dataset.page;
              const last = window.__shown[window.__shown.length - 1];
              if (shown && (!last || last.page !== shown)) window.__shown.push({ page: shown, at: performance.now() });
            }).observe(document, { subtree: true, childList: true, attributes: true, attributeFilter: ['data-page'] });
            """);

        await OpenAsync(page, sent.RecipientLink);
        await Assertions.Expect(page.Locator("#page-count")).ToHaveTextAsync("5");
        await Assertions.Expect(page.Locator("#title")).ToHaveTextAsync("Proposal.pdf");
        await Assertions.Expect(page.Locator("#preview-banner")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#prev")).ToBeDisabledAsync();
        await Shot(page, "viewer-01-desktop-page1");
        await ReadAsync(page, TimeSpan.FromSeconds(4));

        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(page.Locator("#page-number")).ToHaveValueAsync("2");
        await ReadAsync(page, TimeSpan.FromSeconds(6));

        await page.FillAsync("#page-number", "3");
        await page.PressAsync("#page-number", "Enter");
        await WaitForPageAsync(page, 3);
        await ReadAsync(page, TimeSpan.FromSeconds(3));
        await Shot(page, "viewer-02-desktop-page3");
        NoViolations(csp, errors);

        // Closing the tab: the viewer's pagehide beacon carries the last seconds of page 3. The browser stays open, as
        // it would for a reader closing one tab (closing the whole context could cancel the beacon in flight).
        var seen = await page.EvaluateAsync<JsonElement>("() => ({ shown: window.__shown, now: performance.now() })");
        var shownAt = seen.GetProperty("shown").EnumerateArray().Select(s => (Page: s.GetProperty("page").GetString(), At: s.GetProperty("at").GetDouble())).ToList();
        Assert.Equal(["1", "2", "3"], shownAt.Select(s => s.Page));
        var (page1Ms, page2Ms) = (shownAt[1].At - shownAt[0].At, shownAt[2].At - shownAt[1].At);
        var page3Ms = seen.GetProperty("now").GetDouble() - shownAt[2].At;
        await page.CloseAsync();

        var stats = await WaitForStatsAsync(sent.Api, sent.ContentId, s => PageMs(s)[2] >= page3Ms - ToleranceMs);
        var pageMs = PageMs(stats);
        var expected = new[] { page1Ms, page2Ms, page3Ms };
        var report = $"recorded {string.Join(", ", pageMs)} ms; the test read {string.Join(", ", expected.Select(e => Math.Round(e)))} ms";
        output.WriteLine(report);
        for (var i = 0; i < 3; i++) Assert.True(Math.Abs(pageMs[i] - expected[i]) <= ToleranceMs, $"page {i + 1}: {report}");
        Assert.True(pageMs[3] == 0 && pageMs[4] == 0, $"pages 4 and 5 were never shown: {report}");
        Assert.Equal(1, stats.GetProperty("visits").GetInt32());
        Assert.Equal(0, stats.GetProperty("machineVisits").GetInt32());
        var reader = stats.GetProperty("readers").EnumerateArray().Single();
        Assert.Equal(Recipient, reader.GetProperty("reader").GetString());
        Assert.Equal(sent.MessageId, reader.GetProperty("messageId").GetGuid());
        Assert.Equal(3, reader.GetProperty("maxPage").GetInt32());
        Assert.Equal(pageMs, PageMs(reader));
        Assert.InRange(stats.GetProperty("activeMs").GetInt64(), (long)(expected.Sum() - 2 * ToleranceMs), (long)(expected.Sum() + 2 * ToleranceMs));

        await using var db = OpenDb();
        var visit = await db.DocumentVisits.Include(v => v.Pages).SingleAsync(v => v.ContentId == sent.ContentId);
        Assert.Equal(Verdict.Human, visit.Verdict);
        Assert.Equal([1, 2, 3], visit.Pages.OrderBy(p => p.Order).Select(p => p.Page));
        var events = await db.Events.Where(e => e.ContentId == sent.ContentId).Select(e => new { e.Kind, e.Verdict }).ToListAsync();
        Assert.All(events, e => Assert.Equal(Verdict.Human, e.Verdict));
        Assert.Single(events, e => e.Kind == EventKind.DocumentView);
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_live_feed_gets_an_event_for_every_page_read_even_when_the_first_page_is_left_before_a_heartbeat_and_none_for_a_page_passed_by()
    {
        var sent = await SendDocumentAsync(pages: 5);
        var context = await RecipientContextAsync();
        var (page, _, _) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        await ReadAsync(page, TimeSpan.FromSeconds(2)); // less than the 10-second heartbeat: no beat has gone out yet
        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 2);
        await ReadAsync(page, TimeSpan.FromSeconds(1.5));
        // Page 3 only on the way to page 4: Next twice at once, then a second and a half on page 4.
        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 3);
        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 4);
        await ReadAsync(page, TimeSpan.FromSeconds(1.5));
        // End, and the tab closed as soon as the last page shows: the reader never read it.
        await page.Keyboard.PressAsync("End");
        await WaitForPageAsync(page, 5);
        await page.CloseAsync();
        var stats = await WaitForStatsAsync(sent.Api, sent.ContentId, s => s.GetProperty("readers").GetArrayLength() == 1 &&
                                                                           PageMs(s)[3] >= 1_000);
        // Give the closing beacon the time to arrive before concluding that it did not name page 5.
        await Task.Delay(1500);
        stats = await StatsAsync(sent.Api, sent.ContentId);
        var reader = stats.GetProperty("readers").EnumerateArray().Single();
        Assert.Equal(4, reader.GetProperty("maxPage").GetInt32());
        var pageMs = PageMs(reader);
        Assert.True(pageMs[2] < 1_000 && pageMs[4] == 0, $"pages passed by were counted: {string.Join(", ", pageMs)} ms");
        await using var db = OpenDb();
        var pages = await db.Events.Where(e => e.ContentId == sent.ContentId && e.Kind == EventKind.DocumentPage).OrderBy(e => e.Id)
            .Select(e => e.Page!.Value).ToListAsync();
        Assert.Equal([1, 2, 4], pages);
        await context.CloseAsync();
    }

    [Fact]
    public async Task Reading_shows_live_in_the_lists_documents_column_and_the_timeline_words_live_rows_as_it_words_its_own()
    {
        var sent = await SendDocumentAsync(pages: 3);
        var list = await sent.SenderContext.NewPageAsync();
        await list.GotoAsync(server.BaseUrl + "/");
        await list.WaitForSelectorAsync("body[data-live=on]");
        var row = list.Locator($"tbody[data-message-id='{sent.MessageId}'] tr").First;
        await Assertions.Expect(row.Locator(".doc-activity")).ToHaveTextAsync("—");
        var timeline = await sent.SenderContext.NewPageAsync();
        await timeline.GotoAsync($"{server.BaseUrl}/messages/{sent.MessageId}");
        await timeline.WaitForSelectorAsync("body[data-live=on]");

        // The recipient opens the document, reads pages 1 and 2, and saves it.
        var context = await RecipientContextAsync();
        var (page, _, _) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        await ReadAsync(page, TimeSpan.FromSeconds(1.5));
        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 2);
        // A page counts as read after a second on screen.
        await ReadAsync(page, TimeSpan.FromSeconds(1.5));
        await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#download"));
        await page.CloseAsync();

        // The list counts it per recipient, live, and calls it the last thing they did.
        await Assertions.Expect(row.Locator(".doc-activity")).ToHaveTextAsync("2 pages read, downloaded");
        await Assertions.Expect(row.Locator(".last > span")).ToContainTextAsync("read a document");
        await Assertions.Expect(timeline.Locator("#recipients .doc-activity")).ToHaveTextAsync("2 pages read, downloaded");
        // The view, two pages and the download.
        await Assertions.Expect(timeline.Locator("#feed li")).ToHaveCountAsync(4);
        await Shot(list, "viewer-05-list-documents-live");
        await Shot(timeline, "viewer-06-timeline-documents-live");
        var live = await timeline.Locator("#feed li > div:first-child").AllInnerTextsAsync();
        Assert.Contains(live, t => t == $"{Recipient} read Proposal.pdf — page 2 of 3");
        Assert.DoesNotContain(live, t => t.Contains("is reading", StringComparison.Ordinal) || t.Contains("Grid proposal", StringComparison.Ordinal));

        // What arrived live reads as what the pages render on a fresh load.
        await timeline.ReloadAsync();
        await Assertions.Expect(timeline.Locator("#feed li")).ToHaveCountAsync(4);
        var rendered = await timeline.Locator("#feed li > div:first-child").AllInnerTextsAsync();
        Assert.Equal(rendered.Select(t => t.Trim()), live.Select(t => t.Trim()));
        await list.ReloadAsync();
        await Assertions.Expect(row.Locator(".doc-activity")).ToHaveTextAsync("2 pages read, downloaded");
        await Assertions.Expect(row.Locator(".last > span")).ToContainTextAsync("read a document");
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_keyboard_and_screen_reader_reader_hears_each_page_turn_once_and_keeps_the_focus_at_the_last_page()
    {
        var sent = await SendDocumentAsync(pages: 3);
        var context = await RecipientContextAsync();
        var (page, csp, errors) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        await page.WaitForSelectorAsync(".sheet[data-layers=ready]");
        await Assertions.Expect(page.Locator("#page-status")).ToHaveTextAsync("Page 1 of 3");
        await Assertions.Expect(page.Locator("#page-status")).ToHaveAttributeAsync("role", "status");
        // The page (its picture and its whole text) is in no live region: a screen reader would read it all out at
        // every turn, zoom and resize.
        const string InLiveRegion = "() => document.querySelector('.sheet')?.closest('[aria-live], [role=status], [role=alert], [role=log]')?.id ?? null";
        Assert.Null(await page.EvaluateAsync<string?>(InLiveRegion));

        // Next, by keyboard, to the last page: the focus stays on a page button rather than falling to the page's body.
        await page.FocusAsync("#next");
        await page.Keyboard.PressAsync("Enter");
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(page.Locator("#page-status")).ToHaveTextAsync("Page 2 of 3");
        await page.Keyboard.PressAsync("Enter");
        await WaitForPageAsync(page, 3);
        await Assertions.Expect(page.Locator("#page-status")).ToHaveTextAsync("Page 3 of 3");
        await Assertions.Expect(page.Locator("#next")).ToBeDisabledAsync();
        await Assertions.Expect(page.Locator("#prev")).ToBeFocusedAsync();
        await page.Keyboard.PressAsync("Enter");
        await WaitForPageAsync(page, 2);
        await Assertions.Expect(page.Locator("#page-status")).ToHaveTextAsync("Page 2 of 3");
        await Shot(page, "viewer-07-keyboard-focus-on-previous");

        // Zooming redraws the same page: nothing new to announce, and the page is still outside any live region.
        await page.ClickAsync("#zoom-in");
        await page.WaitForSelectorAsync(".sheet[data-layers=ready]");
        await Assertions.Expect(page.Locator("#page-status")).ToHaveTextAsync("Page 2 of 3");
        Assert.Null(await page.EvaluateAsync<string?>(InLiveRegion));
        NoViolations(csp, errors);
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_zoomed_in_page_scrolls_by_keyboard_and_the_arrows_turn_the_page_only_at_its_edge()
    {
        var sent = await SendDocumentAsync(pages: 3);
        var context = await RecipientContextAsync();
        var (page, csp, errors) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        for (var i = 0; i < 5; i++) await page.ClickAsync("#zoom-in");
        await page.WaitForFunctionAsync("() => { const s = document.getElementById('stage'); return s.scrollWidth > s.clientWidth + 200 && s.scrollHeight > s.clientHeight + 200; }");
        await page.WaitForSelectorAsync(".sheet[data-layers=ready]");
        const string Scroll = "() => { const s = document.getElementById('stage'); return [s.scrollLeft, s.scrollTop]; }";
        await page.FocusAsync("#stage");
        await page.Keyboard.PressAsync("ArrowRight");
        await page.Keyboard.PressAsync("ArrowDown");
        await page.Keyboard.PressAsync("ArrowDown");
        var scrolled = await page.EvaluateAsync<double[]>(Scroll);
        Assert.True(scrolled[0] > 0 && scrolled[1] > 0, $"the zoomed page did not scroll: {string.Join(", ", scrolled)}");
        Assert.Equal("1", await page.EvaluateAsync<string>("() => document.body.dataset.page"));
        await Shot(page, "viewer-08-zoomed-scrolled-by-keyboard");

        // At its right edge, the right arrow turns the page.
        await page.EvaluateAsync("() => { const s = document.getElementById('stage'); s.scrollLeft = s.scrollWidth; }");
        await page.Keyboard.PressAsync("ArrowRight");
        await WaitForPageAsync(page, 2);
        // And the page can take the focus, as a keyboard reader reaches it with Tab.
        await Assertions.Expect(page.Locator("#stage")).ToHaveAttributeAsync("tabindex", "0");
        NoViolations(csp, errors);
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_documents_bytes_are_not_served_from_the_browsers_cache_once_the_sender_removed_it()
    {
        var sent = await SendDocumentAsync(pages: 2);
        var context = await RecipientContextAsync();
        var (page, _, _) = await ViewerPageAsync(context);
        await OpenAsync(page, sent.RecipientLink);
        // The file's own address, fetched as a browser does when it is opened (the HTTP cache used as its headers allow).
        const string Fetch = "async (url) => { const r = await fetch(url); await r.arrayBuffer(); return r.status; }";
        var file = new Uri(sent.RecipientLink).AbsolutePath + "/file";
        Assert.Equal(200, await page.EvaluateAsync<int>(Fetch, file));
        var removed = await sent.Api.DeleteAsync($"/api/content/{sent.ContentId}");
        Assert.True(removed.IsSuccessStatusCode, $"{(int)removed.StatusCode}");
        Assert.Equal(410, await page.EvaluateAsync<int>(Fetch, file));
        await context.CloseAsync();
        await sent.SenderContext.CloseAsync();
    }

    [Fact]
    public async Task A_download_from_the_viewer_on_a_phone_is_counted()
    {
        var sent = await SendDocumentAsync(pages: 4);
        var context = await RecipientContextAsync(phone: true);
        var (page, csp, errors) = await ViewerPageAsync(context);

        await OpenAsync(page, sent.RecipientLink);
        await Assertions.Expect(page.Locator("#download")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#next")).ToBeInViewportAsync();
        // The page fits the phone's width: nothing to scroll sideways at "fit".
        Assert.True(await page.EvaluateAsync<bool>("() => document.documentElement.scrollWidth <= window.innerWidth"),
            "the viewer is wider than the phone's screen");
        await Shot(page, "viewer-03-phone-page1");

        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#download"));
        Assert.Equal("Proposal.pdf", download.SuggestedFilename);
        var path = await download.PathAsync();
        Assert.True(await download.FailureAsync() is null);
        var head = new byte[5];
        await using (var f = File.OpenRead(path)) Assert.Equal(5, await f.ReadAsync(head));
        Assert.Equal("%PDF-", System.Text.Encoding.ASCII.GetString(head));
        // Saving the file did not leave the viewer.
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");

        await page.TapAsync("#next");
        await WaitForPageAsync(page, 2);
        await Shot(page, "viewer-04-phone-page2");
        NoViolations(csp, errors);
        await context.CloseAsync();

        var stats = await WaitForStatsAsync(sent.Api, sent.ContentId, s => s.GetProperty("downloads").GetInt32() >= 1);
        Assert.Equal(1, stats.GetProperty("downloads").GetInt32());
        Assert.Equal(1, stats.GetProperty("visits").GetInt32());
        var reader = stats.GetProperty("readers").EnumerateArray().Single();
        Assert.Equal(Recipient, reader.GetProperty("reader").GetString());
        Assert.Equal(1, reader.GetProperty("downloads").GetInt32());
        await using var db = OpenDb();
        Assert.Single(await db.Events.Where(e => e.ContentId == sent.ContentId && e.Kind == EventKind.Download).ToListAsync(),
            e => e.Verdict == Verdict.Human);
    }

    [Fact]
    public async Task The_senders_own_preview_shows_a_banner_and_records_nothing()
    {
        var sent = await SendDocumentAsync(pages: 4);
        // A recipient has read it already, so there is something the preview could disturb.
        var recipient = await RecipientContextAsync();
        var (alan, _, _) = await ViewerPageAsync(recipient);
        await OpenAsync(alan, sent.RecipientLink);
        await ReadAsync(alan, TimeSpan.FromSeconds(1.5)); // a page counts as read after a second
        await alan.CloseAsync();
        var before = await WaitForStatsAsync(sent.Api, sent.ContentId, s => PageMs(s)[0] > 0);
        await recipient.CloseAsync();
        Assert.Equal(1, before.GetProperty("visits").GetInt32());
        Assert.True(PageMs(before)[0] > 0, "the recipient's closing beacon did not arrive");
        await using var db = OpenDb();
        var eventsBefore = await db.Events.CountAsync(e => e.ContentId == sent.ContentId);
        var visitsBefore = await db.DocumentVisits.CountAsync(v => v.ContentId == sent.ContentId);

        // The sender opens alan's link (a test mail, the Sent folder) in their own browser, which carries the device mark.
        var (page, csp, errors) = await ViewerPageAsync(sent.SenderContext);
        await OpenAsync(page, sent.RecipientLink);
        await Assertions.Expect(page.Locator("#preview-banner")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#preview-banner")).ToContainTextAsync("not recorded");
        await Shot(page, "viewer-05-sender-preview");
        await ReadAsync(page, TimeSpan.FromSeconds(1));
        await page.ClickAsync("#next");
        await WaitForPageAsync(page, 2);
        await ReadAsync(page, TimeSpan.FromSeconds(1));
        var download = await page.RunAndWaitForDownloadAsync(() => page.ClickAsync("#download"));
        Assert.Null(await download.FailureAsync());
        NoViolations(csp, errors);
        await page.CloseAsync();

        // Give a stray beacon the time to arrive before concluding that none was sent.
        await Task.Delay(1500);
        var after = await StatsAsync(sent.Api, sent.ContentId);
        Assert.Equal(before.GetProperty("visits").GetInt32(), after.GetProperty("visits").GetInt32());
        Assert.Equal(before.GetProperty("machineVisits").GetInt32(), after.GetProperty("machineVisits").GetInt32());
        Assert.Equal(0, after.GetProperty("downloads").GetInt32());
        // The recipient's tab may send one more beacon as it goes (pagehide and the hidden state each report, and a
        // few milliseconds can separate them), so page 1 may have grown by that much; not by the second the sender
        // read it, and the page the sender turned to has no time at all.
        var (was, now) = (PageMs(before), PageMs(after));
        Assert.True(now[0] - was[0] < 500, $"page 1 went from {was[0]} to {now[0]} ms during the sender's preview");
        Assert.Equal([0, 0, 0], now[1..]);
        db.ChangeTracker.Clear();
        Assert.Equal(eventsBefore, await db.Events.CountAsync(e => e.ContentId == sent.ContentId));
        Assert.Equal(visitsBefore, await db.DocumentVisits.CountAsync(v => v.ContentId == sent.ContentId));
        await sent.SenderContext.CloseAsync();
    }
}
