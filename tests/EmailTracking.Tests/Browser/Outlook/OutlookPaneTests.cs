using System.Diagnostics;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Playwright;
using MimeKit;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Browser.Outlook;

/// <summary>
/// The Outlook add-in's pages (/addin/…) in Chromium against the real server process, with the Office.js double
/// (office-double.js) served in place of Microsoft's office.js. The on-send handler registers the message and leaves
/// the tracked body and the token header on the item; a server that is down or silent lets the mail go untracked and
/// says so; the compose pane inserts a tracked document link at the cursor; the read pane shows each recipient's
/// activity and follows the live feed. Screenshots of both panes are saved.
/// </summary>
/// <remarks>
/// Auth: the double's Office.auth.getAccessToken answers a Microsoft access token minted by the local test issuer
/// (<see cref="EmailTracking.Tests.Outlook.TestIssuer"/>) that the server is configured to trust — validation stays on —
/// and NAA is reported unsupported, so the panes take the Office SSO path.
/// </remarks>
[Collection(RealServerCollection.Name)]
public sealed class OutlookPaneTests(ITestOutputHelper output) : IAsyncLifetime
{
    const string OfficeJs = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js";
    const string Sender = "flynn@encom.test";
    const string Password = "Correct-Horse-9";

    readonly string dir = Directory.CreateTempSubdirectory("et-outlook-").FullName;
    ServerProcess server = null!;
    IBrowser browser = null!;
    EmailTracking.Tests.Outlook.TestIssuer issuer = null!;
    readonly List<string> problems = [];

    string Db => Path.Combine(dir, "outlook.db");
    Dictionary<string, string> Settings
    {
        get
        {
            var settings = new Dictionary<string, string>
            {
                ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={Db}",
                // The read-pane test's scanner clicks its second link once the pane showed the first (see there).
                ["Tracking__Classifier__ClickBurstWindow"] = "00:00:05",
                // How soon an open stream notices that its reader may no longer read it.
                ["Feed__RecheckInterval"] = "00:00:01",
                // Everything here comes from this machine: a recipient's mail client says it is elsewhere (X-Forwarded-For),
                // or its opens would come from the pane's own address, which the pane takes for the sender's Outlook.
                ["Server__KnownProxies"] = "127.0.0.1,::1",
            };
            foreach (var (k, v) in issuer.Settings()) settings[k.Replace(":", "__", StringComparison.Ordinal)] = v;
            return settings;
        }
    }

    /// <summary>A recipient's Outlook, on a network of its own (see Server__KnownProxies above).</summary>
    static HttpClient Recipient(HttpClientHandler handler)
    {
        var reader = new HttpClient(handler);
        reader.DefaultRequestHeaders.UserAgent.ParseAdd("Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)");
        reader.DefaultRequestHeaders.Add("X-Forwarded-For", "198.51.100.20");
        return reader;
    }

