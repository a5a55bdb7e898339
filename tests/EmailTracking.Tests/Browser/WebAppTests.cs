using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The web app in Chromium against the real server process: first-run setup, sign-in, the message list, the message
/// page, the live feed updating without reload, machines hidden until asked for, the replied-but-never-opened hint,
/// and the sender's own views set apart by the device mark. Each page's screenshot is saved.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class WebAppTests() : ServerBrowserTest("et-web-")
{
    static Task Shot(IPage page, string name) => Chromium.ShotAsync(page, name);

    /// <summary>The server's own mail relay (confirmation mails), a local fake.</summary>
    readonly Fakes.FakeSmtpRelay relay = new();

    protected override Dictionary<string, string> Settings
    {
        get
        {
            var settings = base.Settings;
            settings["Mail__From"] = "EmailTracking <no-reply@encom.test>";
            settings["Mail__Smtp__Host"] = "127.0.0.1";
            settings["Mail__Smtp__Port"] = relay.Port.ToString(System.Globalization.CultureInfo.InvariantCulture);
            settings["Mail__Smtp__Security"] = "None";
            // The scanner test clicks a second link only once the first has shown live on two pages: on a busy
            // two-core machine that can take longer than the default second, and the two clicks would not be a burst.
            settings["Tracking__Classifier__ClickBurstWindow"] = "00:00:10";
            // How soon an open stream notices that its reader may no longer read it.
            settings["Feed__RecheckInterval"] = "00:00:01";
            return settings;
        }
    }

    public override async Task DisposeAsync()
    {
        await base.DisposeAsync();
        relay.Dispose();
    }

    const string Password = "Correct-Horse-9";

    async Task<(IPage Page, IBrowserContext Context)> SetUpFirstUserAsync()
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };

        await page.GotoAsync(server.BaseUrl + "/");
        Assert.EndsWith("/setup", page.Url);
        await Shot(page, "01-setup");
        await page.FillAsync("#Input_Team", "Encom");
        await page.FillAsync("#Input_Name", "Kevin Flynn");
        await page.FillAsync("#Input_Email", "flynn@encom.test");
        await page.FillAsync("#Input_Password", "short");
        await page.ClickAsync("button[type=submit]");
        // The browser's own minlength check or the server's password rules keep us on the setup page.
        Assert.EndsWith("/setup", page.Url);
        await page.FillAsync("#Input_Password", Password);
        await page.ClickAsync("button[type=submit]");
        // Expect() polls the URL without waiting for a load event, which a page holding a live EventSource may delay.
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        await Assertions.Expect(page.Locator("main")).ToContainTextAsync("No tracked messages yet");
        await Shot(page, "02-empty-list");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        return (page, context);
    }

    /// <summary>An API client signed in with a token made in the web app (as a user of the API would).</summary>
    async Task<HttpClient> ApiClientAsync(IPage page)
    {
        var token = await CreateTokenInWebAppAsync(page);
        var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return api;
    }

    async Task<string> CreateTokenInWebAppAsync(IPage page)
    {
        await page.GotoAsync(server.BaseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "browser test");
        await page.ClickAsync("form.inline button[type=submit]");
        var token = (await page.TextContentAsync("#new-token"))!.Trim();
        await Shot(page, "03-tokens");
        return token;
    }

    [Fact]
    public async Task First_run_setup_then_the_list_updates_live_and_machines_stay_hidden_until_asked()
    {
        var (page, context) = await SetUpFirstUserAsync();
        var token = await CreateTokenInWebAppAsync(page);
        Assert.StartsWith("et_", token);

        using var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        using var recipient = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");

        // The list is open, still empty, when the first message goes out: its first open brings it in.
        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var first = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "First contact", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-3),
            to = new[] { "sam@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        await recipient.GetAsync(first.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        var firstRow = page.Locator($"tbody[data-message-id='{first.GetProperty("id").GetString()}'] tr").Nth(0);
        await Assertions.Expect(firstRow.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(firstRow.Locator(".subject")).ToContainTextAsync("First contact");
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–1 of 1 message");
        await Assertions.Expect(page.Locator(".messages .empty")).ToHaveCountAsync(0);
        await Shot(page, "03d-list-first-message-live");

        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan@encom.test", "lora@encom.test" }, html = "<p>See <a href=\"https://encom.test/grid\">the grid</a></p>",
        });
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        var alanPixel = reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        var alanLink = reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!;
        var loraPixel = reg.GetProperty("copies")[1].GetProperty("pixelUrl").GetString()!;

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var alanRow = page.Locator($"tbody[data-message-id='{messageId}'] tr").Nth(0);
        Assert.Equal("0", await alanRow.Locator(".opens").TextContentAsync());

        // A recipient's mail client opens the mail and clicks: the page updates without a reload.
        await recipient.GetAsync(alanPixel);
        await Assertions.Expect(alanRow.Locator(".opens")).ToHaveTextAsync("1");
        await recipient.GetAsync(alanLink);
        await Assertions.Expect(alanRow.Locator(".clicks")).ToHaveTextAsync("1");
        await Assertions.Expect(alanRow.Locator(".last")).ToContainTextAsync("clicked ");
        // The time in the browser's zone; the exact UTC time in its tooltip (LocalTimesBrowserTests checks the text).
        await Assertions.Expect(alanRow.Locator(".last time")).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex(@"^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC$"));
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("alan@encom.test clicked a link in Grid proposal");

        // A crawler's fetch is a machine: hidden, counted in the note, and shown on demand.
        using var bot = new HttpClient();
        bot.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)");
        await bot.GetAsync(loraPixel);
        await Assertions.Expect(page.Locator("#hidden-note")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "1");
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveTextAsync("1 machine event hidden — show");
        var loraRow = page.Locator($"tbody[data-message-id='{messageId}'] tr").Nth(1);
        Assert.Equal("0", await loraRow.Locator(".opens").TextContentAsync());
        await Shot(page, "04-list-live");

        await page.ClickAsync("#hidden-note a");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/\\?machines=true"));
        await Assertions.Expect(page.Locator("#feed li.bot")).ToHaveCountAsync(1);
        await Shot(page, "05-list-machines");

        // The message page: recipients and the timeline, machines hidden by default.
        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveTextAsync("1 machine event hidden — show");
        await page.WaitForSelectorAsync("body[data-live=on]");
        await recipient.GetAsync(loraPixel);
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#recipients tr[data-recipient-id]").Nth(1).Locator(".opens")).ToHaveTextAsync("1");
        await Shot(page, "06-message");
        await context.CloseAsync();
    }

    [Fact]
    public async Task First_run_setup_leaves_no_api_token_that_nobody_was_shown()
    {
        var (page, context) = await SetUpFirstUserAsync();
        await page.GotoAsync(server.BaseUrl + "/tokens");
        var tokens = page.Locator("table.grid tbody tr");
        await Assertions.Expect(tokens).ToHaveCountAsync(0);
        await Shot(page, "03a-tokens-after-setup");
        await using (var db = OpenDb()) Assert.Equal(0, await db.ApiTokens.CountAsync());

        // The one the user makes is shown to them once, and listed.
        Assert.StartsWith("et_", await CreateTokenInWebAppAsync(page));
        await Assertions.Expect(tokens).ToHaveCountAsync(1);
        await Assertions.Expect(tokens.First).ToContainTextAsync("browser test");
        await context.CloseAsync();
    }

    [Fact]
    public async Task Addresses_are_added_in_the_web_app_and_confirmed_by_the_mail_sent_to_them()
    {
        var (page, context) = await SetUpFirstUserAsync();
        await page.GotoAsync(server.BaseUrl + "/addresses");
        await Assertions.Expect(page.Locator("ul.addresses li[data-state=SignIn]")).ToContainTextAsync("flynn@encom.test");
        await page.FillAsync("#add-address input[name=Address]", "Sales@Encom.test");
        await page.ClickAsync("#add-address button[type=submit]");
        await Assertions.Expect(page.Locator(".notice")).ToContainTextAsync("sales@encom.test was added, unconfirmed");
        await Assertions.Expect(page.Locator("ul.addresses li")).ToHaveCountAsync(2);
        var sales = page.Locator("ul.addresses li[data-address='sales@encom.test']");
        await Assertions.Expect(sales.Locator(".badge")).ToHaveTextAsync("unconfirmed");
        // Twice: said plainly, nothing added.
        await page.FillAsync("#add-address input[name=Address]", "sales@encom.test");
        await page.ClickAsync("#add-address button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("already one of your addresses");
        await using (var db = OpenDb()) Assert.Equal(2, await db.UserAddresses.CountAsync());

        // The confirmation mail goes through the server's relay; the row says when.
        await sales.Locator("button", new() { HasText = "Send confirmation mail" }).ClickAsync();
        await Assertions.Expect(page.Locator(".notice")).ToContainTextAsync("A confirmation mail went to sales@encom.test");
        await Assertions.Expect(sales.Locator(".confirmation-sent")).ToContainTextAsync("confirmation sent");
        await Assertions.Expect(sales.Locator("button")).ToHaveTextAsync("Send again");
        await Shot(page, "03b-addresses");
        var mail = Assert.Single(relay.To("sales@encom.test"));
        var link = System.Text.RegularExpressions.Regex.Match(mail.TextBody ?? "", @"http://\S+/addresses/confirm\?t=\S+").Value;

        // Its link shows what will happen; the button confirms.
        await page.GotoAsync(link);
        await Assertions.Expect(page.Locator("#address-confirm")).ToHaveAttributeAsync("data-state", "Ready");
        await Shot(page, "03c-address-confirm");
        await page.ClickAsync("#address-confirm button[type=submit]");
        await Assertions.Expect(page.Locator("#address-confirm")).ToHaveAttributeAsync("data-state", "Confirmed");
        await page.GotoAsync(server.BaseUrl + "/addresses");
        await Assertions.Expect(sales.Locator(".badge")).ToHaveTextAsync("confirmed");
        await Assertions.Expect(sales.Locator("button")).ToHaveCountAsync(0);
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_list_pages_by_send_time_older_and_newer_and_updates_live_on_any_page()
    {
        var (page, context) = await SetUpFirstUserAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        page.PageError += (_, e) => errors.Add(e);
        using var api = await ApiClientAsync(page);
        async Task<(string Id, string Pixel)> RegisterAsync(string subject, DateTimeOffset sentAt)
        {
            var res = await api.PostAsJsonAsync("/api/messages", new
            {
                from = "flynn@encom.test", subject, perRecipient = true, sentAt, to = new[] { "alan@encom.test" }, html = "<p>hello</p>",
            });
            Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
            var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
            return (reg.GetProperty("id").GetString()!, reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        }

        // Registered first of all, sent last: it heads the list although 104 were registered after it.
        var now = DateTimeOffset.UtcNow;
        var earlyBird = await RegisterAsync("Registered first, sent last", now.AddMinutes(-61));
        var others = new List<(string Id, string Pixel)>();
        for (var i = 0; i < 104; i++) others.Add(await RegisterAsync($"Outreach {i:000}", now.AddHours(-2).AddMinutes(-i)));

        await page.GotoAsync(server.BaseUrl + "/");
        var bodies = page.Locator("#messages tbody.message");
        await Assertions.Expect(bodies).ToHaveCountAsync(100);
        await Assertions.Expect(bodies.First).ToHaveAttributeAsync("data-message-id", earlyBird.Id);
        await Assertions.Expect(bodies.Nth(1).Locator(".subject a")).ToHaveTextAsync("Outreach 000");
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–100 of 105 messages");
        await Assertions.Expect(page.Locator("#pager a[rel=prev]")).ToHaveCountAsync(0);
        await Shot(page, "15-list-page-1");

        await page.ClickAsync("#pager a[rel=next]");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/\\?older=[0-9]+_[0-9a-f]{32}$"));
        await Assertions.Expect(bodies).ToHaveCountAsync(5);
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 101–105 of 105 messages");
        await Assertions.Expect(bodies.First.Locator(".subject a")).ToHaveTextAsync("Outreach 099");
        await Assertions.Expect(bodies.Last).ToHaveAttributeAsync("data-message-id", others[^1].Id);
        await Assertions.Expect(page.Locator("#pager a[rel=next]")).ToHaveCountAsync(0);

        // Live on the second page: an open of a message on the first page shows in the feed and touches no row here;
        // an open of one on this page counts in its row.
        await page.WaitForSelectorAsync("body[data-live=on]");
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        (await recipient.GetAsync(earlyBird.Pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("alan@encom.test opened Registered first, sent last");
        (await recipient.GetAsync(others[^1].Pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(bodies.Last.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator("#messages .opens", new PageLocatorOptions { HasText = "1" })).ToHaveCountAsync(1);
        await Shot(page, "16-list-page-2-live");

        // Shown machines stay on this page; Newer goes back to the first.
        await page.ClickAsync("a.chip:has-text('Show machines')");
        await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("machines=true&older="));
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 101–105 of 105 messages");
        await page.ClickAsync("#pager a[rel=prev]");
        await Assertions.Expect(bodies).ToHaveCountAsync(100);
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–100 of 105 messages");
        await Assertions.Expect(bodies.First).ToHaveAttributeAsync("data-message-id", earlyBird.Id);
        await Assertions.Expect(bodies.First.Locator(".opens")).ToHaveTextAsync("1");

        // A cursor cut short or made up shows the first page.
        var bad = await page.GotoAsync(server.BaseUrl + "/?older=12345_not-a-cursor");
        Assert.Equal(200, bad!.Status);
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–100 of 105 messages");
        await Assertions.Expect(bodies.First).ToHaveAttributeAsync("data-message-id", earlyBird.Id);

        // A message sent while the first page is open shows as soon as something happens to it: at the top, the page's
        // last message going to the next page, as a reload has them.
        await page.WaitForSelectorAsync("body[data-live=on]");
        var latest = await RegisterAsync("Sent while the list was open", DateTimeOffset.UtcNow.AddMinutes(-1));
        (await recipient.GetAsync(latest.Pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(bodies.First).ToHaveAttributeAsync("data-message-id", latest.Id);
        await Assertions.Expect(bodies.First.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(bodies).ToHaveCountAsync(100);
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–100 of 106 messages");
        await Assertions.Expect(bodies.Nth(1)).ToHaveAttributeAsync("data-message-id", earlyBird.Id);
        Task<string[]> ShownIdsAsync() => bodies.EvaluateAllAsync<string[]>("bodies => bodies.map(b => b.dataset.messageId)");
        var liveIds = await ShownIdsAsync();
        var liveOlder = await page.Locator("#pager a[rel=next]").GetAttributeAsync("href");
        // An open of a message of the second page leaves this one as it is.
        (await recipient.GetAsync(others[^1].Pixel)).EnsureSuccessStatusCode();
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("alan@encom.test opened Outreach 103");
        Assert.Equal(liveIds, await ShownIdsAsync());
        await Shot(page, "16b-list-new-message-live");
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("#showing")).ToHaveTextAsync("Showing 1–100 of 106 messages");
        Assert.Equal(liveIds, await ShownIdsAsync());
        Assert.Equal(liveOlder, await page.Locator("#pager a[rel=next]").GetAttributeAsync("href"));
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_message_to_more_recipients_than_the_list_shows_brings_a_hidden_recipients_activity_into_view_live_as_a_reload_would()
    {
        var (page, context) = await SetUpFirstUserAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        page.PageError += (_, e) => errors.Add(e);
        using var api = await ApiClientAsync(page);
        var to = Enumerable.Range(1, 12).Select(i => $"r{i:00}@encom.test").ToArray();
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Board invitation", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1), to,
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/pricing\">pricing</a></p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);
        JsonElement Copy(string address) => reg.GetProperty("copies").EnumerateArray().Single(c => c.GetProperty("recipients")[0].GetString() == address);
        string Pixel(string address) => Copy(address).GetProperty("pixelUrl").GetString()!;
        string Link(string address, int i) => Copy(address).GetProperty("links")[i].GetProperty("trackedUrl").GetString()!;

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var body = page.Locator($"tbody[data-message-id='{messageId}']");
        var rows = body.Locator("tr[data-recipient-id]");
        async Task<string[]> ShownAsync() => [.. (await rows.Locator(".recipient").AllTextContentsAsync()).Select(t => t.Trim().Split(' ', '\n')[0])];
        // Nobody did anything yet: the first ten in the message's order, and the two others behind "more".
        await Assertions.Expect(rows).ToHaveCountAsync(10);
        Assert.Equal(to[..10], await ShownAsync());
        await Assertions.Expect(body.Locator(".more-recipients")).ToContainTextAsync("and 2 more recipients");

        // The twelfth, not shown, opens: their row comes to the top with its open, as a reload shows it.
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        (await recipient.GetAsync(Pixel("r12@encom.test"))).EnsureSuccessStatusCode();
        var r12 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r12@encom.test" });
        await Assertions.Expect(r12.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(r12.Locator(".last")).ToContainTextAsync("opened ");
        await Assertions.Expect(rows).ToHaveCountAsync(10);
        string[] afterOpen = ["r12@encom.test", .. to[..9]];
        Assert.Equal(afterOpen, await ShownAsync());
        await Assertions.Expect(body.Locator(".more-recipients")).ToContainTextAsync("and 2 more recipients");
        await Assertions.Expect(page.Locator("#feed li").First).ToContainTextAsync("r12@encom.test opened Board invitation");

        // The eleventh, not shown either, answers without loading images; a crawler's fetch of the first one's mail
        // follows at once (and wakes the stream: the reply is written from outside the server).
        await using (var db = OpenDb())
        {
            var r = await db.Recipients.SingleAsync(x => x.TrackedMessageId == messageId && x.Address == "r11@encom.test");
            var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
            db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = r.CopyId, RecipientId = r.Id,
                Kind = EventKind.Reply, OccurredAt = DateTimeOffset.UtcNow, FromAddress = r.Address, Verdict = Verdict.Human, Reason = "reply",
            });
            await db.SaveChangesAsync();
        }
        using var crawler = new HttpClient();
        crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)");
        (await crawler.GetAsync(Pixel("r01@encom.test"))).EnsureSuccessStatusCode();
        var r11 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r11@encom.test" });
        await Assertions.Expect(r11.Locator(".hint-replied")).ToContainTextAsync("blocks images");
        var r01 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r01@encom.test" });
        await Assertions.Expect(r01.Locator(".machine-note")).ToHaveTextAsync("1 machine event hidden");
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "1");
        await Assertions.Expect(rows).ToHaveCountAsync(10);
        string[] afterReply = ["r12@encom.test", "r11@encom.test", .. to[..8]];
        Assert.Equal(afterReply, await ShownAsync());

        // The fifth, shown further down, opens: their row goes to the top, the message's subject beside it.
        (await recipient.GetAsync(Pixel("r05@encom.test"))).EnsureSuccessStatusCode();
        await Assertions.Expect(rows.First).ToContainTextAsync("r05@encom.test");
        await Assertions.Expect(rows.First.Locator("td.subject")).ToContainTextAsync("Board invitation");
        await Assertions.Expect(body.Locator("td.subject")).ToHaveCountAsync(1);
        string[] afterSecondOpen = ["r05@encom.test", "r12@encom.test", "r11@encom.test", "r01@encom.test", "r02@encom.test", "r03@encom.test",
            "r04@encom.test", "r06@encom.test", "r07@encom.test", "r08@encom.test"];
        Assert.Equal(afterSecondOpen, await ShownAsync());

        // A mail security gateway follows a link in the sixth one's copy: on its own it looks like them, and their row
        // goes to the top; its second link within the burst window gives it away, and the row goes back to its place.
        using var scanner = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        scanner.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36");
        await scanner.GetAsync(Link("r06@encom.test", 0));
        await Assertions.Expect(rows.First).ToContainTextAsync("r06@encom.test");
        await scanner.GetAsync(Link("r06@encom.test", 1));
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "3");
        var r06 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r06@encom.test" });
        await Assertions.Expect(r06.Locator(".machine-note")).ToHaveTextAsync("2 machine events hidden");
        await Assertions.Expect(rows.First).ToContainTextAsync("r05@encom.test");
        await Assertions.Expect(r06.Locator(".clicks")).ToHaveTextAsync("0");
        var live = await ShownAsync();
        Assert.Equal(afterSecondOpen, live);
        await Assertions.Expect(body.Locator("td.subject")).ToHaveCountAsync(1);
        await Shot(page, "04b-list-more-recipients-live");

        // What the live page shows is what a fresh load shows.
        await page.ReloadAsync();
        await Assertions.Expect(r11.Locator(".hint-replied")).ToContainTextAsync("blocks images");
        Assert.Equal(live, await ShownAsync());
        await Assertions.Expect(r12.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(r01.Locator(".machine-note")).ToHaveTextAsync("1 machine event hidden");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
        await context.CloseAsync();
    }

    [Fact]
    public async Task Rows_rendered_again_while_a_click_is_taken_back_do_not_take_it_back_twice()
    {
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var to = Enumerable.Range(1, 12).Select(i => $"r{i:00}@encom.test").ToArray();
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid pricing", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1), to,
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/pricing\">pricing</a></p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        JsonElement Copy(string address) => reg.GetProperty("copies").EnumerateArray().Single(c => c.GetProperty("recipients")[0].GetString() == address);
        string Link(string address, int i) => Copy(address).GetProperty("links")[i].GetProperty("trackedUrl").GetString()!;

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var body = page.Locator($"tbody[data-message-id='{messageId}']");
        var r01 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r01@encom.test" });
        // The rows the page asks for again are held back until the test lets them go.
        var held = new TaskCompletionSource<IRoute>(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync(new System.Text.RegularExpressions.Regex("handler=Rows"), route => { held.TrySetResult(route); return Task.CompletedTask; });

        // A mail security gateway follows the first link of the first recipient's copy: on its own it looks like them.
        using var scanner = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        scanner.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36");
        await scanner.GetAsync(Link("r01@encom.test", 0));
        await Assertions.Expect(r01.Locator(".clicks")).ToHaveTextAsync("1");
        // The twelfth recipient, not shown, opens: the page asks for the message's rows again...
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        (await recipient.GetAsync(Copy("r12@encom.test").GetProperty("pixelUrl").GetString()!)).EnsureSuccessStatusCode();
        var rowsAsked = await held.Task.WaitAsync(TimeSpan.FromSeconds(30));
        // ...and before they come, the gateway follows the second link: the first click was its own, taken back.
        await scanner.GetAsync(Link("r01@encom.test", 1));
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "2");
        await rowsAsked.ContinueAsync();

        // The rows count the click as the gateway's; the change that arrived meanwhile takes nothing more back.
        var r12 = body.Locator("tr", new LocatorLocatorOptions { HasText = "r12@encom.test" });
        await Assertions.Expect(r12.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(r01.Locator(".clicks")).ToHaveTextAsync("0");
        await Assertions.Expect(r01.Locator(".machine-note")).ToHaveTextAsync("2 machine events hidden");
        await page.UnrouteAllAsync();
        await page.ReloadAsync();
        await Assertions.Expect(r12.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(r01.Locator(".clicks")).ToHaveTextAsync("0");
        await Assertions.Expect(r01.Locator(".machine-note")).ToHaveTextAsync("2 machine events hidden");
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_click_shown_live_as_a_persons_is_taken_back_when_a_scanners_burst_gives_it_away()
    {
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid pricing", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan@encom.test" },
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/pricing\">pricing</a></p>",
        });
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        string Link(int i) => reg.GetProperty("copies")[0].GetProperty("links")[i].GetProperty("trackedUrl").GetString()!;

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var timeline = await context.NewPageAsync();
        await timeline.GotoAsync($"{server.BaseUrl}/messages/{messageId}?machines=true");
        await timeline.WaitForSelectorAsync("body[data-live=on]");
        var row = page.Locator($"tbody[data-message-id='{messageId}'] tr").Nth(0);

        // A mail security gateway follows the first link: on its own it looks like the recipient.
        using var scanner = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        scanner.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/130.0.0.0 Safari/537.36");
        await scanner.GetAsync(Link(0));
        // Checked all at once, so that the second link follows well within the burst window (10 s here).
        await Task.WhenAll(
            Assertions.Expect(row.Locator(".clicks")).ToHaveTextAsync("1"),
            Assertions.Expect(row.Locator(".last")).ToContainTextAsync("clicked "),
            Assertions.Expect(row.Locator(".last time")).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex(" UTC$")),
            Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(1),
            Assertions.Expect(timeline.Locator("#feed li.human")).ToHaveCountAsync(1),
            Assertions.Expect(timeline.Locator("#feed li.human .badge.human")).ToHaveTextAsync("human"),
            Assertions.Expect(timeline.Locator("#recipients .clicks")).ToHaveTextAsync("1"));

        // ...and the second link within the window: both were the scanner's. The click shown is taken back.
        await scanner.GetAsync(Link(1));
        await Assertions.Expect(row.Locator(".clicks")).ToHaveTextAsync("0");
        await Assertions.Expect(row.Locator(".last > span")).ToHaveTextAsync("not opened yet");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "2");
        await Assertions.Expect(row.Locator(".last .machine-note")).ToHaveTextAsync("2 machine events hidden");
        await Shot(page, "06b-list-click-taken-back");
        await Assertions.Expect(timeline.Locator("#feed li.scanner")).ToHaveCountAsync(2);
        await Assertions.Expect(timeline.Locator("#feed li.human")).ToHaveCountAsync(0);
        await Assertions.Expect(timeline.Locator("#feed li .badge.scanner")).ToHaveCountAsync(2);
        await Assertions.Expect(timeline.Locator("#recipients .clicks")).ToHaveTextAsync("0");
        await Assertions.Expect(timeline.Locator("#feed li").Last.Locator(".badge")).ToHaveAttributeAsync("title", "several links clicked within 10 seconds");
        await Assertions.Expect(timeline.Locator("#feed li").Last.Locator(".reason")).ToHaveTextAsync("several links clicked within 10 seconds");
        await Shot(timeline, "06c-timeline-click-taken-back");

        // What the live pages show is what a fresh load shows.
        await page.ReloadAsync();
        await Assertions.Expect(row.Locator(".clicks")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveAttributeAsync("data-machines", "2");
        await Assertions.Expect(row.Locator(".last .machine-note")).ToHaveTextAsync("2 machine events hidden");
        await page.GotoAsync(server.BaseUrl + "/?machines=true");
        await page.WaitForSelectorAsync("body[data-live=on]");
        await Assertions.Expect(row.Locator(".machine")).ToHaveTextAsync("+2");
        // A crawler follows a link, live, with machines shown: counted apart.
        using var crawler = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)");
        await crawler.GetAsync(Link(0));
        await Assertions.Expect(row.Locator(".machine")).ToHaveTextAsync("+3");
        await Assertions.Expect(row.Locator(".clicks")).ToHaveTextAsync("0");
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_senders_own_view_is_set_apart_and_a_reply_without_an_open_explains_blocked_images()
    {
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Test to myself", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "flynn@encom.test", "sam@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);

        // The sender views their own test mail in this browser (webmail loads the pixel with this browser's cookies).
        var view = await context.NewPageAsync();
        await view.GotoAsync(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        await view.CloseAsync();

        // Sam answered, but their client never loaded the pixel.
        await using (var db = OpenDb())
        {
            var sam = await db.Recipients.SingleAsync(r => r.TrackedMessageId == messageId && r.Address == "sam@encom.test");
            var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
            db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = sam.CopyId, RecipientId = sam.Id,
                Kind = EventKind.Reply, OccurredAt = DateTimeOffset.UtcNow, FromAddress = "sam@encom.test", Verdict = Verdict.Human, Reason = "reply",
            });
            await db.SaveChangesAsync();
            var own = await db.Events.Where(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Open).ToListAsync();
            Assert.Equal(Verdict.Self, Assert.Single(own).Verdict);
        }

        await page.GotoAsync(server.BaseUrl + "/");
        var rows = page.Locator($"tbody[data-message-id='{messageId}'] tr");
        Assert.Equal("0", await rows.Nth(0).Locator(".opens").TextContentAsync());
        await Assertions.Expect(rows.Nth(1).Locator(".hint-replied")).ToContainTextAsync("blocks images");
        // The sender's own view is hidden as theirs, not as a machine's.
        await Assertions.Expect(rows.Nth(0).Locator(".machine-note")).ToHaveTextAsync("1 of your own views hidden");
        await Assertions.Expect(page.Locator("#hidden-note")).ToHaveTextAsync("1 of your own views hidden — show");
        await Shot(page, "07-replied-never-opened");

        // Another team's message does not exist for this user: 404, nothing of it shown.
        Guid foreign;
        await using (var db = OpenDb())
        {
            var team = new Team { Name = "Dillinger Corp", NormalizedName = Team.Normalize("Dillinger Corp"), Plan = Plan.Team, CreatedAt = DateTimeOffset.UtcNow };
            var user = new User { Id = Guid.NewGuid(), UserName = "ed@dillinger.test", Email = "ed@dillinger.test", TeamId = team.Id, CreatedAt = DateTimeOffset.UtcNow };
            var msg = new TrackedMessage { TeamId = team.Id, UserId = user.Id, FromAddress = "ed@dillinger.test", Subject = "Secret MCP plans", CreatedAt = DateTimeOffset.UtcNow };
            db.AddRange(team, user, msg);
            await db.SaveChangesAsync();
            foreign = msg.Id;
        }
        var denied = await page.GotoAsync($"{server.BaseUrl}/messages/{foreign}");
        Assert.Equal(404, denied!.Status);
        Assert.DoesNotContain("Secret MCP plans", await page.ContentAsync());
        // A page of the app, not a problem document: the header with its navigation, a sentence, a way back.
        await Assertions.Expect(page.Locator("#error h1")).ToHaveTextAsync("Not found");
        await Assertions.Expect(page.Locator("header.top nav")).ToBeVisibleAsync();
        await Shot(page, "07b-not-found");
        await page.ClickAsync("#back-to-messages");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        Assert.DoesNotContain("Secret MCP plans", await page.ContentAsync());

        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}?machines=true");
        await Assertions.Expect(page.Locator("#feed li.self")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#feed li.self .badge")).ToHaveTextAsync("you");
        await Shot(page, "08-message-self-view");

        // Signing out and in again: wrong password, then the right one.
        await page.ClickAsync("header form button");
        try
        {
            await Assertions.Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/login$"));
        }
        catch (PlaywrightException ex)
        {
            throw new InvalidOperationException($"sign-out did not reach /login: {page.Url}\n{await page.ContentAsync()}\n--- server ---\n{server.Output}", ex);
        }
        await page.FillAsync("#Email", "flynn@encom.test");
        await page.FillAsync("#Password", "wrong-Password-1");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("Wrong email or password");
        await Shot(page, "09-login-error");
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        await context.CloseAsync();
    }

    [Fact]
    public async Task The_senders_own_views_live_are_counted_apart_from_machines_and_so_is_a_persons_open_taken_back_as_theirs()
    {
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Own views", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "alan@encom.test", "lora@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);
        string Pixel(string address) => reg.GetProperty("copies").EnumerateArray()
            .Single(c => c.GetProperty("recipients")[0].GetString() == address).GetProperty("pixelUrl").GetString()!;
        async Task SenderViewsAsync(string address)
        {
            // Webmail loads the pixel with this browser's cookies: the sender's own device.
            var view = await context.NewPageAsync();
            await view.GotoAsync(Pixel(address));
            await view.CloseAsync();
        }

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var body = page.Locator($"tbody[data-message-id='{messageId}']");
        var alanRow = body.Locator("tr", new LocatorLocatorOptions { HasText = "alan@encom.test" });
        var loraRow = body.Locator("tr", new LocatorLocatorOptions { HasText = "lora@encom.test" });
        var note = page.Locator("#hidden-note");

        // The sender's own view, live: hidden, and no machine's.
        await SenderViewsAsync("alan@encom.test");
        await Assertions.Expect(note).ToHaveTextAsync("1 of your own views hidden — show");
        await Assertions.Expect(alanRow.Locator(".machine-note")).ToHaveTextAsync("1 of your own views hidden");
        await Assertions.Expect(alanRow.Locator(".opens")).ToHaveTextAsync("0");

        // A crawler's fetch is a machine's: both named, apart.
        using var crawler = new HttpClient();
        crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)");
        (await crawler.GetAsync(Pixel("lora@encom.test"))).EnsureSuccessStatusCode();
        await Assertions.Expect(note).ToHaveTextAsync("1 machine event and 1 of your own views hidden — show");
        await Assertions.Expect(loraRow.Locator(".machine-note")).ToHaveTextAsync("1 machine event hidden");

        // An open shown as Lora's is then known to have been the sender's (as the Gmail add-on takes one back): it
        // moves to the sender's own, not to the machines'.
        using var client = new HttpClient();
        client.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        (await client.GetAsync(Pixel("lora@encom.test"))).EnsureSuccessStatusCode();
        await Assertions.Expect(loraRow.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(1);
        await using (var db = OpenDb())
        {
            var open = await db.Events.SingleAsync(e => e.TrackedMessageId == messageId && e.Verdict == Verdict.Human);
            open.Verdict = Verdict.Self;
            db.VerdictChanges.Add(new VerdictChange
            {
                EventId = open.Id, TeamId = open.TeamId, UserId = open.UserId, TrackedMessageId = messageId, RecipientId = open.RecipientId,
                Kind = open.Kind, From = Verdict.Human, To = Verdict.Self, Reason = "sender viewed the message in Gmail", ChangedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        await Assertions.Expect(loraRow.Locator(".opens")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(0);
        await Assertions.Expect(loraRow.Locator(".machine-note")).ToHaveTextAsync("1 machine event and 1 of your own views hidden");
        await Assertions.Expect(note).ToHaveTextAsync("1 machine event and 2 of your own views hidden — show");
        await Shot(page, "07e-list-own-views-apart");

        // What the live page shows is what a fresh load shows.
        await page.ReloadAsync();
        await Assertions.Expect(note).ToHaveTextAsync("1 machine event and 2 of your own views hidden — show");
        await Assertions.Expect(alanRow.Locator(".machine-note")).ToHaveTextAsync("1 of your own views hidden");
        await Assertions.Expect(loraRow.Locator(".machine-note")).ToHaveTextAsync("1 machine event and 1 of your own views hidden");

        // The message's page names both, live too; "show" reveals both.
        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        await page.WaitForSelectorAsync("body[data-live=on]");
        await Assertions.Expect(note).ToHaveTextAsync("1 machine event and 2 of your own views hidden — show");
        await SenderViewsAsync("alan@encom.test");
        await Assertions.Expect(note).ToHaveTextAsync("1 machine event and 3 of your own views hidden — show");
        await note.ClickAsync();
        await Assertions.Expect(page.Locator("#feed li.self")).ToHaveCountAsync(3);
        await Assertions.Expect(page.Locator("#feed li.bot")).ToHaveCountAsync(1);

        // Machines shown in the list: the sender's own count beside the machines', apart from them, live too.
        await page.GotoAsync(server.BaseUrl + "/?machines=true");
        await page.WaitForSelectorAsync("body[data-live=on]");
        await Assertions.Expect(loraRow.Locator(".machine")).ToHaveTextAsync("+1");
        await Assertions.Expect(loraRow.Locator(".own")).ToHaveTextAsync("+1");
        await Assertions.Expect(alanRow.Locator(".own")).ToHaveTextAsync("+2");
        await Assertions.Expect(alanRow.Locator(".machine")).ToHaveCountAsync(0);
        await SenderViewsAsync("alan@encom.test");
        await Assertions.Expect(alanRow.Locator(".own")).ToHaveTextAsync("+3");
        await Assertions.Expect(alanRow.Locator(".own")).ToHaveAttributeAsync("title", "your own opens");
        await Assertions.Expect(alanRow.Locator(".machine")).ToHaveCountAsync(0);
        await Assertions.Expect(alanRow.Locator(".opens")).ToHaveTextAsync("0");
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_reply_arriving_live_marks_its_recipient_as_the_page_would_and_the_hint_goes_once_an_open_is_seen()
    {
        var (page, _) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Lease renewal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test", "alan@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);
        var samPixel = reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        var alanPixel = reg.GetProperty("copies")[1].GetProperty("pixelUrl").GetString()!;

        async Task AnswerAsync(string recipient, EventKind kind, Verdict verdict, string reason)
        {
            await using (var db = OpenDb())
            {
                var r = await db.Recipients.SingleAsync(x => x.TrackedMessageId == messageId && x.Address == recipient);
                var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
                db.Events.Add(new TrackingEvent
                {
                    TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = r.CopyId, RecipientId = r.Id,
                    Kind = kind, OccurredAt = DateTimeOffset.UtcNow, FromAddress = recipient, Verdict = verdict, Reason = reason,
                });
                await db.SaveChangesAsync();
            }
            // Written from outside the server, the row wakes no stream: a crawler's hit, recorded by the server, does.
            using var crawler = new HttpClient();
            crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)");
            (await crawler.GetAsync(alanPixel)).EnsureSuccessStatusCode();
        }

        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var sam = page.Locator("#recipients tr", new PageLocatorOptions { HasText = "sam@encom.test" });
        var alan = page.Locator("#recipients tr", new PageLocatorOptions { HasText = "alan@encom.test" });
        await Assertions.Expect(sam.Locator("td[data-label=Replied]")).ToHaveTextAsync("—");

        // Sam answers while the page is open: the row says so at once, as a reload would, hint included.
        await AnswerAsync("sam@encom.test", EventKind.Reply, Verdict.Human, "reply from sam@encom.test");
        await Assertions.Expect(page.Locator("#feed li .badge.inbound.reply")).ToHaveCountAsync(1);
        await Assertions.Expect(sam.Locator("td[data-label=Replied]")).ToHaveTextAsync("yes");
        await Assertions.Expect(sam.Locator(".hint-replied")).ToContainTextAsync("blocks images");
        // Alan's robot answers: "auto-reply only", no hint (a robot's answer says nothing of images).
        await AnswerAsync("alan@encom.test", EventKind.AutoReply, Verdict.Bot, "auto-reply from alan@encom.test");
        await Assertions.Expect(alan.Locator("td[data-label=Replied]")).ToHaveTextAsync("auto-reply only");
        await Assertions.Expect(alan.Locator(".hint-replied")).ToHaveCountAsync(0);

        // Sam's client loads the images after all: the open counts and the hint, now wrong, goes.
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        await recipient.GetAsync(samPixel);
        await Assertions.Expect(sam.Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(sam.Locator(".hint-replied")).ToHaveCountAsync(0);
        await Assertions.Expect(sam.Locator("td[data-label=Replied]")).ToHaveTextAsync("yes");

        // The list does the same for a reply that arrives while it is open.
        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var alanRow = page.Locator($"tbody[data-message-id='{messageId}'] tr", new PageLocatorOptions { HasText = "alan@encom.test" });
        await Assertions.Expect(alanRow.Locator(".hint-replied")).ToHaveCountAsync(0);
        await AnswerAsync("alan@encom.test", EventKind.Reply, Verdict.Human, "reply from alan@encom.test");
        await Assertions.Expect(alanRow.Locator(".hint-replied")).ToContainTextAsync("blocks images");
        await Shot(page, "07c-reply-live-hint");
    }

    [Fact]
    public async Task Answers_show_as_replies_auto_replies_bounces_and_receipts_live_and_the_mailboxes_page_says_what_needs_attention()
    {
        var (page, _) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var reg = JsonDocument.Parse(await (await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Arcade lease", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test", "alan@encom.test", "nobody@encom.test", "lora@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var messageId = Guid.Parse(reg.GetProperty("id").GetString()!);

        async Task AnswerAsync(string recipient, EventKind kind, string from, Verdict verdict, string reason)
        {
            await using var db = OpenDb();
            var r = await db.Recipients.SingleAsync(x => x.TrackedMessageId == messageId && x.Address == recipient);
            var msg = await db.Messages.SingleAsync(m => m.Id == messageId);
            db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = messageId, CopyId = r.CopyId, RecipientId = r.Id,
                Kind = kind, OccurredAt = DateTimeOffset.UtcNow, FromAddress = from, Verdict = verdict, Reason = reason,
            });
            await db.SaveChangesAsync();
        }

        await AnswerAsync("sam@encom.test", EventKind.Reply, "sam@encom.test", Verdict.Human, "reply from sam@encom.test");
        await AnswerAsync("alan@encom.test", EventKind.AutoReply, "alan@encom.test", Verdict.Bot, "auto-reply from alan@encom.test, back 2026-12-07");

        // A bounce arriving while the list is open shows at once, about the address that failed, without "show machines".
        await page.GotoAsync(server.BaseUrl + "/");
        await AnswerAsync("nobody@encom.test", EventKind.Bounce, "mailer-daemon@encom.test", Verdict.Bot, "bounce 5.1.1 (permanent): user unknown");
        // So does a read receipt that says the mail was deleted unread (one saying it was displayed is an open).
        await AnswerAsync("lora@encom.test", EventKind.Receipt, "lora@encom.test", Verdict.Bot,
            "receipt from lora@encom.test: read receipt (RFC 8098 disposition notification): deleted without being read");
        // Written from outside the server, the row wakes no stream by itself (the server's own pipeline does): a
        // crawler's hit, recorded by the server, wakes them now rather than at the next 15-second heartbeat.
        using (var crawler = new HttpClient())
        {
            crawler.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", "Googlebot/2.1 (+http://www.google.com/bot.html)");
            (await crawler.GetAsync(reg.GetProperty("copies")[2].GetProperty("pixelUrl").GetString())).EnsureSuccessStatusCode();
        }
        var bounced = page.Locator("#feed li", new PageLocatorOptions { HasText = "bounced" });
        await Assertions.Expect(bounced).ToContainTextAsync("nobody@encom.test bounced");
        await Assertions.Expect(bounced.Locator(".badge.inbound")).ToHaveTextAsync("bounce");
        await Assertions.Expect(page.Locator("#feed li .badge.inbound.auto-reply")).ToHaveCountAsync(1);
        var receipt = page.Locator("#feed li", new PageLocatorOptions { HasText = "sent a receipt" });
        await Assertions.Expect(receipt).ToContainTextAsync("lora@encom.test sent a receipt for Arcade lease");
        await Assertions.Expect(receipt.Locator(".badge.inbound.receipt")).ToHaveTextAsync("receipt");
        await Shot(page, "10-answers-live");

        await page.GotoAsync($"{server.BaseUrl}/messages/{messageId}");
        var row = (string address) => page.Locator("tr", new PageLocatorOptions { HasText = address });
        await Assertions.Expect(row("sam@encom.test")).ToContainTextAsync("yes");
        await Assertions.Expect(row("alan@encom.test")).ToContainTextAsync("auto-reply only");
        await Assertions.Expect(row("nobody@encom.test")).ToContainTextAsync("bounced");
        await Assertions.Expect(page.Locator("#feed .badge.inbound")).ToHaveCountAsync(4);
        await Assertions.Expect(page.Locator("#feed li", new PageLocatorOptions { HasText = "lora@encom.test sent a receipt" })).ToHaveCountAsync(1);
        await Assertions.Expect(row("lora@encom.test")).Not.ToContainTextAsync("yes");
        await Shot(page, "11-message-answers");

        // Mailboxes: none yet; a server that cannot be reached is refused with the reason; a mailbox whose login was
        // refused says it needs reconnecting, and why.
        await page.GotoAsync(server.BaseUrl + "/mailboxes");
        await Assertions.Expect(page.Locator("#no-mailboxes")).ToBeVisibleAsync();
        await page.FillAsync("input[name='Form.Address']", "flynn@encom.test");
        await page.FillAsync("input[name='Form.Username']", "flynn");
        await page.FillAsync("input[name='Form.Password']", "secret");
        await page.FillAsync("input[name='Form.ImapHost']", "127.0.0.1");
        await page.FillAsync("input[name='Form.ImapPort']", "1");
        await page.SelectOptionAsync("select[name='Form.ImapSecurity']", "None");
        await page.FillAsync("input[name='Form.SmtpHost']", "127.0.0.1");
        await page.FillAsync("input[name='Form.SmtpPort']", "1");
        await page.SelectOptionAsync("select[name='Form.SmtpSecurity']", "None");
        await page.ClickAsync("#connect-imap button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("could not be connected");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("IMAP server 127.0.0.1:1");
        // This server does not connect to its own machine or network unless told to (Mailboxes:AllowPrivateHosts).
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("private or local address");
        await Shot(page, "12-mailboxes-refused");

        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == "flynn@encom.test");
            db.Mailboxes.Add(new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = "flynn@encom.test", ProtectedSecret = "unreadable",
                Status = MailboxStatus.NeedsReconnect, StatusMessage = "The IMAP server imap.encom.test:993 refused the login: Authentication failed.",
                CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        await page.GotoAsync(server.BaseUrl + "/mailboxes");
        var mailbox = page.Locator("#mailboxes tbody tr");
        await Assertions.Expect(mailbox).ToContainTextAsync("needs reconnect");
        await Assertions.Expect(mailbox.Locator(".status-message")).ToContainTextAsync("refused the login");
        await Assertions.Expect(mailbox.Locator(".unreadable")).ToHaveCountAsync(0);
        await Shot(page, "13-mailboxes-needs-reconnect");

        // Messages the watch could not read are listed under the mailbox, with when, where, how big and why.
        await using (var db = OpenDb())
        {
            var box = await db.Mailboxes.SingleAsync(m => m.Address == "flynn@encom.test");
            db.UnreadableMessages.AddRange(
                new UnreadableMessage
                {
                    ConnectionId = box.Id, UserId = box.UserId, ProviderId = "imap:INBOX:7:41", Folder = "INBOX", Size = 4133,
                    Reason = "not a readable MIME message: Failed to parse message headers.",
                    ReceivedAt = new DateTimeOffset(2026, 11, 20, 9, 30, 0, TimeSpan.Zero), SeenAt = DateTimeOffset.UtcNow,
                },
                new UnreadableMessage
                {
                    ConnectionId = box.Id, UserId = box.UserId, ProviderId = "imap:Sent:7:12", Folder = "Sent", Size = 2_400_000,
                    Reason = "could not be handled (ArgumentException): an example of a failure in our code",
                    ReceivedAt = new DateTimeOffset(2026, 11, 21, 16, 5, 0, TimeSpan.Zero), SeenAt = DateTimeOffset.UtcNow,
                });
            await db.SaveChangesAsync();
        }
        await page.GotoAsync(server.BaseUrl + "/mailboxes");
        var unreadable = page.Locator("#mailboxes tbody tr .unreadable");
        await Assertions.Expect(unreadable.Locator("summary")).ToHaveTextAsync("2 messages could not be read");
        await unreadable.Locator("summary").ClickAsync();
        await Assertions.Expect(unreadable.Locator("li")).ToHaveCountAsync(2);
        // Newest noted first.
        await Assertions.Expect(unreadable.Locator("li").First).ToContainTextAsync(" · Sent · 2.3 MB");
        await Assertions.Expect(unreadable.Locator("li").First.Locator("time")).ToHaveAttributeAsync("title", "2026-11-21 16:05:00 UTC");
        await Assertions.Expect(unreadable.Locator("li").Nth(1)).ToContainTextAsync("4 KB");
        await Assertions.Expect(unreadable.Locator("li").Nth(1).Locator(".reason")).ToHaveTextAsync("not a readable MIME message: Failed to parse message headers.");
        await Shot(page, "14-mailboxes-unreadable");

        // Looked at: the list is cleared, and a message noted after the page was shown stays.
        await using (var db = OpenDb())
        {
            var box = await db.Mailboxes.SingleAsync(m => m.Address == "flynn@encom.test");
            db.UnreadableMessages.Add(new UnreadableMessage
            {
                ConnectionId = box.Id, UserId = box.UserId, ProviderId = "imap:INBOX:7:44", Folder = "INBOX", Size = 900,
                Reason = "not a readable MIME message: noted while the page was open", SeenAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        await unreadable.Locator(".clear-unreadable button").ClickAsync();
        await Assertions.Expect(page.Locator("#mailboxes tbody tr .unreadable summary")).ToHaveTextAsync("1 message could not be read");
        await page.Locator("#mailboxes tbody tr .unreadable summary").ClickAsync();
        await Assertions.Expect(page.Locator("#mailboxes tbody tr .unreadable li .reason")).ToHaveTextAsync("not a readable MIME message: noted while the page was open");
        await page.Locator("#mailboxes tbody tr .unreadable .clear-unreadable button").ClickAsync();
        await Assertions.Expect(page.Locator("#mailboxes tbody tr")).ToContainTextAsync("needs reconnect");
        await Assertions.Expect(page.Locator("#mailboxes tbody tr .unreadable")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_stream_the_server_ends_says_why_on_the_page_instead_of_reconnecting_for_ever()
    {
        var (page, context) = await SetUpFirstUserAsync();
        await page.GotoAsync(server.BaseUrl + "/");
        await Assertions.Expect(page.Locator("#live-status.on")).ToHaveCountAsync(1);
        // An administrator closes the account while its list is open: the stream ends with the reason.
        using (var db = OpenDb())
        {
            var user = db.Users.Single(u => u.Email == "flynn@encom.test");
            user.LockoutEnd = DateTimeOffset.MaxValue;
            db.SaveChanges();
        }
        await Assertions.Expect(page.Locator(".live-stopped")).ToContainTextAsync("Live updates stopped: The account is locked.");
        await Assertions.Expect(page.Locator("#live-status")).ToHaveAttributeAsync("title", new System.Text.RegularExpressions.Regex("^Live updates stopped"));
        await Assertions.Expect(page.Locator("#live-status.on")).ToHaveCountAsync(0);
        Assert.Equal("stopped", await page.EvaluateAsync<string>("document.body.dataset.live"));
        await Shot(page, "40-live-stopped");
        await context.CloseAsync();
    }

    [Fact]
    public async Task A_page_goes_live_again_after_a_server_restart_behind_a_proxy_that_answered_503_meanwhile()
    {
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan@encom.test", "lora@encom.test" }, html = "<p>Hello</p>",
        });
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        string Pixel(int i) => reg.GetProperty("copies")[i].GetProperty("pixelUrl").GetString()!;
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");

        await page.GotoAsync(server.BaseUrl + "/");
        await page.WaitForSelectorAsync("body[data-live=on]");
        var rows = page.Locator($"tbody[data-message-id='{messageId}'] tr");
        await recipient.GetAsync(Pixel(0));
        await Assertions.Expect(rows.Nth(0).Locator(".opens")).ToHaveTextAsync("1");

        // The server restarts; meanwhile the proxy in front of it answers the page's reconnections with 503, which
        // EventSource takes as the end (it retries a dropped connection, not an answer).
        var refused = 0;
        await page.RouteAsync("**/api/feed?**", route =>
        {
            Interlocked.Increment(ref refused);
            return route.FulfillAsync(new() { Status = 503, ContentType = "text/html", Body = "<h1>503 Service Temporarily Unavailable</h1>" });
        });
        var port = new Uri(server.BaseUrl).Port;
        server.Kill();
        await server.DisposeAsync();
        server = await ServerProcess.StartAsync(dir, Settings, port);
        for (var waited = 0; Volatile.Read(ref refused) == 0 && waited < 150; waited++) await Task.Delay(100);
        Assert.True(refused > 0, "the page did not try to reconnect");
        await Assertions.Expect(page.Locator("body[data-live=on]")).ToHaveCountAsync(0);
        // Something happens while the page cannot follow it.
        await recipient.GetAsync(Pixel(1));
        await page.UnrouteAsync("**/api/feed?**");

        // The proxy is back: the page follows again from where it was, and gets what it missed, once.
        await page.WaitForSelectorAsync("body[data-live=on]", new() { Timeout = 45_000 });
        await Assertions.Expect(rows.Nth(1).Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(rows.Nth(0).Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(page.Locator("#feed li")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator(".live-stopped")).ToHaveCountAsync(0);
        await Shot(page, "41-live-again-after-restart");

        // A refusal still stops the updates, with the server's reason, instead of asking again for ever.
        await page.RouteAsync("**/api/feed?**", route => route.FulfillAsync(new()
        {
            Status = 403, ContentType = "application/problem+json", Body = "{\"title\":\"Only team admins can follow the team's feed.\",\"status\":403}",
        }));
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator(".live-stopped")).ToContainTextAsync("Live updates stopped: Only team admins can follow the team's feed.");
        Assert.Equal("stopped", await page.EvaluateAsync<string>("document.body.dataset.live"));
        await context.CloseAsync();
    }

    [Fact]
    public async Task Tabs_left_in_the_background_let_their_streams_go_so_a_seventh_tab_still_loads_and_they_catch_up_when_shown()
    {
        // Over HTTP/1.1 Chromium opens at most six connections to a server: six tabs holding a stream each left a
        // seventh tab loading for ever.
        var (page, context) = await SetUpFirstUserAsync();
        using var api = await ApiClientAsync(page);
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = "flynn@encom.test", subject = "Grid proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan@encom.test" }, html = "<p>Hello</p>",
        });
        var reg = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        var messageId = reg.GetProperty("id").GetString()!;
        var pixel = reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;

        // The visibility a browser gives a tab the reader switched away from.
        static Task HideAsync(IPage tab, bool hidden) => tab.EvaluateAsync("""
            (hidden) => {
              Object.defineProperty(document, "visibilityState", { value: hidden ? "hidden" : "visible", configurable: true });
              Object.defineProperty(document, "hidden", { value: hidden, configurable: true });
              document.dispatchEvent(new Event("visibilitychange"));
            }
            """, hidden);
        var tabs = new List<IPage>();
        for (var i = 0; i < 6; i++)
        {
            var tab = await context.NewPageAsync();
            await tab.GotoAsync(i % 2 == 0 ? server.BaseUrl + "/" : $"{server.BaseUrl}/messages/{messageId}");
            await tab.WaitForSelectorAsync("body[data-live=on]");
            await HideAsync(tab, true);
            tabs.Add(tab);
        }

        // The seventh tab loads and goes live.
        await page.GotoAsync(server.BaseUrl + "/", new() { Timeout = 15_000 });
        await page.WaitForSelectorAsync("body[data-live=on]", new() { Timeout = 15_000 });
        await Assertions.Expect(tabs[0].Locator("body[data-live=paused]")).ToHaveCountAsync(1);
        using var recipient = new HttpClient();
        recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
        await recipient.GetAsync(pixel);
        var row = $"tbody[data-message-id='{messageId}'] tr";
        await Assertions.Expect(page.Locator(row).Locator(".opens")).ToHaveTextAsync("1");

        // A background tab shown again catches up on what happened while it was hidden, once.
        await HideAsync(tabs[0], false);
        await tabs[0].WaitForSelectorAsync("body[data-live=on]");
        await Assertions.Expect(tabs[0].Locator(row).Locator(".opens")).ToHaveTextAsync("1");
        await Assertions.Expect(tabs[0].Locator("#feed li")).ToHaveCountAsync(1);
        await HideAsync(tabs[1], false);
        await Assertions.Expect(tabs[1].Locator("#recipients .opens")).ToHaveTextAsync("1");
        await Assertions.Expect(tabs[1].Locator("#feed li")).ToHaveCountAsync(1);
        await Shot(tabs[1], "42-background-tab-caught-up");
        await context.CloseAsync();
    }

    [Fact]
    public async Task Five_wrong_passwords_lock_the_account()
    {
        var (_, first) = await SetUpFirstUserAsync();
        await first.CloseAsync();
        var context = await browser.NewContextAsync();
        var page = await context.NewPageAsync();
        await page.GotoAsync(server.BaseUrl + "/login");
        for (var i = 0; i < 5; i++)
        {
            await page.FillAsync("#Email", "flynn@encom.test");
            await page.FillAsync("#Password", $"Wrong-password-{i}");
            await page.ClickAsync("button[type=submit]");
            await page.WaitForSelectorAsync(".errors li");
        }
        await page.FillAsync("#Email", "flynn@encom.test");
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("locked");
        Assert.EndsWith("/login", new Uri(page.Url).AbsolutePath);
        await context.CloseAsync();
    }
}
