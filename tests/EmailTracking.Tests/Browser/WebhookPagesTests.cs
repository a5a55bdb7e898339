using System.Net;
using System.Net.Http.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Outbox;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>The outbox server (quick retries, http and loopback webhooks allowed) on a real Kestrel port for Chromium.</summary>
public sealed class WebhookPagesApp() : OutboxApp(DatabaseProvider.Sqlite)
{
    /// <summary>While above zero, the answer to a form post is held this long once it is ready, its work done: a busy server.</summary>
    public TimeSpan HoldAnswers { get; set; }

    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.ConfigureServices(s => s.AddTransient<IStartupFilter>(_ => new HoldAnswersFilter(this)));
    }

    sealed class HoldAnswersFilter(WebhookPagesApp app) : IStartupFilter
    {
        public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => b =>
        {
            b.Use(async (http, then) =>
            {
                var hold = app.HoldAnswers;
                if (hold <= TimeSpan.Zero || !HttpMethods.IsPost(http.Request.Method))
                {
                    await then();
                    return;
                }
                var body = http.Response.Body;
                using var held = new MemoryStream();
                http.Response.Body = held;
                try { await then(); }
                finally { http.Response.Body = body; }
                await Task.Delay(hold);
                held.Position = 0;
                try { await held.CopyToAsync(body); }
                catch (Exception e) when (e is IOException or OperationCanceledException) { } // the browser went on to another request
            });
            next(b);
        };
    }
}