    static readonly string DoubleSource = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "tests", "EmailTracking.Tests", "Browser", "Outlook", "office-double.js"));

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(15_000);
        issuer = await EmailTracking.Tests.Outlook.TestIssuer.StartAsync();
        server = await ServerProcess.StartAsync(dir, Settings, migrated: true);
        browser = await Chromium.SharedAsync();
    }

    public async Task DisposeAsync()
    {
        try
        {
            await Chromium.ReleaseAsync(browser);
        }
        finally
        {
            await server.DisposeAsync();
        }
        await issuer.DisposeAsync();
        try { Directory.Delete(dir, true); } catch (IOException) { }
    }

    AppDbContext OpenDb()
    {
        var b = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(b, DatabaseProvider.Sqlite, $"Data Source={Db}");
        return new AppDbContext(b.Options);
    }

    /// <summary>
    /// A user made as `et users add` makes one (with their API token, for the test's own calls) and the Microsoft access token
    /// the double's getAccessToken answers for them.
    /// </summary>
    async Task<(string Token, HttpClient Api)> UserAsync(string plan = "team", string email = Sender)
    {
        var token = await ServerProcess.AddUserAsync(Settings, email, "Encom " + plan, plan, Password);
        var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return (issuer.MintAccessToken(email), api);
    }

    /// <summary>
    /// A task-pane-sized page of the add-in (or, given a whole URL, that page), with the double in place of
    /// office.js configured as given. Uncaught
    /// errors, console errors and CSP violations are collected in <see cref="problems"/>.
    /// </summary>
    async Task<IPage> AddinPageAsync(string path, object doubleConfig, int width = 360, int height = 720, string? locale = null, string? timezone = null)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height }, Locale = locale, TimezoneId = timezone,
        });
        await context.RouteAsync(OfficeJs, route => route.FulfillAsync(new RouteFulfillOptions
        {
            Status = 200, ContentType = "text/javascript", Body = DoubleSource,
        }));
        await context.AddInitScriptAsync($"window.__officeDoubleConfig = {JsonSerializer.Serialize(doubleConfig)};");
        await context.AddInitScriptAsync("document.addEventListener('securitypolicyviolation', e => " +
                                         "console.error('Content Security Policy violation: ' + e.violatedDirective + ' ' + e.blockedURI), true);");
        var page = await context.NewPageAsync();
        page.Console += (_, m) =>
        {
            if (m.Type == "error" && !m.Location.Contains("/favicon.ico", StringComparison.Ordinal)) lock (problems) problems.Add(m.Text + " @ " + m.Location);
        };
        page.PageError += (_, e) => { lock (problems) problems.Add("uncaught: " + e); };
        await page.GotoAsync(path.StartsWith('/') ? server.BaseUrl + path : path);
        return page;
    }

    void NoProblems()
    {
        lock (problems) Assert.True(problems.Count == 0, "errors in the page:\n" + string.Join("\n", problems));
    }

    static object Composing(string token, string body, Dictionary<string, string>? sessionData = null) => new
    {
        mode = "compose",
        userEmail = Sender,
        userName = "Kevin Flynn",
        accessToken = token,
        requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" }, // no NestedAppAuth: the SSO path
        item = new
        {
            subject = "Grid proposal",
            to = new[] { new { displayName = "Alan Bradley", emailAddress = "alan@encom.test" } },
            cc = new[] { new { displayName = "Lora Baines", emailAddress = "lora@encom.test" } },
            bcc = Array.Empty<object>(),
            from = new { displayName = "Kevin Flynn", emailAddress = Sender },
            bodyType = "html",
            body,
            sessionData = sessionData ?? new Dictionary<string, string>(),
        },
    };

    static async Task<JsonElement> Calls(IPage page) => await page.EvaluateAsync<JsonElement>("() => window.__officeDouble.calls");
    static async Task<JsonElement> State(IPage page) => await page.EvaluateAsync<JsonElement>("() => window.__officeDouble.state()");

    static string[] Apis(JsonElement calls) => [.. calls.EnumerateArray().Select(c => c.GetProperty("api").GetString()!)];

    /// <summary>Outlook pressing Send on the on-send page: the associated handler runs; answers what it completed with.</summary>
    static async Task<JsonElement> SendAsync(IPage page)
    {
        await page.WaitForFunctionAsync("() => window.__officeDouble && window.__officeDouble.associated().includes('onMessageSendHandler')");
        return await page.EvaluateAsync<JsonElement>("() => window.__officeDouble.send('onMessageSendHandler', 60000)");
    }

    [Fact]
    public async Task On_send_the_message_is_registered_its_tracked_body_set_and_the_token_stamped_before_the_event_completes()
    {
        var (token, _) = await UserAsync();
        const string body = "<p>Hello Alan, see <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/arcade\">the arcade</a>.</p>";
        var page = await AddinPageAsync("/addin/launchevent.html", Composing(token, body, new() { ["emailtracking.track"] = "on" }));

        var pressed = DateTimeOffset.UtcNow;
        var completed = await SendAsync(page);
        Assert.True(completed.GetProperty("allowEvent").GetBoolean());

        var state = await State(page);
        var html = state.GetProperty("body").GetString()!;
        var stamped = state.GetProperty("headers").GetProperty("x-et-token").GetString()!;
        output.WriteLine(html);

        // The copy the server registered: its pixel is in the body, its token in the header, its links replaced ours.
        await using var db = OpenDb();
        var message = await db.Messages.Include(m => m.Copies).ThenInclude(c => c.Links).Include(m => m.Recipients).SingleAsync();
        var copy = message.Copies.Single();
        Assert.Equal(MessageSource.OutlookAddin, message.Source);
        Assert.False(message.PerRecipient);
        Assert.Equal("Grid proposal", message.Subject);
        Assert.Equal(Sender, message.FromAddress);
        // Sent as Send was pressed: the timing rules measure from it (the browser and the server share this machine's clock).
        Assert.NotNull(message.SentAt);
        Assert.InRange(message.SentAt.Value, pressed.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.Equal(["alan@encom.test", "lora@encom.test"], message.Recipients.Select(r => r.Address).Order());
        Assert.Equal(copy.PixelToken, stamped);
        Assert.Contains($"{server.BaseUrl}/o/{copy.PixelToken}.gif", html);
        var hrefs = Regex.Matches(html, "href=\"([^\"]+)\"").Select(m => m.Groups[1].Value).ToList();
        Assert.DoesNotContain("https://encom.test/grid", hrefs);
        Assert.DoesNotContain("https://encom.test/arcade", hrefs);
        foreach (var link in copy.Links.Where(l => !l.IsHoneypot)) Assert.Contains($"{server.BaseUrl}/c/{link.Token}", hrefs);
        Assert.Equal(["https://encom.test/arcade", "https://encom.test/grid"], copy.Links.Where(l => !l.IsHoneypot).Select(l => l.Url).Order());

        // What Office was asked, in order: the body set as HTML and the header, then the event completed, last.
        var calls = await Calls(page);
        var apis = Apis(calls);
        var setBody = calls.EnumerateArray().Single(c => c.GetProperty("api").GetString() == "body.setAsync");
        Assert.Equal("html", setBody.GetProperty("args")[1].GetProperty("coercionType").GetString());
        Assert.Equal("event.completed", apis[^1]);
        Assert.True(Array.IndexOf(apis, "body.setAsync") < Array.IndexOf(apis, "event.completed"));
        Assert.True(Array.IndexOf(apis, "internetHeaders.setAsync") < Array.IndexOf(apis, "event.completed"));
        Assert.DoesNotContain("notificationMessages.addAsync", apis);
        var getToken = calls.EnumerateArray().First(c => c.GetProperty("api").GetString() == "auth.getAccessToken");
        Assert.True(getToken.GetProperty("args")[0].GetProperty("allowSignInPrompt").GetBoolean());
        Assert.Contains(calls.EnumerateArray(), c => c.GetProperty("api").GetString() == "requirements.isSetSupported" &&
                                                     c.GetProperty("args")[0].GetString() == "NestedAppAuth");

        // The pixel in the body is live: fetching it records an open on this message.
        using var anonymous = new HttpClient();
        var gif = await anonymous.GetAsync($"{server.BaseUrl}/o/{stamped}.gif");
        Assert.Equal("image/gif", gif.Content.Headers.ContentType?.MediaType);
        db.ChangeTracker.Clear();
        Assert.Single(await db.Events.Where(e => e.TrackedMessageId == message.Id && e.Kind == EventKind.Open).ToListAsync());
        NoProblems();
    }

    [Fact]
    public async Task Send_pressed_again_after_another_add_in_stopped_the_first_registers_nothing_new_and_keeps_one_pixel()
    {
        var (token, _) = await UserAsync();
        const string body = "<p>Hello Alan, see <a href=\"https://encom.test/grid\">the grid</a>.</p>";
        var page = await AddinPageAsync("/addin/launchevent.html", Composing(token, body, new() { ["emailtracking.track"] = "on" }));
        Assert.True((await SendAsync(page)).GetProperty("allowEvent").GetBoolean());
        var first = await State(page);
        await using var db = OpenDb();
        var registered = await db.Messages.AsNoTracking().SingleAsync();

        // Another add-in's on-send check blocked that Send: Outlook keeps the item as our handler left it, tracked body
        // and header, and the user presses Send again a while later.
        await Task.Delay(1500);
        var pressed = DateTimeOffset.UtcNow;
        Assert.True((await SendAsync(page)).GetProperty("allowEvent").GetBoolean());

        var second = await State(page);
        var html = second.GetProperty("body").GetString()!;
        Assert.Equal(first.GetProperty("body").GetString(), html);
        Assert.Single(Regex.Matches(html, "/o/[A-Za-z0-9_-]{24}\\.gif"));
        Assert.Equal(first.GetProperty("headers").GetProperty("x-et-token").GetString(), second.GetProperty("headers").GetProperty("x-et-token").GetString());
        var message = await db.Messages.AsNoTracking().Include(m => m.Copies).SingleAsync();
        Assert.Equal(registered.Id, message.Id);
        Assert.Contains($"/o/{message.Copies.Single().PixelToken}.gif", html);
        // It leaves now: the timing rules measure from the second Send.
        Assert.InRange(message.SentAt!.Value, pressed.AddSeconds(-1), DateTimeOffset.UtcNow.AddSeconds(1));
        Assert.True(message.SentAt > registered.SentAt);
        Assert.Single(Apis(await Calls(page)), a => a == "body.setAsync");
        Assert.False(second.GetProperty("notifications").TryGetProperty("emailtracking-untracked", out _));
        NoProblems();
    }

    [Fact]
    public async Task When_the_server_is_down_the_mail_goes_untracked_and_the_user_is_told()
    {
        var (token, _) = await UserAsync();
        const string body = "<p>Hello Alan</p>";
        var page = await AddinPageAsync("/addin/launchevent.html", Composing(token, body, new() { ["emailtracking.track"] = "on" }));
        await page.WaitForFunctionAsync("() => window.__officeDouble && window.__officeDouble.associated().length > 0");
        server.Kill();

        var clock = Stopwatch.StartNew();
        var completed = await SendAsync(page);
        Assert.True(completed.GetProperty("allowEvent").GetBoolean());
        // Well under a send that hangs (the server is gone: the request fails at once), with room for a busy machine.
        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(15), $"took {clock.Elapsed}");

        var state = await State(page);
        Assert.Equal(body, state.GetProperty("body").GetString());
        Assert.False(state.GetProperty("headers").TryGetProperty("x-et-token", out _));
        var notice = state.GetProperty("notifications").GetProperty("emailtracking-untracked");
        Assert.Equal("errorMessage", notice.GetProperty("type").GetString());
        Assert.Contains("untracked", notice.GetProperty("message").GetString());
        var apis = Apis(await Calls(page));
        Assert.Equal("event.completed", apis[^1]);
        Assert.True(Array.IndexOf(apis, "notificationMessages.addAsync") < Array.IndexOf(apis, "event.completed"));
    }

    [Fact]
    public async Task When_the_server_does_not_answer_in_five_seconds_the_mail_goes_untracked_and_the_user_is_told()
    {
        var (token, _) = await UserAsync();
        const string body = "<p>Hello Alan</p>";
        var page = await AddinPageAsync("/addin/launchevent.html", Composing(token, body, new() { ["emailtracking.track"] = "on" }));
        // The server hangs on the registration: the request is held until the test ends.
        var held = new TaskCompletionSource();
        await page.Context.RouteAsync(new Regex("/api/messages$"), async route =>
        {
            await held.Task;
            try { await route.AbortAsync(); } catch (PlaywrightException) { }
        });

        var clock = Stopwatch.StartNew();
        var completed = await SendAsync(page);
        var took = clock.Elapsed;
        held.TrySetResult();
        output.WriteLine($"completed after {took.TotalMilliseconds:F0} ms");
        Assert.True(completed.GetProperty("allowEvent").GetBoolean());
        // The pane's own 5 s deadline, not the held request (which never ends before the test does), with room for a
        // busy machine's timers and round trips.
        Assert.InRange(took.TotalSeconds, 4.5, 15);
        var state = await State(page);
        Assert.Equal(body, state.GetProperty("body").GetString());
        Assert.Contains("did not answer in time", state.GetProperty("notifications").GetProperty("emailtracking-untracked").GetProperty("message").GetString());
        await using var db = OpenDb();
        Assert.Equal(0, await db.Messages.CountAsync());
    }

    [Fact]
    public async Task The_compose_pane_keeps_the_switch_per_item_shows_recipients_and_plan_and_inserts_tracked_content_at_the_cursor()
    {
        var (token, api) = await UserAsync();
        var upload = await api.UploadAsync(await Documents.PdfAsync(3), "Proposal.pdf");
        Assert.True(upload.IsSuccessStatusCode, await upload.Content.ReadAsStringAsync());
        const string body = "<p>Hello Alan,</p><p>Kevin</p>";
        var page = await AddinPageAsync("/addin/compose.html", Composing(token, body));

        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#track")).ToBeCheckedAsync(); // the user's default, as the server says
        await Assertions.Expect(page.Locator("#recipients")).ToContainTextAsync("\"Alan Bradley\" <alan@encom.test>");
        await Assertions.Expect(page.Locator("#recipients")).ToContainTextAsync("\"Lora Baines\" <lora@encom.test>");
        await Assertions.Expect(page.Locator("#plan")).ToContainTextAsync("Team plan");
        await Assertions.Expect(page.Locator("#plan")).ToContainTextAsync("500 recipients");
        var row = page.Locator("#library li", new PageLocatorOptions { HasText = "Proposal.pdf" });
        await Assertions.Expect(row).ToContainTextAsync("3 pages");
        await Chromium.ShotAsync(page, "outlook-01-compose-pane");

        // The switch: off is kept in the item's session data, where the on-send handler reads it.
        await page.Locator("#track").UncheckAsync();
        await page.WaitForFunctionAsync("() => window.__officeDouble.state().sessionData['emailtracking.track'] === 'off'");
        await page.Locator("#track").CheckAsync();
        await page.WaitForFunctionAsync("() => window.__officeDouble.state().sessionData['emailtracking.track'] === 'on'");

        // Insert: a new share link from the server, as HTML, at the cursor (the body never had focus: the top).
        await row.GetByRole(AriaRole.Button, new() { Name = "Insert" }).ClickAsync();
        await Assertions.Expect(page.Locator("#library-note")).ToContainTextAsync("Inserted a tracked link to Proposal.pdf");
        var insert = (await Calls(page)).EnumerateArray().Single(c => c.GetProperty("api").GetString() == "body.setSelectedDataAsync");
        var inserted = insert.GetProperty("args")[0].GetString()!;
        Assert.Equal("html", insert.GetProperty("args")[1].GetProperty("coercionType").GetString());
        var link = Assert.Single(ContentTestApi.DocumentLinks(inserted));
        Assert.StartsWith($"{server.BaseUrl}/d/", link);
        Assert.Contains("Proposal.pdf (3 pages)", inserted);
        await using (var db = OpenDb())
        {
            var share = await db.ContentLinks.SingleAsync();
            Assert.Equal(ContentTestApi.Token(link), share.Token);
        }
        Assert.Equal(inserted + body, (await State(page)).GetProperty("body").GetString());

        // Recipients added in Outlook show up (RecipientsChanged).
        await page.EvaluateAsync("() => window.__officeDouble.setRecipients('bcc', [{ displayName: 'Walter Gibbs', emailAddress: 'walter@encom.test' }])");
        await Assertions.Expect(page.Locator("#recipients")).ToContainTextAsync("walter@encom.test");
        await Chromium.ShotAsync(page, "outlook-02-compose-pane-inserted");
        NoProblems();
    }

    [Fact]
    public async Task Outsiders_text_in_the_panes_cannot_turn_round_their_words_nor_show_an_address_as_another()
    {
        // A recipient's name, a document's name, a reply's From and the answered email's subject, each with a U+202E
        // RIGHT-TO-LEFT OVERRIDE: written to the database and the double, as what the API accepts is not tested here.
        var (token, api) = await UserAsync();
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Sender, subject = "Grid proposal", perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1), source = "outlook-addin",
            to = new[] { "alan@encom.test" }, html = "<p>Hello Alan</p>",
        });
        Assert.True(res.IsSuccessStatusCode, await res.Content.ReadAsStringAsync());
        const string replyId = "CAF=rlo-reply@mail.target.test";
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync();
            var message = await db.Messages.SingleAsync();
            message.Subject = "Grid proposal \u202Etsil ecirp";
            db.Contents.Add(new ContentItem
            {
                TeamId = user.TeamId, UserId = user.Id, Name = "Price list \u202Efdp.exe", OriginalSha256 = new string('0', 64),
                PdfSha256 = new string('0', 64), PageCount = 2, CreatedAt = DateTimeOffset.UtcNow,
            });
            db.InboundMessages.Add(new InboundMessage
            {
                TeamId = user.TeamId, UserId = user.Id, ConnectionId = Guid.NewGuid(), ProviderId = "graph-rlo-reply", InternetMessageId = replyId,
                FromAddress = "\u202Emoc.knab-terces@target.test", Subject = "RE: Grid proposal", ReceivedAt = DateTimeOffset.UtcNow, Kind = EventKind.Reply,
                Reason = "reply", TrackedMessageId = message.Id, CopyId = (await db.Copies.SingleAsync()).Id, HandledAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }

        // The compose pane: "Dana <U+202E>tset.live" must not show her address as "evil.test"; "(2 pages)" stays as it is.
        var page = await AddinPageAsync("/addin/compose.html", Composing(token, "<p>Hi</p>"), width: 340);
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await page.EvaluateAsync("() => window.__officeDouble.setRecipients('to', [{ displayName: 'Dana \\u202Etset.live', emailAddress: 'dana@target.test' }])");
        await Assertions.Expect(page.Locator("#recipients li").First).ToContainTextAsync("dana@target.test");
        await Assertions.Expect(page.Locator("#library li")).ToHaveCountAsync(1);
        await BidiLayout.InOrderAsync(page, "#recipients li");
        await BidiLayout.InOrderAsync(page, "#library li");
        await Assertions.Expect(page.Locator("#recipients li").First.Locator(".exact")).ToHaveTextAsync("dana@target.test");
        await Chromium.ShotAsync(page, "outlook-bidi-01-compose-pane");
        NoProblems();

        // The read pane on the reply: who answered shows exactly, and the subject's quotes stay around it.
        page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "RE: Grid proposal", internetMessageId = $"<{replyId}>", conversationId = "AAQkAGI2TG94AAA=",
                allHeaders = $"Subject: RE: Grid proposal\r\nMessage-ID: <{replyId}>\r\n",
                from = new { displayName = "Bank", emailAddress = "\u202Emoc.knab-terces@target.test" },
            },
        }, width: 340);
        await Assertions.Expect(page.Locator("#reply")).ToBeVisibleAsync();
        await BidiLayout.InOrderAsync(page, "#reply dd");
        await Assertions.Expect(page.Locator("#answered-from")).ToHaveTextAsync("\uFFFDmoc.knab-terces@target.test");
        await Chromium.ShotAsync(page, "outlook-bidi-02-read-pane-reply");
        NoProblems();
    }

    [Fact]
    public async Task On_the_solo_plan_the_compose_pane_says_why_documents_cannot_be_inserted()
    {
        var (token, api) = await UserAsync(plan: "solo");
        // The user's setting: new messages are not tracked unless switched on.
        Assert.True((await api.PutAsJsonAsync("/api/me/settings", new { trackByDefault = false })).IsSuccessStatusCode);
        var page = await AddinPageAsync("/addin/compose.html", Composing(token, "<p>Hi</p>"));
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#track")).Not.ToBeCheckedAsync();
        await Assertions.Expect(page.Locator("#plan")).ToContainTextAsync("Solo plan");
        await Assertions.Expect(page.Locator("#library-note")).ToContainTextAsync("come with the Team plan");
        await Assertions.Expect(page.Locator("#library li")).ToHaveCountAsync(0);
        await Chromium.ShotAsync(page, "outlook-03-compose-pane-solo");
        NoProblems();
    }

    /// <summary>
    /// A mail the user tracked from Outlook to Alan (one copy for everyone), and the read pane open on it in Sent Items
    /// (found by its x-et-token header), at Outlook's narrow width.
    /// </summary>
    async Task<(JsonElement Registered, IPage Pane)> SentItemInReadPaneAsync(HttpClient api, string token, string email, string subject,
        string internetMessageId, string conversationId)
    {
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = email, subject, perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1), source = "outlook-addin",
            to = new[] { "alan@encom.test" }, html = "<p>See the grid</p>",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        var reg = JsonDocument.Parse(text).RootElement;
        var copyToken = Regex.Match(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!, "/o/([^/]+)\\.gif$").Groups[1].Value;
        var page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = email, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject, internetMessageId, conversationId,
                allHeaders = $"Subject: {subject}\r\nX-ET-Token: {copyToken}\r\nMessage-ID: {internetMessageId}\r\n",
                from = new { displayName = "Lora Baines", emailAddress = email },
            },
        }, width: 340);
        return (reg, page);
    }

    [Fact]
    public async Task Long_words_wrap_in_the_panes_at_outlooks_narrow_width()
    {
        // A URL as a subject, a long address and a document's long name: the panes wrap them rather than grow past 340 px.
        var (token, api) = await UserAsync();
        const string subject = "Re: https://docs.example.com/document/d/1aBcDeFgHiJkLmNoPqRsTuVwXyZ0123456789/edit?usp=sharing";
        const string longAddress = "procurement.notifications.department@eu-west.subsidiary-holdings-international.example.com";
        static Task<JsonElement> FitAsync(IPage page) => page.EvaluateAsync<JsonElement>(
            "() => ({ scrollWidth: document.documentElement.scrollWidth, innerWidth: window.innerWidth })");

        var (_, page) = await SentItemInReadPaneAsync(api, token, Sender, subject, "<long-words@encom.test>", "AAQkAGI2TG97AAA=");
        await Assertions.Expect(page.Locator("#subject")).ToHaveTextAsync(subject);
        var fit = await FitAsync(page);
        Assert.True(fit.GetProperty("scrollWidth").GetInt32() <= fit.GetProperty("innerWidth").GetInt32(), $"read pane: {fit}");
        await Chromium.ShotAsync(page, "outlook-long-01-read-pane");
        NoProblems();

        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync();
            db.Contents.Add(new ContentItem
            {
                TeamId = user.TeamId, UserId = user.Id, Name = "Quarterly-pricing-and-renewal-terms-for-the-EMEA-region-" + new string('x', 80) + ".pdf",
                OriginalSha256 = new string('0', 64), PdfSha256 = new string('0', 64), PageCount = 2, CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        }
        page = await AddinPageAsync("/addin/compose.html", Composing(token, "<p>Hi</p>"), width: 340);
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await page.EvaluateAsync($"() => window.__officeDouble.setRecipients('to', [{{ displayName: '{new string('W', 60)}', emailAddress: '{longAddress}' }}])");
        await Assertions.Expect(page.Locator("#recipients")).ToContainTextAsync(longAddress);
        await Assertions.Expect(page.Locator("#library li")).ToHaveCountAsync(1);
        fit = await FitAsync(page);
        Assert.True(fit.GetProperty("scrollWidth").GetInt32() <= fit.GetProperty("innerWidth").GetInt32(), $"compose pane: {fit}");
        // The role and the Insert button stay on the screen beside what wraps.
        foreach (var edge in await page.Locator("#recipients .hint, #library button").EvaluateAllAsync<double[]>("(es) => es.map((e) => e.getBoundingClientRect().right)"))
            Assert.True(edge <= 340, $"{edge}");
        await Chromium.ShotAsync(page, "outlook-long-02-compose-pane");
        NoProblems();
    }

    [Fact]
    public async Task The_read_pane_says_why_live_updates_stopped_when_the_server_ends_its_stream()
    {
        var (token, api) = await UserAsync(email: "lora.stop@encom.test");
        var (_, page) = await SentItemInReadPaneAsync(api, token, "lora.stop@encom.test", "Grid review", "<stop@encom.test>", "AAQkAGI2TG94AAA=");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");
        // An administrator closes the account while the pane is open.
        await using (var db = OpenDb())
        {
            var user = db.Users.Single(u => u.Email == "lora.stop@encom.test");
            user.LockoutEnd = DateTimeOffset.MaxValue;
            await db.SaveChangesAsync();
        }
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "stopped");
        await Assertions.Expect(page.Locator("#live")).ToContainTextAsync("Live updates stopped: The account is locked.");
    }

    /// <summary>
    /// A feed the server refuses for good (a 4xx the stream does not retry: the tenant no longer allowed, a cursor the
    /// database does not have) stops following: the pane says so and why, rather than "reconnecting" for ever.
    /// </summary>
    [Fact]
    public async Task The_read_pane_says_why_live_updates_stopped_when_the_server_refuses_its_stream()
    {
        var (token, api) = await UserAsync(email: "lora.refused@encom.test");
        var (_, page) = await SentItemInReadPaneAsync(api, token, "lora.refused@encom.test", "Grid refusal", "<refused@encom.test>", "AAQkAGI2TG9zAAA=");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");
        var feeds = 0;
        await page.RouteAsync("**/api/feed", route =>
        {
            Interlocked.Increment(ref feeds);
            return route.FulfillAsync(new RouteFulfillOptions
            {
                Status = 403, ContentType = "application/problem+json",
                Body = """{"title":"This Microsoft tenant may not sign in here.","status":403,"reason":"tenant-not-allowed"}""",
            });
        });
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "stopped");
        await Assertions.Expect(page.Locator("#live")).ToContainTextAsync("Live updates stopped: This Microsoft tenant may not sign in here.");
        await Assertions.Expect(page.Locator("#live")).Not.ToContainTextAsync("reconnecting");
        // The counts loaded before the refusal stay.
        await Assertions.Expect(page.Locator("#subject")).ToHaveTextAsync("Grid refusal");
        Assert.Equal(1, Volatile.Read(ref feeds));
    }

    [Fact]
    public async Task An_open_between_the_panes_first_load_and_the_start_of_its_stream_is_shown()
    {
        // The stream starts from what happens next: what happened after the pane's first load and before the stream
        // began was in neither, and the pane showed it only once something else happened.
        var (token, api) = await UserAsync(email: "lora.gap@encom.test");
        var (reg, page) = await SentItemInReadPaneAsync(api, token, "lora.gap@encom.test", "Grid gap", "<gap@encom.test>", "AAQkAGI2TG95AAA=");
        var messageId = reg.GetProperty("id").GetGuid();
        var pixel = reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!;
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");

        // The pane again; its stream's request is held until the recipient has opened the mail.
        var held = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        await page.RouteAsync("**/api/feed", async route =>
        {
            held.TrySetResult();
            await release.Task;
            await route.ContinueAsync();
        });
        await page.ReloadAsync();
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        var everyone = page.Locator("tr[data-recipient='Everyone']");
        await Assertions.Expect(everyone.Locator("[data-count=opens]")).ToHaveTextAsync("0");
        await held.Task.WaitAsync(TimeSpan.FromSeconds(15));
        using var reader = Recipient(new HttpClientHandler());
        await reader.GetAsync(pixel);
        for (var waited = 0; waited < 100; waited++)
        {
            await using var db = OpenDb();
            if (await db.Events.AnyAsync(e => e.TrackedMessageId == messageId)) break;
            await Task.Delay(100);
        }
        release.TrySetResult();

        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");
        await Assertions.Expect(everyone.Locator("[data-count=opens]")).ToHaveTextAsync("1");
        NoProblems();
    }

    [Fact]
    public async Task The_read_pane_shows_each_recipients_activity_and_updates_live_when_the_pixel_is_fetched()
    {
        var (token, api) = await UserAsync();
        // A message the add-in sent an hour ago (one shared copy, as the on-send handler registers it).
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Sender, subject = "Grid proposal", perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1), source = "outlook-addin",
            to = new[] { "alan@encom.test" }, cc = new[] { "lora@encom.test" },
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/pricing\">pricing</a></p>",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        var copy = JsonDocument.Parse(text).RootElement.GetProperty("copies")[0];
        var pixel = copy.GetProperty("pixelUrl").GetString()!;
        var click = copy.GetProperty("links")[0].GetProperty("trackedUrl").GetString()!;
        var otherClick = copy.GetProperty("links")[1].GetProperty("trackedUrl").GetString()!;
        var copyToken = Regex.Match(pixel, "/o/([^/]+)\\.gif$").Groups[1].Value;

        using var reader = Recipient(new HttpClientHandler { AllowAutoRedirect = false });
        await reader.GetAsync(pixel); // one open before the pane is opened

        var headers = "Received: from mail.encom.test by mx.encom.test;\r\n\tSat, 28 Nov 2026 10:00:00 +0000\r\n" +
                      "Subject: Grid proposal\r\nX-ET-Token:\r\n " + copyToken + "\r\nMessage-ID: <abc@encom.test>\r\n";
        var page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "Grid proposal", internetMessageId = "<abc@encom.test>", conversationId = "AAQkAGI2TG93AAA=", allHeaders = headers,
                from = new { displayName = "Kevin Flynn", emailAddress = Sender },
            },
        }, width: 340);
        var requested = new List<string>();
        page.Request += (_, r) => { lock (requested) requested.Add(r.Url); };
        await page.ReloadAsync(); // the same pane again, with its requests watched from the start

        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#subject")).ToHaveTextAsync("Grid proposal");
        await Assertions.Expect(page.Locator("tr[data-recipient='alan@encom.test']")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("tr[data-recipient='lora@encom.test']")).ToBeVisibleAsync();
        // One shared copy: whose open it was is unknown, so the per-person cells say nothing rather than 0.
        await Assertions.Expect(page.Locator("tr[data-recipient='alan@encom.test'] [data-count=opens]")).ToHaveTextAsync("·");
        var everyone = page.Locator("tr[data-recipient='Everyone']");
        await Assertions.Expect(everyone.Locator("[data-count=opens]")).ToHaveTextAsync("1");
        await Assertions.Expect(everyone.Locator("[data-count=clicks]")).ToHaveTextAsync("0");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-live", "on");

        Assert.Contains("getAllInternetHeadersAsync", Apis(await Calls(page)));

        // Live: a click and an open arrive on the feed and the pane refreshes by itself.
        await reader.GetAsync(click);
        await reader.GetAsync(pixel);
        await Assertions.Expect(everyone.Locator("[data-count=clicks]")).ToHaveTextAsync("1");
        await Assertions.Expect(everyone.Locator("[data-count=opens]")).ToHaveTextAsync("2");
        // Outlook's pane is narrow (340 px here): the table stacks, so nothing waits behind a sideways scroll, every
        // figure of Everyone is on screen, and the per-person dots of a shared copy are left out.
        var fit = await page.EvaluateAsync<JsonElement>("""
            () => {
              const box = document.querySelector(".scroll");
              const cells = Array.from(document.querySelectorAll("tr[data-recipient='Everyone'] td")).map((td) => td.getBoundingClientRect());
              const dots = Array.from(document.querySelectorAll("td.unknown")).filter((td) => td.getBoundingClientRect().width > 0);
              return { hidden: box.scrollWidth > box.clientWidth + 1, page: document.documentElement.scrollWidth,
                       shown: cells.filter((r) => r.width > 0).length, right: Math.max(...cells.map((r) => r.right)), dots: dots.length };
            }
            """);
        Assert.False(fit.GetProperty("hidden").GetBoolean(), fit.ToString());
        Assert.True(fit.GetProperty("page").GetInt32() <= 340 && fit.GetProperty("right").GetDouble() <= 340, fit.ToString());
        Assert.Equal(8, fit.GetProperty("shown").GetInt32());
        Assert.Equal(0, fit.GetProperty("dots").GetInt32());
        await Chromium.ShotAsync(page, "outlook-04-read-pane");

        // Later (past the burst window, 5 s here) a scanner follows the first link, which the pane counts as a person's
        // click, then the other link within the window: that click is taken back and the pane goes back to one click.
        // The window is wider than the default second so that the pane's live update fits in it on a busy machine.
        await Task.Delay(5500);
        await reader.GetAsync(click);
        await Assertions.Expect(everyone.Locator("[data-count=clicks]")).ToHaveTextAsync("2");
        await reader.GetAsync(otherClick);
        await Assertions.Expect(everyone.Locator("[data-count=clicks]")).ToHaveTextAsync("1");
        NoProblems();

        lock (requested)
        {
            Assert.Contains(requested, u => u.Contains("/api/outlook/item?", StringComparison.Ordinal) &&
                                            u.Contains("token=" + copyToken, StringComparison.Ordinal) &&
                                            u.Contains("internetMessageId=%3Cabc%40encom.test%3E", StringComparison.Ordinal) &&
                                            u.Contains("conversationId=AAQkAGI2TG93AAA%3D", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_sent_email_whose_header_outlook_dropped_is_found_by_the_pixel_in_its_body_and_an_answer_quoting_it_is_not()
    {
        var (token, api) = await UserAsync();
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Sender, subject = "Grid proposal", perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1), source = "outlook-addin",
            to = new[] { "alan@encom.test" }, html = "<p>Hello Alan</p>",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        var copy = JsonDocument.Parse(text).RootElement.GetProperty("copies")[0];
        var body = copy.GetProperty("html").GetString()!;
        const string outlookId = "<DM6PR11MB0002.grid@DM6PR11MB0002.namprd11.prod.outlook.com>";
        object Pane(string subject, string messageId, string fromName, string from, string html) => new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject, internetMessageId = messageId, allHeaders = $"Subject: {subject}\r\nMessage-ID: {messageId}\r\n", body = html,
                from = new { displayName = fromName, emailAddress = from },
            },
        };
        var pixelToken = copy.GetProperty("token").GetString()!;
        string? Recorded()
        {
            using var db = OpenDb();
            return db.Copies.Single(c => c.PixelToken == pixelToken).SentMessageIdHeader;
        }

        // Alan's answer quotes the email, pixel and all: it is not the tracked email, and its id is not recorded as its.
        var page = await AddinPageAsync("/addin/read.html", Pane("RE: Grid proposal", "<CAF=grid-answer@mail.encom.test>", "Alan Bradley", "alan@encom.test",
            "<p>Sounds good.</p><blockquote>" + body + "</blockquote>"), width: 480);
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#none")).ToBeVisibleAsync();
        Assert.Contains("body.getAsync", Apis(await Calls(page)));
        Assert.Null(Recorded());

        // The sent email itself, in Sent Items, without the x-et-token header: found by its pixel, and its ids recorded.
        page = await AddinPageAsync("/addin/read.html", Pane("Grid proposal", outlookId, "Kevin Flynn", Sender, body), width: 480);
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#sent")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#related")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("tr[data-recipient='alan@encom.test']")).ToBeVisibleAsync();
        Assert.Equal(outlookId.Trim('<', '>'), Recorded());
        NoProblems();
    }

    [Fact]
    public async Task The_read_pane_on_a_received_reply_says_which_tracked_email_it_answered_when_it_was_sent_and_who_answered()
    {
        var (token, api) = await UserAsync();
        var sentAt = new DateTimeOffset(2026, 11, 27, 9, 30, 0, TimeSpan.Zero);
        var res = await api.PostAsJsonAsync("/api/messages", new
        {
            from = Sender, subject = "Grid proposal", perRecipient = false, sentAt, source = "outlook-addin",
            to = new[] { "alan@encom.test" }, cc = new[] { "lora@encom.test" }, html = "<p>Hello Alan</p>",
        });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        var registered = JsonDocument.Parse(text).RootElement;
        var messageId = registered.GetProperty("id").GetGuid();
        var copyToken = registered.GetProperty("copies")[0].GetProperty("token").GetString()!;

        // Outlook gave the mail its own Message-ID at send; the sender opening it in Sent Items records it (the read pane's lookup).
        const string outlookId = "<DM6PR11MB0001.grid@DM6PR11MB0001.namprd11.prod.outlook.com>";
        const string Conversation = "AAQkAGI2TG93AAA=";
        using (var pane = new HttpClient { BaseAddress = new Uri(server.BaseUrl) })
        {
            pane.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            var seen = await pane.GetAsync($"/api/outlook/item?token={copyToken}&internetMessageId={Uri.EscapeDataString(outlookId)}" +
                                           $"&conversationId={Uri.EscapeDataString(Conversation)}&from={Uri.EscapeDataString(Sender)}");
            Assert.True(seen.IsSuccessStatusCode, await seen.Content.ReadAsStringAsync());
        }

        // Alan answers it; the mailbox connector hands the answer to the inbound pipeline, which matches it by In-Reply-To.
        const string replyId = "CAF=grid-reply-1@mail.encom.test";
        var reply = new MimeMessage();
        reply.From.Add(new MailboxAddress("Alan Bradley", "alan@encom.test"));
        reply.To.Add(new MailboxAddress("Kevin Flynn", Sender));
        reply.Subject = "RE: Grid proposal";
        reply.MessageId = replyId;
        reply.InReplyTo = outlookId;
        reply.References.Add(outlookId);
        reply.Date = sentAt.AddHours(2);
        reply.Body = new TextPart("plain") { Text = "Sounds good, let's meet on Monday.\n\n> Hello Alan" };
        // What a connected Graph mailbox hands to the inbound pipeline.
        async Task<InboundResult> HandleInboundAsync(MimeMessage arrived, string providerId)
        {
            await using var db = OpenDb();
            var user = await db.Users.SingleAsync();
            var connection = new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Graph, Address = Sender, ProtectedSecret = "",
            };
            var pipeline = new InboundPipeline(db, new InboundClassifier(), new EmailTracking.Server.Feed.FeedNotifier(), TimeProvider.System,
                NullLogger<InboundPipeline>.Instance);
            return await pipeline.HandleAsync(connection, providerId, arrived, Conversation, arrived.Date, CancellationToken.None);
        }
        var answered = await HandleInboundAsync(reply, "graph-reply-1");
        Assert.Equal((InboundOutcome.Recorded, EventKind.Reply), (answered.Outcome, answered.Kind));
        await using (var db = OpenDb()) Assert.Equal(messageId, (await db.InboundMessages.SingleAsync()).TrackedMessageId);

        var headers = $"From: Alan Bradley <alan@encom.test>\r\nTo: Kevin Flynn <{Sender}>\r\nSubject: RE: Grid proposal\r\n" +
                      $"Message-ID: <{replyId}>\r\nIn-Reply-To: {outlookId}\r\nReferences: {outlookId}\r\n";
        var page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "RE: Grid proposal", internetMessageId = $"<{replyId}>", conversationId = Conversation, allHeaders = headers,
                from = new { displayName = "Alan Bradley", emailAddress = "alan@encom.test" },
            },
        }, width: 480, height: 400, locale: "en-GB", timezone: "UTC");

        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#reply")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#sent")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#none")).ToBeHiddenAsync();
        await Assertions.Expect(page.Locator("#reply-title")).ToHaveTextAsync("A reply to your tracked email");
        await Assertions.Expect(page.Locator("#answered-subject")).ToHaveTextAsync("\"Grid proposal\"");
        await Assertions.Expect(page.Locator("#answered-sent-at")).ToHaveTextAsync("27/11/2026, 09:30:00");
        Assert.Equal(sentAt, DateTimeOffset.Parse(await page.Locator("#answered-sent-at").GetAttributeAsync("datetime") ?? "", System.Globalization.CultureInfo.InvariantCulture));
        await Assertions.Expect(page.Locator("#answered-from-label")).ToHaveTextAsync("Answered by");
        await Assertions.Expect(page.Locator("#answered-from")).ToHaveTextAsync("alan@encom.test");
        await Assertions.Expect(page.Locator("#reply")).ToHaveAttributeAsync("data-verdict", "reply");
        await Chromium.ShotAsync(page, "outlook-05-read-pane-reply");
        NoProblems();

        // Another answer in the conversation that no connected mailbox recorded: found by the conversation only, which
        // the pane says, rather than presenting the email as the tracked one.
        page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "RE: Grid proposal", internetMessageId = "<CAF=grid-reply-2@mail.encom.test>", conversationId = Conversation,
                allHeaders = "Subject: RE: Grid proposal\r\n", from = new { displayName = "Lora Baines", emailAddress = "lora@encom.test" },
            },
        }, width: 480, locale: "en-GB", timezone: "UTC");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#sent")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#related")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#related")).ToContainTextAsync("in the conversation of your tracked email");
        await Assertions.Expect(page.Locator("#subject")).ToHaveTextAsync("Grid proposal");
        await Assertions.Expect(page.Locator("#sent-at")).ToContainTextAsync("Sent 27/11/2026, 09:30:00.");
        // Who replied is known per person even on one shared copy.
        await Assertions.Expect(page.Locator("tr[data-recipient='alan@encom.test'] td").Nth(5)).ToHaveTextAsync("Yes");
        await Assertions.Expect(page.Locator("tr[data-recipient='lora@encom.test'] td").Nth(5)).ToHaveTextAsync("No");
        await Chromium.ShotAsync(page, "outlook-07-read-pane-same-conversation");
        NoProblems();

        // Lora's Outlook sends a read receipt: the pane names it a receipt, from whom, never an answer.
        const string receiptId = "DM6PR11MB0002.read@DM6PR11MB0002.namprd11.prod.outlook.com";
        var receipt = Replies.TestReceipts.Read("Lora Baines <lora@encom.test>", Sender, outlookId, "manual-action/MDN-sent-automatically; displayed", "Grid proposal");
        receipt.MessageId = receiptId;
        var handled = await HandleInboundAsync(receipt, "graph-receipt-1");
        Assert.Equal((InboundOutcome.Recorded, EventKind.Open), (handled.Outcome, handled.Kind));
        page = await AddinPageAsync("/addin/read.html", new
        {
            mode = "read", userEmail = Sender, accessToken = token,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "Read: Grid proposal", internetMessageId = $"<{receiptId}>", conversationId = Conversation,
                allHeaders = $"From: Lora Baines <lora@encom.test>\r\nSubject: Read: Grid proposal\r\nMessage-ID: <{receiptId}>\r\n",
                from = new { displayName = "Lora Baines", emailAddress = "lora@encom.test" },
            },
        }, width: 480, height: 400, locale: "en-GB", timezone: "UTC");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(page.Locator("#reply")).ToBeVisibleAsync();
        await Assertions.Expect(page.Locator("#reply")).ToHaveAttributeAsync("data-verdict", "receipt");
        await Assertions.Expect(page.Locator("#reply-title")).ToHaveTextAsync("A receipt for your tracked email (read or delivered)");
        await Assertions.Expect(page.Locator("#answered-from-label")).ToHaveTextAsync("Sent by");
        await Assertions.Expect(page.Locator("#answered-from")).ToHaveTextAsync("lora@encom.test");
        await Assertions.Expect(page.Locator("#answered-note")).ToHaveTextAsync("");
        NoProblems();
    }

    [Fact]
    public async Task Outlook_on_the_web_may_frame_the_pane_and_another_site_may_not()
    {
        var (token, _) = await UserAsync();
        var page = await AddinPageAsync("about:blank", Composing(token, "<p>Hi</p>"), width: 800);
        // The server as deployed, on a public HTTPS origin: the browser's requests to it reach the real server, whose
        // answers (their CSP included) it gets unchanged. (A public page may not frame a loopback address at all.)
        const string deployed = "https://et.example";
        await page.Context.RouteAsync(deployed + "/**", async route =>
        {
            var answer = await route.FetchAsync(new RouteFetchOptions { Url = server.BaseUrl + new Uri(route.Request.Url).PathAndQuery });
            await route.FulfillAsync(new RouteFulfillOptions { Response = answer });
        });
        // Outlook's page and another site's, each showing the compose pane in a frame, as Outlook on the web does.
        var host = $"<!doctype html><title>host</title><iframe id=\"pane\" src=\"{deployed}/addin/compose.html\" width=\"360\" height=\"600\"></iframe>";
        foreach (var origin in new[] { "https://outlook.office.com", "https://phish.example" })
        {
            await page.Context.RouteAsync(origin + "/mail/", route => route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/html", Body = host }));
        }

        await page.GotoAsync("https://outlook.office.com/mail/");
        var pane = page.FrameLocator("#pane");
        await Assertions.Expect(pane.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(pane.Locator("#plan")).ToContainTextAsync("Team plan");
        NoProblems();

        await page.GotoAsync("https://phish.example/mail/");
        // Chromium refuses to show it: the frame holds its error page, and says why.
        await page.WaitForFunctionAsync("() => document.getElementById('pane') !== null");
        await Assertions.Expect(pane.Locator("#track")).ToHaveCountAsync(0);
        await Assertions.Expect(pane.Locator("body[data-state]")).ToHaveCountAsync(0);
        Assert.DoesNotContain(page.Frames, f => f.Url.StartsWith(deployed, StringComparison.Ordinal));
        lock (problems)
        {
            Assert.Contains(problems, p => p.Contains("violates the following Content Security Policy directive: \"frame-ancestors https://outlook.office.com",
                StringComparison.Ordinal));
            problems.Clear();
        }
    }

    [Fact]
    public async Task The_compose_pane_tells_a_person_whose_microsoft_account_is_not_linked_or_not_accepted_what_to_do()
    {
        await UserAsync(); // past first-run setup; the stranger below is no one's address
        var stranger = issuer.MintAccessToken("sam@elsewhere.test");
        var page = await AddinPageAsync("/addin/compose.html", Composing(stranger, "<p>Hi</p>"));
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-state", "error");
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-problem", "not-linked");
        var status = page.Locator("#status");
        // The person can link it themselves (see the test below), or ask.
        await Assertions.Expect(status).ToContainTextAsync("This Microsoft account is not linked to an EmailTracking user yet.");
        await Assertions.Expect(status).ToContainTextAsync("ask your EmailTracking administrator");
        await Assertions.Expect(page.Locator("#link-open")).ToBeVisibleAsync();
        await Assertions.Expect(status).ToContainTextAsync("Mail you send now goes untracked.");
        await Assertions.Expect(status).Not.ToContainTextAsync("Could not reach");
        await Assertions.Expect(status).Not.ToContainTextAsync("403");
        // The server's own words, for whoever can fix it, one click away.
        await Assertions.Expect(page.Locator("#status-admin")).ToBeHiddenAsync();
        await page.Locator("#status-details summary").ClickAsync();
        await Assertions.Expect(page.Locator("#status-admin")).ToContainTextAsync("sam@elsewhere.test is not one of any EmailTracking user's addresses");
        await Assertions.Expect(page.Locator("#tracking")).ToBeHiddenAsync();
        await Chromium.ShotAsync(page, "outlook-06-compose-pane-not-linked");
        // The 403 is the browser's own console error for the failed request; nothing else went wrong.
        lock (problems)
        {
            Assert.All(problems, p => Assert.Contains("403", p));
            problems.Clear();
        }

        // A token the server does not accept (expired an hour ago): sign in afresh.
        var expired = issuer.MintAccessToken(Sender, new EmailTracking.Tests.Outlook.TestIssuer.TokenSpec { IssuedAt = DateTimeOffset.UtcNow.AddHours(-2) });
        page = await AddinPageAsync("/addin/compose.html", Composing(expired, "<p>Hi</p>"));
        await Assertions.Expect(page.Locator("body")).ToHaveAttributeAsync("data-problem", "sign-in");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("EmailTracking did not accept your Microsoft sign-in");
        await Assertions.Expect(page.Locator("#status")).ToContainTextAsync("Close this pane and open it again");
        await Assertions.Expect(page.Locator("#status")).Not.ToContainTextAsync("Could not reach");
        lock (problems)
        {
            Assert.All(problems, p => Assert.Contains("401", p));
            problems.Clear();
        }
    }

    /// <summary>
    /// A person whose Microsoft sign-in name is not their EmailTracking email links the account themselves: the pane
    /// offers the link page in an Office dialog; signed in to the web app there, they see the Microsoft account named
    /// and confirm; when they close the dialog the pane carries on as their user, without a reload.
    /// </summary>
    [Fact]
    public async Task A_person_links_their_microsoft_account_from_the_compose_pane_and_the_pane_carries_on()
    {
        await ServerProcess.AddUserAsync(Settings, Sender, "Encom team", "team", Password, ownPassword: true);
        const string upn = "kevin.flynn@flynns-arcade.test";
        var token = issuer.MintAccessToken(upn, new EmailTracking.Tests.Outlook.TestIssuer.TokenSpec { Extra = { ["name"] = "Kevin Flynn" } });
        var config = Composing(token, "<p>Hi</p>");
        // Outlook's clients have the Dialog API.
        var withDialogs = JsonSerializer.SerializeToNode(config)!.AsObject();
        withDialogs["requirementSets"] = new System.Text.Json.Nodes.JsonObject { ["Mailbox"] = "1.13", ["IdentityAPI"] = "1.3", ["DialogApi"] = "1.2" };
        var pane = await AddinPageAsync("/addin/compose.html", withDialogs);

        await Assertions.Expect(pane.Locator("body")).ToHaveAttributeAsync("data-link", "offered");
        await Assertions.Expect(pane.Locator("#link h2")).ToHaveTextAsync("Link this Microsoft account to EmailTracking");
        await Assertions.Expect(pane.Locator("#status")).ToContainTextAsync("sign in to EmailTracking in the window that opens and confirm");
        await Assertions.Expect(pane.Locator("#tracking")).ToBeHiddenAsync();
        await Chromium.ShotAsync(pane, "outlook-07-compose-pane-link-prompt");

        await pane.Locator("#link-open").ClickAsync();
        await pane.WaitForFunctionAsync("() => window.__officeDouble.dialogUrl() !== null");
        var linkUrl = await pane.EvaluateAsync<string>("() => window.__officeDouble.dialogUrl()");
        Assert.StartsWith(server.BaseUrl + "/outlook/link?t=", linkUrl);
        await Assertions.Expect(pane.Locator("#link-note")).ToContainTextAsync("confirm the link; then close it");

        // The dialog: the web app asks the person to sign in, then names the Microsoft account.
        var web = await (await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 640, Height = 720 } })).NewPageAsync();
        await web.GotoAsync(linkUrl);
        await web.FillAsync("#Email", Sender);
        await web.FillAsync("#Password", Password);
        await web.ClickAsync("button[type=submit]");
        var card = web.Locator("#outlook-link");
        await Assertions.Expect(card).ToHaveAttributeAsync("data-state", "Ready");
        await Assertions.Expect(web.Locator("[data-field=name]")).ToHaveTextAsync("Kevin Flynn");
        await Assertions.Expect(web.Locator("[data-field=sign-in-name]")).ToHaveTextAsync(upn);
        await Assertions.Expect(web.Locator("[data-field=tenant]")).ToHaveTextAsync(EmailTracking.Tests.Outlook.TestIssuer.TenantId);
        await Assertions.Expect(card).ToContainTextAsync(Sender);
        await Chromium.ShotAsync(web, "outlook-08-link-confirmation");
        await card.Locator("button[type=submit]").ClickAsync();
        await Assertions.Expect(card).ToHaveAttributeAsync("data-state", "Linked");

        // The person closes the dialog: the pane asks again with the same token and goes on as Flynn.
        await pane.EvaluateAsync("() => window.__officeDouble.closeDialog()");
        await Assertions.Expect(pane.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(pane.Locator("body")).ToHaveAttributeAsync("data-link", "linked");
        await Assertions.Expect(pane.Locator("#link")).ToBeHiddenAsync();
        await Assertions.Expect(pane.Locator("#plan")).ToContainTextAsync($"sending as {Sender}");
        await Assertions.Expect(pane.Locator("#tracking")).ToBeVisibleAsync();
        await Assertions.Expect(pane.Locator("#status")).ToBeEmptyAsync();
        // The only errors: the browser's own console lines for the refused requests before the link.
        lock (problems)
        {
            Assert.All(problems, p => Assert.Contains("403", p));
            problems.Clear();
        }
    }
}
