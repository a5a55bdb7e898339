using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using Deque.AxeCore.Commons;
using Deque.AxeCore.Playwright;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Sequences;
using EmailTracking.Tests.Web;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The server with its relay (a local fake, for the forgot-password and invitation mails), sequences' sending off,
/// mailboxes unwatched and sending nowhere (their rows are the test's own), attachments limited to 1 MB, webhooks to this machine allowed, on a real Kestrel port.
/// </summary>
public sealed class AccessibilitySweepApp() : PasswordResetApp(DatabaseProvider.Sqlite)
{
    /// <summary>The local issuer of the Microsoft access tokens the Outlook panes sign in with (validation stays on).</summary>
    public EmailTracking.Tests.Outlook.TestIssuer Issuer { get; private set; } = null!;

    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        // Started with the host, whose settings name it.
        Issuer = EmailTracking.Tests.Outlook.TestIssuer.StartAsync().GetAwaiter().GetResult();
        foreach (var (key, value) in Issuer.Settings()) builder.UseSetting(key, value);
        builder.UseSetting("Sequences:Enabled", "false");
        // A webhook to the test's own receiver, delivered at once.
        builder.UseSetting("Webhooks:AllowHttp", "true");
        builder.UseSetting("Webhooks:AllowPrivateTargets", "true");
        builder.UseSetting("Outbox:Settle", "00:00:00");
        builder.UseSetting("Outbox:PollInterval", "00:00:00.200");
        // Compose's limit on attachments, small enough that a small file crosses it.
        builder.UseSetting("Mailboxes:MaxAttachmentBytes", (1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.ConfigureServices(s =>
        {
            s.AddKeyedScoped<IMailTransport>(MailboxKind.Imap, (_, _) => new RecordingTransport());
            s.AddKeyedScoped<IMailboxWatch, NoWatch>(MailboxKind.Imap);
        });
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Issuer?.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

/// <summary>
/// Every page a person sees, filled with realistic data and in its error states, checked by axe-core (the copy that
/// Deque.AxeCore.Playwright embeds: nothing is fetched) against WCAG 2.0 and 2.1, levels A and AA. One failure lists
/// every violation found on every page: the page, the rule, its impact, the element and what to do.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class AccessibilitySweepTests(ITestOutputHelper output) : InProcessBrowserTest<AccessibilitySweepApp>
{
    static readonly AxeRunOptions Wcag21AA = new()
    {
        RunOnly = new RunOnlyOptions { Type = "tag", Values = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"] },
    };

    readonly List<string> violations = [];
    readonly List<string> checkedPages = [];
    readonly List<string> offline = [];

    // Headless Chromium says "HeadlessChrome", which the classifier takes for a machine: a reader's browser presents
    // itself as the ordinary Chrome of the same engine.
    string DesktopUa => $"Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/{browser.Version.Split('.')[0]}.0.0.0 Safari/537.36";

    const string OfficeJs = "https://appsforoffice.microsoft.com/lib/1/hosted/office.js";
    static readonly string OfficeDouble = File.ReadAllText(Path.Combine(ServerProcess.RepoRoot, "tests", "EmailTracking.Tests", "Browser", "Outlook", "office-double.js"));

    /// <param name="officeDouble">For the Outlook add-in's panes: the Office.js double's configuration (see
    /// OutlookPaneTests), the double being served in place of Microsoft's office.js.</param>
    async Task<IPage> NewPageAsync(int width = 1360, int height = 900, bool phone = false, string? userAgent = null, object? officeDouble = null)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = height }, IsMobile = phone, HasTouch = phone, UserAgent = userAgent,
        });
        if (officeDouble is not null) await context.AddInitScriptAsync($"window.__officeDoubleConfig = {JsonSerializer.Serialize(officeDouble)};");
        // Only this server is reached: axe comes from the package, and a page that loads anything from elsewhere is
        // caught here (and not loaded).
        await context.RouteAsync("**", async route =>
        {
            if (officeDouble is not null && route.Request.Url == OfficeJs)
            {
                await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "text/javascript", Body = OfficeDouble });
            }
            else if (route.Request.Url.StartsWith(baseUrl, StringComparison.Ordinal) || route.Request.Url.StartsWith("data:", StringComparison.Ordinal)
                || route.Request.Url.StartsWith("blob:", StringComparison.Ordinal)) await route.ContinueAsync();
            else
            {
                lock (offline) offline.Add(route.Request.Url);
                await route.AbortAsync();
            }
        });
        return await context.NewPageAsync();
    }

    async Task SignInAsync(IPage page, string email)
    {
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
    }

    /// <summary>Runs axe on the page as it is now and keeps each violation, named by <paramref name="name"/>.</summary>
    async Task CheckAsync(IPage page, string name)
    {
        var result = await page.RunAxe(Wcag21AA);
        checkedPages.Add(name);
        await CheckFocusAsync(page, name);
        foreach (var rule in result.Violations)
        {
            foreach (var node in rule.Nodes)
            {
                // What the checks found: any one of the "any" checks would have passed; each "all" and "none" failed.
                var found = string.Join("; ", (node.Any ?? []).Concat(node.All ?? []).Concat(node.None ?? []).Select(c => c.Message).Where(m => !string.IsNullOrEmpty(m)));
                violations.Add($"{name} ({new Uri(page.Url).PathAndQuery}): {rule.Id} [{rule.Impact}] at {node.Target}: {rule.Help}" +
                               $"{(found.Length == 0 ? "" : " — " + found)}\n    {node.Html}");
            }
        }
    }

    /// <summary>
    /// Every element the keyboard reaches shows where the focus is (WCAG 2.4.7), which axe does not check: after a Tab
    /// (the browser then shows focus as for a keyboard user), each is focused in turn and must draw an outline, or
    /// change its shadow, border or background, and be on the page rather than hidden.
    /// </summary>
    async Task CheckFocusAsync(IPage page, string name)
    {
        await page.Keyboard.PressAsync("Tab");
        var unseen = await page.EvaluateAsync<string[]>("""
            () => {
              const reachable = Array.from(document.querySelectorAll('a[href], button, input, select, textarea, summary, [tabindex], [contenteditable=""], [contenteditable=true]'))
                .filter((e) => (e.tabIndex >= 0 || (e.isContentEditable && !e.hasAttribute('tabindex'))) && !e.disabled && !e.closest('[hidden], [inert]') && e.getClientRects().length > 0
                  && getComputedStyle(e).visibility === 'visible' && !(e instanceof HTMLInputElement && e.type === 'hidden'));
              // Relative luminance and contrast (WCAG's formulas) of "rgb(…)"/"rgba(…)" colours; the background is the
              // nearest opaque one behind the element.
              const rgb = (text) => { const m = /rgba?\(([^)]+)\)/.exec(text || ''); return m ? m[1].split(',').map(Number) : null; };
              const lum = ([r, g, b]) => [r, g, b].map((v) => { v /= 255; return v <= 0.04045 ? v / 12.92 : ((v + 0.055) / 1.055) ** 2.4; })
                .reduce((sum, v, i) => sum + v * [0.2126, 0.7152, 0.0722][i], 0);
              const contrast = (a, b) => { const [x, y] = [lum(a), lum(b)].sort((p, q) => q - p); return (x + 0.05) / (y + 0.05); };
              const behind = (e) => {
                for (let n = e; n; n = n.parentElement) { const c = rgb(getComputedStyle(n).backgroundColor); if (c && (c.length < 4 || c[3] === 1)) return c; }
                return [255, 255, 255];
              };
              const look = (e) => { const c = getComputedStyle(e); return [c.boxShadow, c.borderColor, c.backgroundColor, c.textDecorationLine].join('|'); };
              const problems = [];
              for (const e of reachable) {
                if (document.activeElement && document.activeElement !== document.body) document.activeElement.blur();
                const before = look(e);
                e.focus();
                if (document.activeElement !== e) continue; // not focusable after all (in a closed <details>, say)
                const c = getComputedStyle(e);
                const outlined = c.outlineStyle !== 'none' && parseFloat(c.outlineWidth) > 0;
                const r = e.getBoundingClientRect();
                const where = e.tagName.toLowerCase() + (e.id ? '#' + e.id : '') + (e.className && typeof e.className === 'string' ? '.' + e.className.trim().split(/\s+/).join('.') : '')
                  + (e.getAttribute('name') ? '[name=' + e.getAttribute('name') + ']' : '') + ' "' + (e.innerText || e.value || e.getAttribute('aria-label') || '').trim().slice(0, 40) + '"';
                if (r.width < 1 || r.height < 1 || c.opacity === '0') problems.push(where + ': reached by the keyboard but not shown');
                else if (!outlined && look(e) === before) problems.push(where + ': no sign of focus (outline ' + c.outlineStyle + ' ' + c.outlineWidth + ')');
                else {
                  // A drawn ring (an outline of the page's own colour, or a shadow) stands out from what is around it
                  // at 3:1 at least (WCAG 1.4.11); the browser's own ring ("auto") is drawn in two colours to do so.
                  const ring = outlined ? (c.outlineStyle === 'auto' ? null : rgb(c.outlineColor)) : (c.boxShadow !== 'none' ? rgb(c.boxShadow) : null);
                  const ratio = ring && contrast(ring, behind(e.parentElement || e));
                  if (ring && ratio < 3) problems.push(where + ': its focus ring is faint (' + ratio.toFixed(1) + ':1 against the page, under 3:1)');
                }
              }
              if (document.activeElement) document.activeElement.blur();
              return problems;
            }
            """);
        foreach (var problem in unseen) violations.Add($"{name} ({new Uri(page.Url).PathAndQuery}): focus-visible [serious] at {problem}");
    }

    async Task VisitAsync(IPage page, string path, string name)
    {
        await page.GotoAsync(baseUrl + path);
        await CheckAsync(page, name);
    }

    /// <summary>Sends the form of <paramref name="button"/> as it is, past the browser's own checks: the server's errors show.</summary>
    static async Task SubmitPastBrowserChecksAsync(IPage page, string button)
    {
        await page.EvalOnSelectorAllAsync("form", "forms => forms.forEach(f => f.noValidate = true)");
        await page.ClickAsync(button);
        await page.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
    }

    /// <summary>The first link to this server in the latest mail to <paramref name="address"/>, on this server's port.</summary>
    async Task<string> MailedLinkAsync(string address)
    {
        var url = Regex.Match((await app.Relay.MailAsync(address)).TextBody ?? "", @"http://localhost(/\S+)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(url));
        return baseUrl + url;
    }

    [Fact]
    public async Task Every_page_meets_WCAG_2_1_A_and_AA_as_axe_checks_it()
    {
        var time = Stopwatch.StartNew();

        // First run: the setup page, then its errors.
        var visitor = await NewPageAsync();
        await VisitAsync(visitor, "/setup", "setup");
        await SubmitPastBrowserChecksAsync(visitor, "main button[type=submit]");
        await Assertions.Expect(visitor).ToHaveURLAsync(baseUrl + "/setup");
        await CheckAsync(visitor, "setup with errors");

        var team = $"Encom-{Guid.NewGuid():N}"[..14];
        var admin = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Admin, password: Password);
        admin.Client.BaseAddress = new Uri(baseUrl);

        // Signing in, a wrong password, and the forgotten password's pages.
        await VisitAsync(visitor, "/login", "sign-in");
        await visitor.FillAsync("#Email", admin.Email);
        await visitor.FillAsync("#Password", "not-the-password");
        await visitor.ClickAsync("button[type=submit]");
        await Assertions.Expect(visitor).ToHaveURLAsync(new Regex("/login"));
        await CheckAsync(visitor, "sign-in with a wrong password");
        await VisitAsync(visitor, "/forgot-password", "forgot password");
        await visitor.FillAsync("input[name=Email]", admin.Email);
        await visitor.ClickAsync("main button[type=submit]");
        await visitor.WaitForLoadStateAsync(LoadState.DOMContentLoaded);
        await CheckAsync(visitor, "forgot password, sent");
        await visitor.GotoAsync(await MailedLinkAsync(admin.Email));
        await CheckAsync(visitor, "reset password");
        await SubmitPastBrowserChecksAsync(visitor, "main button[type=submit]");
        await CheckAsync(visitor, "reset password with errors");
        await VisitAsync(visitor, "/reset-password?token=not-a-token", "reset password, a bad link");

        var page = await NewPageAsync();
        await SignInAsync(page, admin.Email);

        // Team: a member invited, and their invitation's page.
        await page.GotoAsync(baseUrl + "/team");
        await page.FillAsync("#add-member input[name=Email]", "alan@encom.test");
        await page.FillAsync("#add-member input[name=DisplayName]", "Alan Bradley");
        await page.ClickAsync("#add-member button[type=submit]");
        await Assertions.Expect(page.Locator("#invited")).ToContainTextAsync("alan@encom.test was added and mailed an invitation");
        await CheckAsync(page, "team, a member invited");
        var invitee = await NewPageAsync();
        await invitee.GotoAsync(await MailedLinkAsync("alan@encom.test"));
        await CheckAsync(invitee, "accept invitation");
        await SubmitPastBrowserChecksAsync(invitee, "main button[type=submit]");
        await CheckAsync(invitee, "accept invitation with errors");

        // Messages: two recipients, one opened and clicked.
        var message = await admin.RegisterAsync(new
        {
            from = admin.Email, subject = "Proposal for the Grid expansion", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
            to = new[] { "alan.bradley@encom.test", "lora.baines@encom.test" },
            html = "<p>See <a href=\"https://encom.test/grid\">the grid</a> and <a href=\"https://encom.test/pricing\">pricing</a></p>",
        });
        // The recipient's mail client: the click's redirect to the link's site is not followed (there is no such site here).
        using (var recipient = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(baseUrl) })
        {
            recipient.DefaultRequestHeaders.UserAgent.ParseAdd("Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)");
            var copy = message.GetProperty("copies")[0];
            await recipient.GetAsync(TestApi.Path(copy.GetProperty("pixelUrl").GetString()!));
            await recipient.GetAsync(TestApi.Path(copy.GetProperty("links")[0].GetProperty("trackedUrl").GetString()!));
        }
        var messageId = message.GetProperty("id").GetString();
        // The second recipient's copy was refused by the mail server, and can be sent again: the list's tag, the page's
        // red reason and its Send again button are checked too.
        await app.WithDbAsync(async db =>
        {
            var id = Guid.Parse(messageId!);
            var refused = await db.Copies.SingleAsync(c => c.TrackedMessageId == id && db.Recipients.Any(r => r.CopyId == c.Id && r.Address == "lora.baines@encom.test"));
            refused.NotSentReason = "550 5.1.1 <lora.baines@encom.test>: Recipient address rejected: User unknown";
            refused.NotSentAt = DateTimeOffset.UtcNow.AddHours(-2);
            db.UnsentContents.Add(new UnsentContent { TrackedMessageId = id, MailboxId = Guid.NewGuid(), Html = "<p>See the grid</p>", KeptUntil = DateTimeOffset.UtcNow.AddDays(7) });
            await db.SaveChangesAsync();
        });
        await VisitAsync(page, "/", "messages");
        await VisitAsync(page, $"/messages/{messageId}", "a message with opens and clicks");
        await Assertions.Expect(page.Locator("div.not-sent")).ToContainTextAsync("Recipient address rejected");
        await Assertions.Expect(page.GetByRole(AriaRole.Button, new() { Name = "Send again to 1 recipient" })).ToBeVisibleAsync();
        await VisitAsync(page, $"/messages/{Guid.NewGuid()}", "a message not found");
        await VisitAsync(page, "/compose", "compose");

        // Documents: one with a plain link and one that asks for the reader's address.
        var upload = await admin.Client.UploadAsync(await Documents.PdfAsync(3), "Grid-expansion-proposal.pdf");
        upload.EnsureSuccessStatusCode();
        var documentId = JsonDocument.Parse(await upload.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        async Task<string> LinkAsync(object settings)
        {
            var made = await admin.Client.PostAsJsonAsync($"/api/content/{documentId}/links", settings);
            return TestApi.Path(JsonDocument.Parse(await made.EnsureSuccessStatusCode().Content.ReadAsStringAsync()).RootElement.GetProperty("url").GetString()!);
        }
        var plain = await LinkAsync(new { });
        var gated = await LinkAsync(new { requireEmail = true });
        await VisitAsync(page, "/documents", "documents");
        await VisitAsync(page, $"/documents/{documentId}", "a document with share links");

        var reader = await NewPageAsync(1280, 860, userAgent: DesktopUa);
        var closed = await LinkAsync(new { disabled = true });
        await VisitAsync(reader, closed, "a share link turned off");
        await VisitAsync(reader, gated, "share-link gate");
        await reader.FillAsync("#gate-email-input", "dana at example");
        await SubmitPastBrowserChecksAsync(reader, "#reader-gate button[type=submit]");
        await CheckAsync(reader, "share-link gate with an error");
        // Made an hour ago, so that its reader is a person (a read within seconds of a link being made is a scanner's).
        var plainToken = plain.Split('/')[^1];
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == plainToken).ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        await reader.GotoAsync(baseUrl + plain);
        await reader.WaitForSelectorAsync("body[data-state=ready][data-page='1']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        await CheckAsync(reader, "document viewer");
        // The document's page with that reader in its Readers table.
        for (var tries = 0; ; tries++)
        {
            await page.GotoAsync(baseUrl + $"/documents/{documentId}");
            if (await page.Locator("#readers tbody tr").CountAsync() > 0) break;
            Assert.True(tries < 50, "the reader's visit never reached the document's page");
            await Task.Delay(200);
        }
        await CheckAsync(page, "a document with a reader");

        // Sequences and templates, on a mailbox.
        var mailboxId = Guid.NewGuid();
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = mailboxId, TeamId = admin.TeamId, UserId = admin.Id, Kind = MailboxKind.Imap, Address = admin.Email, Status = MailboxStatus.Active,
                ProtectedSecret = "unused", CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        var template = await admin.Client.PostAsJsonAsync("/api/templates", new { name = "Intro", subject = "Hello {{ first_name }}", html = "<p>Hi {{ first_name }}</p>" });
        var templateId = JsonDocument.Parse(await template.EnsureSuccessStatusCode().Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var sequence = await admin.Client.PostAsJsonAsync("/api/sequences", new { name = "Outreach", mailboxId, steps = new[] { new { templateId } } });
        var sequenceId = JsonDocument.Parse(await sequence.EnsureSuccessStatusCode().Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        (await admin.Client.PostAsJsonAsync($"/api/sequences/{sequenceId}/enrolments",
            new { recipients = new[] { new { email = "ram@encom.test", firstName = "Ram" }, new { email = "dumont@encom.test", firstName = "Dumont" } } })).EnsureSuccessStatusCode();
        // Compose with a mailbox to send from: a file past the attachments' limit, then the send's errors.
        await VisitAsync(page, "/compose", "compose with a mailbox");
        await page.SetInputFilesAsync("#Files", [new FilePayload { Name = "big.pdf", MimeType = "application/pdf", Buffer = Mailboxes.TestFiles.Pdf(1200 * 1024, seed: 6) }]);
        await Assertions.Expect(page.Locator("#attachment-problem")).ToBeVisibleAsync();
        await CheckAsync(page, "compose, a file past the limit");
        await page.ClickAsync("button[aria-label='Remove big.pdf']");
        await page.FillAsync("#To", "not-an-address");
        await page.FillAsync("#Subject", "Proposal");
        await page.ClickAsync("#send");
        await Assertions.Expect(page.Locator(".field-errors[data-field='to']")).ToBeVisibleAsync();
        await CheckAsync(page, "compose with errors");

        await VisitAsync(page, "/sequences", "sequences");
        await VisitAsync(page, $"/sequences/{sequenceId}", "a sequence with enrolments");
        await VisitAsync(page, $"/sequences/{sequenceId}/edit", "a sequence's edit page");
        await VisitAsync(page, "/sequences/new", "new sequence");
        await SubmitPastBrowserChecksAsync(page, "#save");
        await CheckAsync(page, "new sequence with errors");
        await VisitAsync(page, "/templates", "templates");
        await VisitAsync(page, $"/templates/{templateId}", "a template");
        await VisitAsync(page, "/templates/new", "new template");
        await SubmitPastBrowserChecksAsync(page, "#save");
        await CheckAsync(page, "new template with errors");

        // The account's pages.
        (await admin.Client.PostAsJsonAsync("/api/me/addresses", new { address = "sales@encom.test" })).EnsureSuccessStatusCode();
        await VisitAsync(page, "/addresses", "addresses");
        await VisitAsync(page, "/addresses/confirm?token=not-a-token", "address confirmation, a bad link");
        await VisitAsync(page, "/mailboxes", "mailboxes");
        await page.GotoAsync(baseUrl + "/tokens");
        await page.FillAsync("input[name=Name]", "laptop script");
        await page.ClickAsync("form.inline button[type=submit]");
        await Assertions.Expect(page.Locator("#new-token")).ToBeVisibleAsync();
        await CheckAsync(page, "tokens, one just made");
        await VisitAsync(page, "/password", "password");
        await SubmitPastBrowserChecksAsync(page, "main button[type=submit]");
        await CheckAsync(page, "password with errors");
        await VisitAsync(page, "/salesforce", "salesforce");

        // Webhooks: the form's errors, one added with its secret, its deliveries.
        await using var receiver = await WebhookReceiver.StartAsync();
        await page.GotoAsync(baseUrl + "/webhooks");
        await page.FillAsync("#Url", "ftp://hooks.encom.test/et");
        await page.ClickAsync("#add");
        await Assertions.Expect(page.Locator(".field-errors[data-field='url']")).ToBeVisibleAsync();
        await CheckAsync(page, "webhooks with errors");
        await page.FillAsync("#Url", receiver.Url);
        await page.CheckAsync("#event-types input[data-type='message.sent']");
        await page.ClickAsync("#add");
        await Assertions.Expect(page.Locator("#secret")).ToBeVisibleAsync();
        await CheckAsync(page, "webhooks, one just added");
        await admin.RegisterSimpleAsync();
        var hookId = app.WithDb(db => db.Webhooks.Single().Id);
        var until = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (app.WithDb(db => db.OutboxDeliveries.Count()) == 0)
        {
            Assert.True(DateTime.UtcNow < until, "no webhook delivery was made");
            await Task.Delay(100);
        }
        var deliveryId = app.WithDb(db => db.OutboxDeliveries.First().Id);
        await VisitAsync(page, $"/webhooks/{hookId}", "a webhook");
        await VisitAsync(page, "/webhooks/deliveries", "deliveries");
        await VisitAsync(page, $"/webhooks/deliveries/{deliveryId}", "a delivery");

        // A member, on a page that is the admins'.
        var member = await app.NewUserAsync(team: team, plan: Plan.Team, role: TeamRole.Member, password: Password);
        var memberPage = await NewPageAsync();
        await SignInAsync(memberPage, member.Email);
        await VisitAsync(memberPage, "/webhooks", "webhooks, as a member");
        await VisitAsync(memberPage, "/team", "team, as a member");

        // Linking a Gmail or Outlook account, with a link that does not work.
        await VisitAsync(page, "/gmail/link?token=not-a-token", "gmail account link, a bad link");
        await VisitAsync(page, "/outlook/link?token=not-a-token", "outlook account link, a bad link");

        // The Outlook add-in's panes (task-pane sized): composing with a document in the library, and the sent message
        // read with its recipients' activity.
        var microsoftToken = app.Issuer.MintAccessToken(admin.Email);
        var compose = await NewPageAsync(360, 720, officeDouble: new
        {
            mode = "compose", userEmail = admin.Email, userName = "Kevin Flynn", accessToken = microsoftToken,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "Grid proposal", to = new[] { new { displayName = "Alan Bradley", emailAddress = "alan@encom.test" } },
                cc = Array.Empty<object>(), bcc = Array.Empty<object>(), from = new { displayName = "Kevin Flynn", emailAddress = admin.Email },
                bodyType = "html", body = "<p>Hello Alan,</p>", sessionData = new Dictionary<string, string>(),
            },
        });
        await compose.GotoAsync(baseUrl + "/addin/compose.html");
        await Assertions.Expect(compose.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(compose.Locator("#library li")).Not.ToHaveCountAsync(0);
        await CheckAsync(compose, "outlook compose pane");
        var read = await NewPageAsync(360, 720, officeDouble: new
        {
            mode = "read", userEmail = admin.Email, accessToken = microsoftToken,
            requirementSets = new { Mailbox = "1.13", IdentityAPI = "1.3" },
            item = new
            {
                subject = "Proposal for the Grid expansion", internetMessageId = "<DM6PR11MB0002.grid@DM6PR11MB0002.namprd11.prod.outlook.com>",
                allHeaders = "Subject: Proposal for the Grid expansion\r\n", body = message.GetProperty("copies")[0].GetProperty("html").GetString(),
                from = new { displayName = "Kevin Flynn", emailAddress = admin.Email },
            },
        });
        await read.GotoAsync(baseUrl + "/addin/read.html");
        await Assertions.Expect(read.Locator("body")).ToHaveAttributeAsync("data-state", "ready");
        await Assertions.Expect(read.Locator("#sent")).ToBeVisibleAsync();
        await CheckAsync(read, "outlook read pane");

        // Error pages.
        await VisitAsync(page, "/error", "the error page");
        await VisitAsync(page, "/no-such-page", "a page not found");

        // A phone.
        var phone = await NewPageAsync(390, 844, phone: true);
        await SignInAsync(phone, admin.Email);
        await CheckAsync(phone, "phone: messages");
        await VisitAsync(phone, $"/messages/{messageId}", "phone: a message");
        await VisitAsync(phone, "/compose", "phone: compose");
        await VisitAsync(phone, "/documents", "phone: documents");
        var phoneReader = await NewPageAsync(390, 844, phone: true, userAgent: DesktopUa);
        await phoneReader.GotoAsync(baseUrl + plain);
        await phoneReader.WaitForSelectorAsync("body[data-state=ready][data-page='1']", new PageWaitForSelectorOptions { Timeout = 30_000 });
        await CheckAsync(phoneReader, "phone: document viewer");

        // Signing out.
        await VisitAsync(memberPage, "/logout", "sign-out");

        output.WriteLine($"{checkedPages.Count} pages checked in {time.Elapsed.TotalSeconds:0.0} s: {string.Join(", ", checkedPages)}");
        Assert.True(offline.Count == 0, "pages fetched from elsewhere:\n" + string.Join("\n", offline));
        Assert.True(violations.Count == 0, $"{violations.Count} accessibility violations (WCAG 2.1 A/AA, axe-core):\n" + string.Join("\n", violations));
    }
}