/// <summary>
/// The webhook pages in Chromium: an admin adds a webhook (a bad URL refused beside its field, then a good one whose
/// secret is shown once), a send reaches the receiver, a failing receiver makes a dead letter whose attempts and status
/// codes the delivery log shows, and Replay (one, then all) delivers it once the receiver is fixed; a new secret and
/// delete after confirming; members are told webhooks are the admins'; another team's webhook and delivery are not found, and
/// a Salesforce delivery shows in its team's log as Salesforce, filterable by that target.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class WebhookPagesTests : InProcessBrowserTest<WebhookPagesApp>
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    async Task<(IPage Page, List<string> Errors)> SignedInAsync(TestUser user)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1360, Height = 900 } });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        return (page, errors);
    }

    static async Task Until(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, what + " did not happen in time");
            await Task.Delay(100);
        }
    }

    static Task SendAsync(TestUser user, string subject) =>
        user.RegisterAsync(new { from = user.Email, subject, perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });

    List<OutboxDelivery> Deliveries() => app.WithDb(db => db.OutboxDeliveries.OrderBy(d => d.Id).ToList());

    async Task<TestUser> UserAsync(string team)
    {
        var user = await app.NewUserAsync(team, password: Password); // the team's first user administers it
        user.Client.BaseAddress = new Uri(baseUrl);
        return user;
    }

    /// <summary>A delivered Salesforce delivery with one attempt, as the Salesforce target (built elsewhere) records them.</summary>
    async Task<long> SalesforceDeliveryAsync(Guid team)
    {
        var now = DateTimeOffset.UtcNow;
        var d = new OutboxDelivery
        {
            TeamId = team, TargetKind = "salesforce", TargetId = Guid.NewGuid(), EventType = OutboxEventTypes.MessageSent, IdempotencyKey = $"sf-{Guid.NewGuid():N}",
            Payload = "{}", State = DeliveryState.Delivered, Attempts = 1, CreatedAt = now, NextAttemptAt = now, DeliveredAt = now, ExternalId = "00T000000000001",
        };
        await app.WithDbAsync(async db =>
        {
            db.OutboxDeliveries.Add(d);
            await db.SaveChangesAsync();
            db.DeliveryAttempts.Add(new DeliveryAttempt { DeliveryId = d.Id, At = now, StatusCode = 201, Outcome = "Delivered", DurationMs = 120 });
            await db.SaveChangesAsync();
        });
        return d.Id;
    }

    /// <summary>
    /// A form pressed again while its answer is on its way (a slow server, a double click) posts once (app.js). It posted
    /// again, and the server did it twice: here two webhooks, the first one's signing secret never shown, so that its
    /// deliveries failed their signature check at the receiver. A form whose confirmation was declined was not sent, and
    /// can still be sent.
    /// </summary>
    [Fact]
    public async Task A_form_pressed_again_while_its_answer_is_on_its_way_posts_once()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var admin = await UserAsync($"Encom {Guid.NewGuid():N}");
        var (page, consoleErrors) = await SignedInAsync(admin);
        await page.GotoAsync(baseUrl + "/webhooks");
        int Hooks() => app.WithDb(db => db.Webhooks.Count(w => w.TeamId == admin.TeamId));

        // The answer comes late, as from a busy server: the webhook is made, and the page is still the form.
        app.HoldAnswers = TimeSpan.FromSeconds(1.5);
        try
        {
            await page.FillAsync("#Url", receiver.Url);
            await page.CheckAsync("#event-types input[data-type='message.sent']");
            // Pressed, and pressed again half a second later, while the answer is held (as a person presses it: in the
            // page, not by Playwright, whose click waits for the page that answers).
            var pressed = DateTime.UtcNow;
            await page.EvaluateAsync("() => { const add = document.querySelector('#add'); add.click(); setTimeout(() => add.click(), 500); }");
            await Until(() => Hooks() >= 1, "the webhook");
            await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("was added");
            // The answer was held past the second press: what follows is what the second press did.
            Assert.True(DateTime.UtcNow - pressed > TimeSpan.FromSeconds(1.2), $"answered after {DateTime.UtcNow - pressed}");
            await Assertions.Expect(page.Locator("#secret-value")).ToBeVisibleAsync();
            await Assertions.Expect(page.Locator("#webhooks tbody tr")).ToHaveCountAsync(1);
        }
        finally
        {
            app.HoldAnswers = TimeSpan.Zero;
        }
        Assert.Equal(1, Hooks());

        // A confirmation declined sends nothing and leaves the form free: accepted next, it goes.
        var hook = app.WithDb(db => db.Webhooks.Single(w => w.TeamId == admin.TeamId));
        await page.GotoAsync($"{baseUrl}/webhooks/{hook.Id}");
        await Chromium.AnswerConfirmAsync(page, () => page.ClickAsync("#rotate"), accept: false);
        await Chromium.AnswerConfirmAsync(page, () => page.ClickAsync("#rotate"), accept: true);
        await Assertions.Expect(page.Locator("#secret-value")).ToBeVisibleAsync();
        Assert.NotEqual(hook.ProtectedSecret, app.WithDb(db => db.Webhooks.Single(w => w.Id == hook.Id).ProtectedSecret));
        Assert.True(consoleErrors.Count == 0, string.Join("\n", consoleErrors));
    }

    [Fact]
    public async Task An_admin_adds_a_webhook_sees_a_dead_letter_with_its_attempts_and_replays_it_delivered()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var admin = await UserAsync($"Encom {Guid.NewGuid():N}");
        var (page, consoleErrors) = await SignedInAsync(admin);

        await page.ClickAsync("header nav >> text=Webhooks");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/webhooks");
        await Assertions.Expect(page.Locator("#no-webhooks")).ToBeVisibleAsync();

        // A URL that is not one and no event type: the API's words, each under its field; nothing saved.
        await page.FillAsync("#Url", "ftp://hooks.encom.test/et");
        await page.FillAsync("#Description", "CRM sync");
        await page.ClickAsync("#add");
        await Assertions.Expect(page.Locator(".field-errors[data-field='url']")).ToHaveTextAsync("A webhook URL must use https:// (the payload names your recipients).");
        await Assertions.Expect(page.Locator(".field-errors[data-field='eventTypes']")).ToContainTextAsync("Choose at least one of: message.sent");
        Assert.Equal("ftp://hooks.encom.test/et", await page.InputValueAsync("#Url")); // what was typed stays
        Assert.Equal(0, app.WithDb(db => db.Webhooks.Count()));
        await Assertions.Expect(page.Locator("#secret")).ToHaveCountAsync(0);

        // A good one: the secret once, with how to verify it.
        await page.FillAsync("#Url", receiver.Url);
        await page.CheckAsync("#event-types input[data-type='message.sent']");
        await page.ClickAsync("#add");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("was added");
        var secret = (await page.Locator("#secret-value").TextContentAsync())!.Trim();
        Assert.StartsWith("whsec_", secret);
        await Assertions.Expect(page.Locator("#secret")).ToContainTextAsync("ET-Signature");
        receiver.Secret = secret;
        var hook = app.WithDb(db => db.Webhooks.Single());
        Assert.Equal("CRM sync", hook.Description);
        await Assertions.Expect(page.Locator($"#webhooks tr[data-webhook-id='{hook.Id}'] .types")).ToHaveTextAsync("message.sent");
        await Chromium.ShotAsync(page, "40-webhooks-secret");
        await page.GotoAsync(baseUrl + "/webhooks");
        await Assertions.Expect(page.Locator("#webhooks tbody tr")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#secret")).ToHaveCountAsync(0);
        Assert.DoesNotContain(secret, await page.ContentAsync());

        // A send is delivered, signed.
        await SendAsync(admin, "Proposal");
        await Until(() => receiver.Processed.Count == 1, "message.sent at the receiver");
        Assert.All(receiver.Requests, r => Assert.True(r.SignatureValid));

        // The receiver fails: every try answers 500 until the delivery is a dead letter.
        receiver.Behaviour = WebhookReceiver.Mode.Fail500;
        await SendAsync(admin, "Follow-up");
        await Until(() => Deliveries() is { Count: 2 } d && d[1].State == DeliveryState.Dead, "a dead letter");
        var dead = Deliveries()[1];

        await page.ClickAsync("#deliveries-link");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/webhooks/deliveries");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(2);
        await page.SelectOptionAsync("#state", "dead");
        await page.ClickAsync("#apply-filter");
        await Assertions.Expect(page).ToHaveURLAsync(new Regex(Regex.Escape(baseUrl + "/webhooks/deliveries?state=dead") + "(&target=)?$"));
        var row = page.Locator($"#deliveries tbody.delivery[data-delivery-id='{dead.Id}']");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(1);
        await Assertions.Expect(row.Locator(".event-type")).ToHaveTextAsync("message.sent");
        await Assertions.Expect(row.Locator(".target")).ToHaveTextAsync(receiver.Url);
        await Assertions.Expect(row.Locator(".delivery-state")).ToHaveTextAsync("dead");
        await Assertions.Expect(row.Locator(".attempts-count")).ToHaveTextAsync("4");
        await Assertions.Expect(row.Locator(".last-error")).ToContainTextAsync("500");
        await row.Locator("summary").ClickAsync();
        await Assertions.Expect(row.Locator(".attempt")).ToHaveCountAsync(4);
        foreach (var code in await row.Locator(".attempt .status-code").AllTextContentsAsync()) Assert.Equal("500", code.Trim());
        await Assertions.Expect(page.Locator("#replay-all")).ToHaveTextAsync("Replay all dead letters (1)");
        await Chromium.ShotAsync(page, "41-delivery-log-dead-letter");

        // Its own page lists every attempt too.
        await row.Locator(".event-type").ClickAsync();
        await Assertions.Expect(page).ToHaveURLAsync($"{baseUrl}/webhooks/deliveries/{dead.Id}");
        await Assertions.Expect(page.Locator("#delivery .attempt")).ToHaveCountAsync(4);
        await Assertions.Expect(page.Locator("#target-name")).ToHaveTextAsync(receiver.Url);
        await Assertions.Expect(page.Locator("#replay-form input[name='__RequestVerificationToken']")).ToHaveCountAsync(1);
        await Assertions.Expect(page.Locator("#replay-form")).ToHaveAttributeAsync("action", $"/webhooks/deliveries?handler=Replay&id={dead.Id}");
        await page.GoBackAsync();

        // Fixed, replayed: delivered once, with the same idempotency key.
        receiver.Behaviour = WebhookReceiver.Mode.Ok;
        await row.Locator(".replay").ClickAsync();
        await Assertions.Expect(page.Locator("#notice")).ToHaveTextAsync("The dead letter goes again.");
        await Until(() => Deliveries()[1].State == DeliveryState.Delivered, "the replayed delivery");
        Assert.True(receiver.Processed.ContainsKey(dead.IdempotencyKey));
        Assert.Equal(2, receiver.Processed.Count);
        await page.SelectOptionAsync("#state", "delivered");
        await page.ClickAsync("#apply-filter");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(2);
        await Assertions.Expect(page.Locator($"#deliveries tbody.delivery[data-delivery-id='{dead.Id}'] .delivery-state")).ToHaveTextAsync("delivered");
        await Chromium.ShotAsync(page, "42-delivery-log-replayed");

        // Replay all: another dead letter, the receiver fixed, one button.
        receiver.Behaviour = WebhookReceiver.Mode.Fail500;
        await SendAsync(admin, "Last call");
        await Until(() => Deliveries() is { Count: 3 } d && d[2].State == DeliveryState.Dead, "a second dead letter");
        receiver.Behaviour = WebhookReceiver.Mode.Ok;
        await page.GotoAsync(baseUrl + "/webhooks/deliveries");
        await page.ClickAsync("#replay-all");
        await Assertions.Expect(page.Locator("#notice")).ToHaveTextAsync("1 dead letter goes again.");
        await Until(() => Deliveries().All(d => d.State == DeliveryState.Delivered), "the replayed dead letters");
        Assert.Equal(3, receiver.Processed.Count);
        Assert.Equal(0, receiver.Duplicates);

        // A new secret, shown once; the receiver verifies with it from now on.
        await page.GotoAsync($"{baseUrl}/webhooks/{hook.Id}");
        Assert.StartsWith("Make a new signing secret? The old one stops working at once",
            await Chromium.AnswerConfirmAsync(page, () => page.ClickAsync("#rotate"), accept: true));
        var rotated = (await page.Locator("#secret-value").TextContentAsync())!.Trim();
        Assert.StartsWith("whsec_", rotated);
        Assert.NotEqual(secret, rotated);
        await page.GotoAsync($"{baseUrl}/webhooks/{hook.Id}");
        await Assertions.Expect(page.Locator("#secret")).ToHaveCountAsync(0);

        // Edit: a bad URL is refused beside its field; disabling is saved.
        await page.FillAsync("#Url", "not a url");
        await page.ClickAsync("#save");
        await Assertions.Expect(page.Locator(".field-errors[data-field='url']")).ToHaveTextAsync("A webhook URL is an absolute https:// URL.");
        await page.FillAsync("#Url", receiver.Url);
        await page.UncheckAsync("#Enabled");
        await page.ClickAsync("#save");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/webhooks");
        await Assertions.Expect(page.Locator($"#webhooks tr[data-webhook-id='{hook.Id}'] .enabled")).ToHaveTextAsync("no");

        // Delete asks first.
        await page.GotoAsync($"{baseUrl}/webhooks/{hook.Id}");
        await page.ClickAsync("#delete");
        await Assertions.Expect(page.Locator("#confirm-delete")).ToContainTextAsync("Delete the webhook to " + receiver.Url);
        Assert.Equal(1, app.WithDb(db => db.Webhooks.Count()));
        await page.ClickAsync("#delete-confirmed");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/webhooks");
        await Assertions.Expect(page.Locator("#notice")).ToContainTextAsync("was deleted");
        await Assertions.Expect(page.Locator("#no-webhooks")).ToBeVisibleAsync();
        Assert.True(consoleErrors.Count == 0, string.Join("\n", consoleErrors));
    }

    [Fact]
    public async Task A_member_is_told_webhooks_are_the_admins_and_another_teams_webhook_and_delivery_are_not_found_and_salesforce_shows_in_the_log()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var team = $"Encom {Guid.NewGuid():N}";
        var admin = await UserAsync(team);
        var member = await UserAsync(team);
        var created = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = receiver.Url, eventTypes = new[] { OutboxEventTypes.MessageSent } });
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var hook = app.WithDb(db => db.Webhooks.Single(w => w.TeamId == admin.TeamId).Id);
        await SendAsync(admin, "Proposal");
        await Until(() => app.WithDb(db => db.OutboxDeliveries.Any(d => d.TargetId == hook)), "a delivery");
        var delivery = app.WithDb(db => db.OutboxDeliveries.Single(d => d.TargetId == hook).Id);

        var (memberPage, _) = await SignedInAsync(member);
        await Assertions.Expect(memberPage.Locator("header nav a[href='/webhooks']")).ToHaveCountAsync(0);
        foreach (var path in new[] { "/webhooks", "/webhooks/deliveries", $"/webhooks/{hook}", $"/webhooks/deliveries/{delivery}" })
        {
            var response = await memberPage.GotoAsync(baseUrl + path);
            Assert.True(response!.Status == 403, $"{path}: {response.Status}");
            await Assertions.Expect(memberPage.Locator("#admins-only")).ToContainTextAsync("Only a team admin can manage webhooks");
        }
        await memberPage.GotoAsync(baseUrl + "/webhooks");
        await Chromium.ShotAsync(memberPage, "43-webhooks-admins-only");

        var other = await UserAsync($"Aperture {Guid.NewGuid():N}");
        var (page, _) = await SignedInAsync(other);
        foreach (var path in new[] { $"/webhooks/{hook}", $"/webhooks/deliveries/{delivery}" })
        {
            var response = await page.GotoAsync(baseUrl + path);
            Assert.True(response!.Status == 404, $"{path}: {response.Status}");
        }
        // Their log holds their own deliveries only, Salesforce's among them (the targets share the table).
        var salesforce = await SalesforceDeliveryAsync(other.TeamId);
        await page.GotoAsync(baseUrl + "/webhooks/deliveries");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(1);
        var row = page.Locator($"#deliveries tbody.delivery[data-delivery-id='{salesforce}']");
        await Assertions.Expect(row.Locator(".target")).ToHaveTextAsync("Salesforce");
        await Assertions.Expect(row.Locator(".delivery-state")).ToHaveTextAsync("delivered");
        await row.Locator("summary").ClickAsync();
        await Assertions.Expect(row.Locator(".attempt .status-code")).ToHaveTextAsync("201");
        await page.SelectOptionAsync("#target", new SelectOptionValue { Label = "Salesforce" });
        await page.ClickAsync("#apply-filter");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(1);
        await page.SelectOptionAsync("#state", "dead");
        await page.ClickAsync("#apply-filter");
        await Assertions.Expect(page.Locator("#no-deliveries")).ToBeVisibleAsync();
        // A filter that is not one says so and shows everything (another team's webhook is not a target of theirs).
        await page.GotoAsync($"{baseUrl}/webhooks/deliveries?state=lost&target={hook}");
        await Assertions.Expect(page.Locator(".field-errors[data-field='filter']")).ToContainTextAsync("'lost' is not a delivery state");
        await Assertions.Expect(page.Locator(".field-errors[data-field='filter']")).ToContainTextAsync("not one of the team's webhooks");
        await Assertions.Expect(page.Locator("#deliveries tbody.delivery")).ToHaveCountAsync(1);
        // A replay of another team's delivery by form is not found either, and changes nothing.
        var state = app.WithDb(db => db.OutboxDeliveries.Single(d => d.Id == delivery).State);
        var token = await page.Locator("#replay-all-form input[name='__RequestVerificationToken']").InputValueAsync();
        var replay = await page.APIRequest.PostAsync($"{baseUrl}/webhooks/deliveries?handler=Replay&id={delivery}",
            new APIRequestContextOptions { Form = page.APIRequest.CreateFormData().Set("__RequestVerificationToken", token), MaxRedirects = 0 });
        Assert.Equal(404, replay.Status);
        Assert.Equal(state, app.WithDb(db => db.OutboxDeliveries.Single(d => d.Id == delivery).State));
    }
}
