using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;

namespace EmailTracking.Tests.Outbox;

/// <summary>The outbox with quick retries and loopback webhooks allowed (production refuses both http and loopback).</summary>
public abstract class OutboxApp(DatabaseProvider provider) : AppFactory(provider)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("Outbox:Settle", "00:00:00");
        builder.UseSetting("Outbox:PollInterval", "00:00:00.200");
        builder.UseSetting("Outbox:FirstBackoff", "00:00:00.200");
        builder.UseSetting("Outbox:MaxBackoff", "00:00:00.500");
        builder.UseSetting("Outbox:MaxAttempts", "4");
        builder.UseSetting("Webhooks:AllowHttp", "true");
        builder.UseSetting("Webhooks:AllowPrivateTargets", "true");
        // Long enough that an answer is never lost to a busy machine (a lost answer means a second attempt); the tests
        // of hanging receivers hold requests until they release them (see WebhookReceiver).
        builder.UseSetting("Webhooks:Timeout", "00:00:10");
    }
}

public sealed class OutboxSqliteApp() : OutboxApp(DatabaseProvider.Sqlite);

public sealed class OutboxPostgresApp() : OutboxApp(DatabaseProvider.Postgres);

/// <summary>
/// Events reach a team's webhooks through the outbox: signed, each once per idempotency key, through outages,
/// failures and hangs, with every attempt in the delivery log and dead letters replayed by hand.
/// </summary>
public abstract class OutboxTests(OutboxApp app)
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(30);

    async Task<(TestUser Admin, Guid Hook)> HookAsync(WebhookReceiver receiver, params string[] types)
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var res = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = receiver.Url, eventTypes = types.Length > 0 ? types : OutboxEventTypes.All });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        var created = JsonDocument.Parse(text).RootElement;
        receiver.Secret = created.GetProperty("secret").GetString();
        Assert.StartsWith("whsec_", receiver.Secret);
        return (admin, created.GetProperty("webhook").GetProperty("id").GetGuid());
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

    List<OutboxDelivery> Deliveries(Guid hook) => app.WithDb(db => db.OutboxDeliveries.Where(d => d.TargetId == hook).OrderBy(d => d.Id).ToList());

    /// <summary>
    /// Each delivery reached the receiver once, unless an attempt's answer was lost (no status: the 1 s timeout here,
    /// which a loaded machine can miss after the receiver processed the delivery). Such a delivery goes again with the
    /// same key and the receiver drops the copy: at least once, never a copy without a lost answer.
    /// </summary>
    void NoDuplicatesButAfterLostAnswers(WebhookReceiver receiver, Guid hook)
    {
        var ids = Deliveries(hook).Select(d => d.Id).ToList();
        var lost = app.WithDb(db => db.DeliveryAttempts.Where(a => ids.Contains(a.DeliveryId) && a.StatusCode == null && a.Outcome != nameof(DeliveryOutcome.Delivered))
            .Select(a => a.Detail).ToList());
        Assert.True(receiver.Duplicates <= lost.Count, $"{receiver.Duplicates} duplicate(s) at the receiver after {lost.Count} lost answer(s): {string.Join("; ", lost)}");
    }

    [Fact]
    public async Task Sends_first_opens_clicks_and_replies_by_people_reach_the_webhook_signed_and_machines_do_not()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver);
        var reg = await admin.RegisterAsync(new
        {
            from = admin.Email, subject = "Proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test" }, html = "<p>See <a href=\"https://encom.test/deck\">the deck</a></p>",
        });
        var copy = reg.GetProperty("copies")[0];
        var pixel = TestApi.Path(copy.GetProperty("pixelUrl").GetString()!);
        var click = TestApi.Path(copy.GetProperty("links")[0].GetProperty("trackedUrl").GetString()!);
        using var person = app.Anonymous();
        await person.GetAsync(pixel);
        await person.GetAsync(pixel);
        await person.GetAsync(click);
        // A crawler fetching the same link is a machine: nothing goes out for it.
        await app.Anonymous("Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)").GetAsync(click);

        await Until(() => receiver.Processed.Count >= 3, "three deliveries");
        // A moment for anything that should not go out (the second open, the crawler) to show up if it were sent, and
        // for the three answers to be recorded.
        await Task.Delay(1000);
        await Until(() => Deliveries(hook).All(d => d.State == DeliveryState.Delivered), "the three deliveries' answers recorded");
        var byType = receiver.Processed.Values.GroupBy(v => v.GetProperty("type").GetString()!).ToDictionary(g => g.Key, g => g.ToList());
        Assert.Equal(["link.clicked", "message.opened", "message.sent"], byType.Keys.Order());
        Assert.Single(byType["message.opened"]); // the second open is not a first open
        Assert.Single(byType["link.clicked"]);
        Assert.All(receiver.Requests, r => Assert.True(r.SignatureValid));
        var clicked = byType["link.clicked"][0].GetProperty("data");
        Assert.Equal("https://encom.test/deck", clicked.GetProperty("linkUrl").GetString());
        Assert.Equal("sam@encom.test", clicked.GetProperty("recipient").GetString());
        Assert.Equal("Proposal", clicked.GetProperty("subject").GetString());
        Assert.Equal(1, clicked.GetProperty("summary").GetProperty("opens").GetInt32() >= 1 ? 1 : 0);
        var opened = byType["message.opened"][0];
        Assert.Equal(receiver.Processed.Single(p => p.Value.GetProperty("type").GetString() == "message.opened").Key, opened.GetProperty("id").GetString());
        NoDuplicatesButAfterLostAnswers(receiver, hook);

        // The delivery log: each delivered once, its attempt recorded with the status code.
        var log = await admin.Client.GetJsonAsync($"/api/outbox/deliveries?target={hook}");
        Assert.All(log.EnumerateArray(), d =>
        {
            Assert.Equal("delivered", d.GetProperty("state").GetString());
            Assert.Equal(204, d.GetProperty("log")[0].GetProperty("statusCode").GetInt32());
        });
    }

    [Fact]
    public async Task Answers_a_mailbox_watcher_records_reach_the_webhook_with_who_wrote_and_what()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.ReplyReceived, OutboxEventTypes.AutoReplyReceived);
        var reg = await admin.RegisterAsync(new
        {
            from = admin.Email, subject = "Pricing", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1), to = new[] { "sam@encom.test" }, html = "<p>x</p>",
        });
        var ourId = reg.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');
        var connection = new MailboxConnection
        {
            TeamId = admin.TeamId, UserId = admin.Id, Kind = MailboxKind.Imap, Address = admin.Email, Status = MailboxStatus.Active,
            ProtectedSecret = "unused", CreatedAt = DateTimeOffset.UtcNow,
        };
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(connection);
            await db.SaveChangesAsync();
        });
        MimeKit.MimeMessage Answer(string from, string text, bool robot)
        {
            var m = new MimeKit.MimeMessage { MessageId = Guid.NewGuid().ToString("N") + "@encom.test", Subject = (robot ? "Automatic reply: " : "Re: ") + "Pricing", Date = DateTimeOffset.UtcNow };
            m.From.Add(MimeKit.MailboxAddress.Parse(from));
            m.To.Add(MimeKit.MailboxAddress.Parse(admin.Email));
            m.InReplyTo = ourId;
            m.References.Add(ourId);
            if (robot) m.Headers.Add("Auto-Submitted", "auto-replied");
            m.Body = new MimeKit.TextPart("plain") { Text = text };
            return m;
        }
        using (var scope = app.Services.CreateScope())
        {
            var pipeline = scope.ServiceProvider.GetRequiredService<EmailTracking.Server.Replies.InboundPipeline>();
            await pipeline.HandleAsync(connection, "INBOX:1:1", Answer("sam@encom.test", "Sounds good, send the contract.", robot: false), null, null, CancellationToken.None);
            await pipeline.HandleAsync(connection, "INBOX:1:2", Answer("lora@encom.test", "I am out of the office until Monday.", robot: true), null, null, CancellationToken.None);
        }
        await Until(() => receiver.Processed.Count == 2, "both answers delivered");
        var reply = receiver.Processed.Values.Single(v => v.GetProperty("type").GetString() == "reply.received").GetProperty("data");
        Assert.Equal("sam@encom.test", reply.GetProperty("fromAddress").GetString());
        Assert.Contains("send the contract", reply.GetProperty("excerpt").GetString());
        Assert.True(reply.GetProperty("summary").GetProperty("replied").GetBoolean());
        var robotAnswer = receiver.Processed.Values.Single(v => v.GetProperty("type").GetString() == "auto_reply.received").GetProperty("data");
        Assert.Equal("lora@encom.test", robotAnswer.GetProperty("fromAddress").GetString());
        _ = hook;
    }

    /// <summary>
    /// A message to sam with a document of the team, and events on it as the viewer records them (through the
    /// recorder): one per verdict given, with its link address for links followed inside the document (on page 4).
    /// </summary>
    async Task DocumentEventsAsync(TestUser admin, EventKind kind, params (Verdict Verdict, string? Url)[] events)
    {
        var reg = await admin.RegisterAsync(new
        {
            from = admin.Email, subject = "Deck", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1), to = new[] { "sam@encom.test" }, html = "<p>x</p>",
        });
        var messageId = reg.GetProperty("id").GetGuid();
        await app.WithDbAsync(async db =>
        {
            var m = db.Messages.Include(x => x.Recipients).Include(x => x.Copies).Single(x => x.Id == messageId);
            var hash = Convert.ToHexStringLower(Guid.NewGuid().ToByteArray()).PadRight(64, 'a');
            var content = new ContentItem
            {
                TeamId = admin.TeamId, UserId = admin.Id, Name = "Grid deck.pdf", OriginalSha256 = hash, PdfSha256 = hash, PageCount = 12, CreatedAt = DateTimeOffset.UtcNow,
            };
            db.Contents.Add(content);
            foreach (var (verdict, url) in events)
            {
                db.Events.Add(new TrackingEvent
                {
                    TeamId = m.TeamId, UserId = m.UserId, TrackedMessageId = m.Id, CopyId = m.Copies[0].Id, RecipientId = m.Recipients[0].Id,
                    Kind = kind, OccurredAt = DateTimeOffset.UtcNow, Verdict = verdict, Reason = verdict.ToString(), ContentId = content.Id,
                    Page = url is null ? null : 4, Url = url,
                });
            }
            await db.SaveChangesAsync();
        });
    }

    [Fact]
    public async Task A_document_read_by_a_person_reaches_the_webhook_with_the_documents_name_and_a_scanners_does_not()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, _) = await HookAsync(receiver, OutboxEventTypes.DocumentViewed);
        await DocumentEventsAsync(admin, EventKind.DocumentView, (Verdict.Scanner, null), (Verdict.Human, null));
        await Until(() => receiver.Processed.Count == 1, "the document view delivered");
        await Task.Delay(800);
        var data = Assert.Single(receiver.Processed.Values).GetProperty("data");
        Assert.Equal("document.viewed", data.GetProperty("type").GetString());
        Assert.Equal("Grid deck.pdf", data.GetProperty("documentName").GetString());
        Assert.Equal("sam@encom.test", data.GetProperty("recipient").GetString());
        Assert.Equal("human", data.GetProperty("verdict").GetString());
        Assert.Equal(JsonValueKind.Null, data.GetProperty("page").ValueKind);
    }

    [Fact]
    public async Task A_link_a_person_followed_inside_a_document_reaches_the_webhook_with_its_address_and_page()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, _) = await HookAsync(receiver, OutboxEventTypes.DocumentLinkFollowed);
        // A person's link, and one a scanner's browser reported.
        await DocumentEventsAsync(admin, EventKind.DocumentLink, (Verdict.Scanner, "https://encom.test/scanned"), (Verdict.Human, "https://encom.test/pricing"));
        await Until(() => receiver.Processed.Count == 1, "the followed link delivered");
        await Task.Delay(800);
        var data = Assert.Single(receiver.Processed.Values).GetProperty("data");
        Assert.Equal("document.link_followed", data.GetProperty("type").GetString());
        Assert.Equal("https://encom.test/pricing", data.GetProperty("linkUrl").GetString());
        Assert.Equal(4, data.GetProperty("page").GetInt32());
        Assert.Equal("Grid deck.pdf", data.GetProperty("documentName").GetString());
        Assert.Equal("sam@encom.test", data.GetProperty("recipient").GetString());
    }

    /// <summary>
    /// A document read through a share link outside any message names no message and no recipient, which every payload
    /// has (and which Salesforce logs a Task on): it goes to no target, and the events after it go out as ever.
    /// </summary>
    [Fact]
    public async Task A_document_read_through_a_share_link_outside_any_message_goes_to_no_target_and_holds_up_nothing()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.DocumentViewed, OutboxEventTypes.DocumentLinkFollowed);
        var item = await admin.UploadOkAsync(await Documents.PdfAsync(2), "Pricing.pdf");
        var share = TestApi.Path(await admin.ShareLinkAsync(item));
        var token = ContentTestApi.Token("http://localhost" + share);
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        var reader = app.Anonymous("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(share)).StatusCode);
        var shareView = app.WithDb(db => db.Events.Single(e => e.ContentId == item.GetProperty("id").GetGuid() && e.Kind == EventKind.DocumentView));
        Assert.Null(shareView.TrackedMessageId);
        Assert.Equal(Verdict.Human, shareView.Verdict);

        await DocumentEventsAsync(admin, EventKind.DocumentView, (Verdict.Human, null));
        await Until(() => receiver.Processed.Count == 1, "the message's document view delivered");
        await Until(() => app.WithDb(db => db.OutboxCursors.Single(c => c.Name == OutboxDispatcher.EventsCursor).Value) > shareView.Id, "the events cursor past the share link's view");
        var data = Assert.Single(receiver.Processed.Values).GetProperty("data");
        Assert.Equal("Grid deck.pdf", data.GetProperty("documentName").GetString());
        Assert.Equal("sam@encom.test", data.GetProperty("recipient").GetString());
        Assert.Single(Deliveries(hook));
    }

    [Fact]
    public async Task Et_lists_dead_letters_and_replays_them()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.MessageSent);
        var team = (await admin.Client.GetJsonAsync("/api/me")).GetProperty("teamName").GetString()!;
        receiver.Behaviour = WebhookReceiver.Mode.Gone;
        await admin.RegisterAsync(new { from = admin.Email, subject = "cli", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(hook).SingleOrDefault()?.State == DeliveryState.Dead, "the dead letter");
        var settings = new Dictionary<string, string> { ["Database__Provider"] = app.Provider, ["ConnectionStrings__Default"] = app.ConnectionString };
        var dir = Directory.CreateTempSubdirectory("et-cli-").FullName;
        var (code, stdout, stderr) = await ServerProcess.RunCliAsync(dir, settings, "outbox", "list", "--team", team, "--state", "dead");
        Assert.True(code == 0, stderr);
        Assert.Contains("\tdead\t", stdout);
        Assert.Contains("message.sent", stdout);
        receiver.Behaviour = WebhookReceiver.Mode.Ok;
        (code, _, stderr) = await ServerProcess.RunCliAsync(dir, settings, "outbox", "replay", "--team", team);
        Assert.True(code == 0, stderr);
        Assert.Contains("1 dead letter goes again", stderr);
        await Until(() => Deliveries(hook).Single().State == DeliveryState.Delivered, "the replayed delivery");
        Assert.Equal(2, (await ServerProcess.RunCliAsync(dir, settings, "outbox", "replay", "--team", "no such team")).Code);
    }

    [Fact]
    public async Task While_the_receiver_is_down_events_wait_and_each_is_processed_once_when_it_returns()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.MessageSent);
        var o = app.Services.GetRequiredService<IOptions<OutboxOptions>>().Value;
        var maxAttempts = o.MaxAttempts;
        o.MaxAttempts = 1000; // an outage longer than the test's quick back-off would otherwise make dead letters
        try
        {
        await receiver.DownAsync();
        for (var i = 0; i < 5; i++)
            await admin.RegisterAsync(new { from = admin.Email, subject = $"m{i}", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(hook).Count == 5 && Deliveries(hook).All(d => d.Attempts >= 1), "failed attempts while down");
        Assert.All(Deliveries(hook), d => Assert.Equal(DeliveryState.Pending, d.State));
        Assert.True(app.WithDb(db => db.DeliveryAttempts.Count(a => Deliveries(hook).Select(x => x.Id).Contains(a.DeliveryId))) >= 5);

        await receiver.UpAsync();
        await Until(() => Deliveries(hook).All(d => d.State == DeliveryState.Delivered), "delivery after the outage");
        Assert.Equal(5, receiver.Processed.Count);
        Assert.Equal(Deliveries(hook).Select(d => d.IdempotencyKey).Order(), receiver.Processed.Keys.Order());
        }
        finally
        {
            o.MaxAttempts = maxAttempts;
        }
    }

    [Fact]
    public async Task A_receiver_that_fails_forever_leaves_a_dead_letter_which_a_replay_delivers_with_the_same_key()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.MessageSent);
        receiver.Behaviour = WebhookReceiver.Mode.Fail500;
        await admin.RegisterAsync(new { from = admin.Email, subject = "dead", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(hook).SingleOrDefault()?.State == DeliveryState.Dead, "the dead letter");
        var dead = Deliveries(hook).Single();
        Assert.Equal(4, dead.Attempts);
        Assert.Contains("500", dead.LastError);
        var log = await admin.Client.GetJsonAsync($"/api/outbox/deliveries?target={hook}&state=dead");
        Assert.Equal(4, log[0].GetProperty("log").GetArrayLength());
        Assert.All(log[0].GetProperty("log").EnumerateArray(), a => Assert.Equal(500, a.GetProperty("statusCode").GetInt32()));

        receiver.Behaviour = WebhookReceiver.Mode.Ok;
        var replay = await admin.Client.PostAsync($"/api/outbox/deliveries/{dead.Id}/replay", null);
        Assert.Equal(1, JsonDocument.Parse(await replay.Content.ReadAsStringAsync()).RootElement.GetProperty("replayed").GetInt32());
        await Until(() => Deliveries(hook).Single().State == DeliveryState.Delivered, "the replayed delivery");
        Assert.Equal(dead.IdempotencyKey, Assert.Single(receiver.Processed.Keys));

        // A receiver that hangs is given up on after the timeout (10 s here) and tried again.
        receiver.Behaviour = WebhookReceiver.Mode.Hang;
        await admin.RegisterAsync(new { from = admin.Email, subject = "slow", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(hook).Count == 2 && Deliveries(hook)[1].Attempts >= 1, "a timed-out attempt");
        Assert.Contains("in time", Deliveries(hook)[1].LastError);
        receiver.Release();
        await Until(() => Deliveries(hook)[1].State == DeliveryState.Delivered, "delivery after the hang");

        // 410 Gone: dead at once.
        receiver.Behaviour = WebhookReceiver.Mode.Gone;
        await admin.RegisterAsync(new { from = admin.Email, subject = "gone", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(hook).Count == 3 && Deliveries(hook)[2].State == DeliveryState.Dead, "the gone endpoint's dead letter");
        Assert.Equal(1, Deliveries(hook)[2].Attempts);
    }

    /// <summary>
    /// A delivery tried very often (replayed again and again) has many attempts: the delivery log, which answers up to
    /// 500 deliveries at a time, shows each one's latest 50, numbered as they were, and how many there are in all.
    /// </summary>
    [Fact]
    public async Task The_delivery_log_shows_each_deliverys_latest_attempts_and_how_many_there_are()
    {
        const string password = "Outbox-Log1";
        var admin = await app.NewUserAsync(role: TeamRole.Admin, password: password);
        var now = DateTimeOffset.UtcNow;
        long id = 0;
        await app.WithDbAsync(async db =>
        {
            var d = new OutboxDelivery
            {
                TeamId = admin.TeamId, TargetKind = WebhookTarget.TargetKind, TargetId = Guid.NewGuid(), EventType = OutboxEventTypes.MessageSent,
                IdempotencyKey = $"evt_{Guid.NewGuid():N}", Payload = "{}", State = DeliveryState.Dead, Attempts = 4, CreatedAt = now, NextAttemptAt = now,
            };
            db.OutboxDeliveries.Add(d);
            await db.SaveChangesAsync();
            id = d.Id;
            for (var n = 1; n <= 120; n++)
            {
                db.DeliveryAttempts.Add(new DeliveryAttempt
                {
                    DeliveryId = id, At = now.AddMinutes(n - 120), StatusCode = 500, Outcome = nameof(DeliveryOutcome.Retry), Detail = $"attempt {n}",
                });
            }
            await db.SaveChangesAsync();
        });

        var listed = (await admin.Client.GetJsonAsync("/api/outbox/deliveries?state=dead")).EnumerateArray().Single(d => d.GetProperty("id").GetInt64() == id);
        Assert.Equal(120, listed.GetProperty("logged").GetInt32());
        var log = listed.GetProperty("log").EnumerateArray().ToList();
        Assert.Equal(50, log.Count);
        Assert.Equal(Enumerable.Range(71, 50), log.Select(a => a.GetProperty("number").GetInt32()));
        Assert.Equal(Enumerable.Range(71, 50).Select(n => $"attempt {n}"), log.Select(a => a.GetProperty("detail").GetString()));

        using var browser = await WebSignIn.SignInAsync(app, admin.Email, password);
        var page = await browser.GetStringAsync($"/webhooks/deliveries/{id}");
        Assert.Contains("The last 50 of 120 attempts.", page);
        Assert.Contains("attempt 120", page);
        Assert.DoesNotContain("attempt 70<", page);
        Assert.Contains("Attempts (the last 50 of 120)", await browser.GetStringAsync("/webhooks/deliveries?state=dead"));
    }

    /// <summary>One admin with two webhooks, each receiver having taken one event: a payload the receivers accept.</summary>
    async Task<(TestUser Admin, Guid SlowHook, Guid FastHook, OutboxDelivery Template)> TwoHooksAsync(WebhookReceiver slow, WebhookReceiver fast)
    {
        var (admin, slowHook) = await HookAsync(slow);
        var res = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = fast.Url, eventTypes = OutboxEventTypes.All });
        var created = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        fast.Secret = created.GetProperty("secret").GetString();
        var fastHook = created.GetProperty("webhook").GetProperty("id").GetGuid();
        await admin.RegisterAsync(new { from = admin.Email, subject = "first", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(fastHook).SingleOrDefault()?.State == DeliveryState.Delivered && Deliveries(slowHook).SingleOrDefault()?.State == DeliveryState.Delivered,
            "the first event at both receivers");
        return (admin, slowHook, fastHook, Deliveries(fastHook).Single());
    }

    /// <summary>Deliveries of the template's payload to these webhooks, in this order, all due now (one claim takes them).</summary>
    Task AddDueAsync(OutboxDelivery template, string keyPrefix, params Guid[] hooks) => app.WithDbAsync(async db =>
    {
        var now = DateTimeOffset.UtcNow;
        for (var n = 0; n < hooks.Length; n++)
        {
            db.OutboxDeliveries.Add(new OutboxDelivery
            {
                TeamId = template.TeamId, TargetKind = template.TargetKind, TargetId = hooks[n], EventType = template.EventType,
                IdempotencyKey = $"{keyPrefix}-{n}-{Guid.NewGuid():N}", Payload = template.Payload, CreatedAt = now, NextAttemptAt = now,
            });
        }
        await db.SaveChangesAsync();
    });

    /// <summary>
    /// A receiver (or a gateway before it) that rate limits answers 429: its deliveries wait it out without using up
    /// attempts (here 4), where counted as failures they would be dead letters within seconds.
    /// </summary>
    [Fact]
    public async Task A_receiver_that_rate_limits_is_waited_for_without_using_up_attempts()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.MessageSent);
        receiver.Behaviour = WebhookReceiver.Mode.RateLimited;
        await admin.RegisterAsync(new { from = admin.Email, subject = "limited", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        var maxAttempts = app.Services.GetRequiredService<IOptions<OutboxOptions>>().Value.MaxAttempts;
        List<DeliveryAttempt> Attempts() => app.WithDb(db => db.DeliveryAttempts.Where(a => db.OutboxDeliveries.Any(d => d.Id == a.DeliveryId && d.TargetId == hook)).ToList());
        await Until(() => Attempts().Count > maxAttempts + 1, $"more than {maxAttempts + 1} attempts");
        var waiting = Assert.Single(Deliveries(hook));
        Assert.Equal(DeliveryState.Pending, waiting.State);
        Assert.Equal(0, waiting.Attempts);
        Assert.All(Attempts(), a => Assert.Equal((nameof(DeliveryOutcome.Limited), 429), (a.Outcome, a.StatusCode ?? 0)));

        receiver.Behaviour = WebhookReceiver.Mode.Ok;
        await Until(() => Deliveries(hook).Single().State == DeliveryState.Delivered, "the delivery once the limit passed");
        Assert.Equal(1, Deliveries(hook).Single().Attempts);
        Assert.Single(receiver.Processed);
    }

    [Fact]
    public async Task A_receiver_that_hangs_holds_up_only_its_own_deliveries()
    {
        await using var slow = await WebhookReceiver.StartAsync();
        await using var fast = await WebhookReceiver.StartAsync();
        var (_, slowHook, fastHook, template) = await TwoHooksAsync(slow, fast);

        // Four more, due at once and claimed together, the hanging receiver's first: slow, fast, slow, fast.
        slow.Behaviour = WebhookReceiver.Mode.Hang;
        await AddDueAsync(template, "lane", slowHook, fastHook, slowHook, fastHook);

        // The fast receiver gets both while the hanging one's first attempt is still held (until the test releases it
        // or the 10 s timeout); one after another, the fast one's would each have waited behind a hang.
        await Until(() => Deliveries(fastHook).Count(d => d.State == DeliveryState.Delivered) == 3, "the fast receiver's deliveries");
        var slowIds = Deliveries(slowHook).Skip(1).Select(d => d.Id).ToList();
        Assert.Equal(2, slowIds.Count);
        Assert.False(app.WithDb(db => db.DeliveryAttempts.Any(a => slowIds.Contains(a.DeliveryId))),
            "a hanging receiver's attempt ended before the other receiver's deliveries went out");
        slow.Release();
        await Until(() => Deliveries(slowHook).All(d => d.State == DeliveryState.Delivered), "the slow receiver's deliveries once it answers");
    }

    [Fact]
    public async Task Events_that_happen_while_a_receiver_hangs_reach_the_other_receivers_at_once()
    {
        await using var slow = await WebhookReceiver.StartAsync();
        await using var fast = await WebhookReceiver.StartAsync();
        var (admin, slowHook, fastHook, template) = await TwoHooksAsync(slow, fast);

        // The slow receiver now holds each of three deliveries due at once (until released, or the 10 s timeout).
        slow.Behaviour = WebhookReceiver.Mode.Hang;
        await AddDueAsync(template, "hang", slowHook, slowHook, slowHook);
        var before = slow.Requests.Count;
        await Until(() => slow.Requests.Count > before, "the slow receiver's first hanging request");

        // Meanwhile a new event: the fast receiver gets it while the slow one is still on its three.
        await admin.RegisterAsync(new { from = admin.Email, subject = "meanwhile", perRecipient = false, sentAt = DateTimeOffset.UtcNow, to = new[] { "sam@encom.test" }, html = "<p>x</p>" });
        await Until(() => Deliveries(fastHook).Count(d => d.State == DeliveryState.Delivered) == 2, "the new event at the fast receiver");
        // Of the three it hangs on, the last has not even been tried yet.
        Assert.Contains(Deliveries(slowHook), d => d.IdempotencyKey.StartsWith("hang-", StringComparison.Ordinal) && d.Attempts == 0);

        slow.Release();
        await Until(() => Deliveries(slowHook).Count == 5 && Deliveries(slowHook).All(d => d.State == DeliveryState.Delivered), "the slow receiver's deliveries once it answers");
        NoDuplicatesButAfterLostAnswers(fast, fastHook);
    }

    [Fact]
    public async Task Events_gone_over_again_after_the_events_cursor_moved_back_do_not_hold_up_the_ones_after_them()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver, OutboxEventTypes.LinkClicked);
        async Task<Guid> ClickAsync(string subject)
        {
            var reg = await admin.RegisterAsync(new
            {
                from = admin.Email, subject, perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
                to = new[] { "sam@encom.test" }, html = "<p>See <a href=\"https://encom.test/deck\">the deck</a></p>",
            });
            var click = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!);
            using var person = app.Anonymous();
            await person.GetAsync(click);
            return reg.GetProperty("id").GetGuid();
        }
        var first = await ClickAsync("First");
        await Until(() => Deliveries(hook).Count == 1, "the first click's delivery");

        // Two dispatchers each saved the cursor (no deliveries of its own), the slower one last: it is back before the click.
        var clickId = app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == first && e.Kind == EventKind.Click).Select(e => e.Id).Min());
        await app.WithDbAsync(db => db.OutboxCursors.Where(c => c.Name == OutboxDispatcher.EventsCursor).ExecuteUpdateAsync(u => u.SetProperty(c => c.Value, clickId - 1)));
        await ClickAsync("Second");
        await Until(() => Deliveries(hook).Count == 2, "the second click's delivery");
        await Until(() => receiver.Processed.Count == 2, "both clicks at the receiver");
        NoDuplicatesButAfterLostAnswers(receiver, hook);
    }

    [Fact]
    public async Task A_webhook_whose_event_types_are_null_is_refused()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var res = await admin.Client.PostAsync("/api/webhooks", new StringContent(
            """{"url":"https://hooks.example.com/et","eventTypes":[null]}""", System.Text.Encoding.UTF8, "application/json"));
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.BadRequest, $"{(int)res.StatusCode} {text}");
        Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("errors").TryGetProperty("eventTypes", out _));
        Assert.Empty((await admin.Client.GetJsonAsync("/api/webhooks")).EnumerateArray());
    }

    [Fact]
    public async Task The_delivery_log_pages_past_its_newest_with_before_and_shows_each_delivery_once()
    {
        // A receiver down for a day leaves more dead letters than one page holds (500 at most): the older ones were out of reach.
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var other = await app.NewUserAsync(role: TeamRole.Admin);
        var target = Guid.NewGuid();
        await app.WithDbAsync(async db =>
        {
            foreach (var team in new[] { admin.TeamId, other.TeamId })
            {
                for (var i = 0; i < 7; i++)
                {
                    db.OutboxDeliveries.Add(new OutboxDelivery
                    {
                        TeamId = team, TargetKind = WebhookTarget.TargetKind, TargetId = target, EventType = OutboxEventTypes.ReplyReceived,
                        IdempotencyKey = $"evt_{Guid.NewGuid():N}", Payload = "{}", State = DeliveryState.Dead, Attempts = 4,
                        CreatedAt = DateTimeOffset.UtcNow, NextAttemptAt = DateTimeOffset.UtcNow, LastError = "The receiver answered 503.",
                    });
                }
            }
            await db.SaveChangesAsync();
        });
        var expected = app.WithDb(db => db.OutboxDeliveries.Where(d => d.TeamId == admin.TeamId).OrderByDescending(d => d.Id).Select(d => d.Id).ToList());

        var seen = new List<long>();
        var url = "/api/outbox/deliveries?state=dead&take=3";
        for (var pages = 0; pages < 10; pages++)
        {
            var page = (await admin.Client.GetJsonAsync(url)).EnumerateArray().Select(d => d.GetProperty("id").GetInt64()).ToList();
            if (page.Count == 0) break;
            seen.AddRange(page);
            url = $"/api/outbox/deliveries?state=dead&take=3&before={page[^1]}";
        }
        Assert.Equal(expected, seen);

        foreach (var bad in new[] { "0", "-1" })
        {
            var res = await admin.Client.GetAsync($"/api/outbox/deliveries?before={bad}");
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Contains("before", await res.Content.ReadAsStringAsync());
        }
    }

    [Fact]
    public void The_webhook_client_connects_by_itself_never_through_a_proxy()
    {
        // Through a proxy (HTTPS_PROXY in the server's environment) the guard would check the proxy's address, not the
        // receiver's: a proxy on a private address refuses every webhook, an allowed one carries any URL to a private address.
        HttpMessageHandler? h = app.Services.GetRequiredService<IHttpMessageHandlerFactory>().CreateHandler(WebhookTarget.HttpClientName);
        while (h is DelegatingHandler d) h = d.InnerHandler;
        Assert.False(Assert.IsType<SocketsHttpHandler>(h).UseProxy);
    }

    [Fact]
    public async Task Webhooks_are_admin_only_validated_and_invisible_to_other_teams()
    {
        await using var receiver = await WebhookReceiver.StartAsync();
        var (admin, hook) = await HookAsync(receiver);
        var teamName = (await admin.Client.GetJsonAsync("/api/me")).GetProperty("teamName").GetString();
        var member = await app.NewUserAsync(team: teamName);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.Client.GetAsync("/api/webhooks")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await member.Client.PostAsJsonAsync("/api/webhooks", new { url = receiver.Url, eventTypes = new[] { "message.sent" } })).StatusCode);
        var bad = await admin.Client.PostAsJsonAsync("/api/webhooks", new { url = "ftp://x.test/", eventTypes = new[] { "message.exploded" } });
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        var errors = JsonDocument.Parse(await bad.Content.ReadAsStringAsync()).RootElement.GetProperty("errors");
        Assert.True(errors.TryGetProperty("url", out _));
        Assert.Contains("message.exploded", errors.GetProperty("eventTypes")[0].GetString());
        var otherAdmin = await app.NewUserAsync(role: TeamRole.Admin);
        Assert.Equal(HttpStatusCode.NotFound, (await otherAdmin.Client.PutAsJsonAsync($"/api/webhooks/{hook}", new { url = receiver.Url, eventTypes = new[] { "message.sent" } })).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherAdmin.Client.DeleteAsync($"/api/webhooks/{hook}")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await otherAdmin.Client.PostAsync($"/api/webhooks/{hook}/secret", null)).StatusCode);
        Assert.Empty((await otherAdmin.Client.GetJsonAsync("/api/webhooks")).EnumerateArray());
        Assert.Empty((await otherAdmin.Client.GetJsonAsync("/api/outbox/deliveries")).EnumerateArray());
    }
}

public sealed class OutboxOnSqlite(OutboxSqliteApp app) : OutboxTests(app), IClassFixture<OutboxSqliteApp>;

public sealed class OutboxOnPostgres(OutboxPostgresApp app) : OutboxTests(app), IClassFixture<OutboxPostgresApp>;

/// <summary>Where webhooks may point, and the signature a receiver checks.</summary>
public sealed class WebhookGuardTests
{
    static WebhookGuard Guard(bool allowHttp = false, bool allowPrivate = false) =>
        new(new OptionsMonitorStub(new WebhookOptions { AllowHttp = allowHttp, AllowPrivateTargets = allowPrivate }));

    sealed class OptionsMonitorStub(WebhookOptions value) : IOptionsMonitor<WebhookOptions>
    {
        public WebhookOptions CurrentValue => value;
        public WebhookOptions Get(string? name) => value;
        public IDisposable? OnChange(Action<WebhookOptions, string?> listener) => null;
    }

    [Theory]
    [InlineData("https://hooks.example.com/et", null)]
    [InlineData("http://hooks.example.com/et", "https")]
    [InlineData("https://user:pw@hooks.example.com/et", "user name")]
    [InlineData("https://127.0.0.1/et", "not a public address")]
    [InlineData("https://10.1.2.3/et", "not a public address")]
    [InlineData("https://192.168.1.1/et", "not a public address")]
    [InlineData("https://169.254.169.254/latest/meta-data", "not a public address")]
    [InlineData("https://[::1]/et", "not a public address")]
    [InlineData("https://[fd00::1]/et", "not a public address")]
    [InlineData("https://localhost/et", "this machine")]
    [InlineData("https://localhost./et", "this machine")] // the root's dot: the same host
    [InlineData("https://LocalHost./et", "this machine")]
    [InlineData("https://169.254.169.254./latest/meta-data", "not a public address")]
    [InlineData("https://127.0.0.1./et", "not a public address")]
    [InlineData("https://hooks.example.com./et", null)]
    [InlineData("https://[::ffff:127.0.0.1]/et", "not a public address")]
    [InlineData("https://[::ffff:10.0.0.1]/et", "not a public address")]
    [InlineData("https://0.0.0.0/et", "not a public address")]
    [InlineData("https://2130706433/et", "not a public address")]
    [InlineData("https://0177.0.0.1/et", "not a public address")]
    [InlineData("https://0x7f.0.0.1/et", "not a public address")]
    [InlineData("https://[::]/et", "not a public address")]
    [InlineData("https://[64:ff9b::a9fe:a9fe]/et", "not a public address")] // NAT64 to 169.254.169.254
    [InlineData("https://[64:ff9b::7f00:1]/et", "not a public address")] // NAT64 to 127.0.0.1
    [InlineData("https://[64:ff9b:1::a00:1]/et", "not a public address")] // local-use NAT64
    [InlineData("https://[::127.0.0.1]/et", "not a public address")] // IPv4-compatible
    [InlineData("https://[::ffff:0:127.0.0.1]/et", "not a public address")] // IPv4-translated
    [InlineData("https://[2002:7f00:1::]/et", "not a public address")] // 6to4 of 127.0.0.1
    [InlineData("https://[2001:0:4136:e378::1]/et", "not a public address")] // Teredo
    [InlineData("https://[ff02::1]/et", "not a public address")]
    [InlineData("https://[fe80::1]/et", "not a public address")]
    [InlineData("https://[2606:4700::6810:84e5]/et", null)] // global unicast
    [InlineData("https://[64:ff9b::8.8.8.8]/et", null)] // NAT64 to a public address
    [InlineData("https://[2002:808:808::1]/et", null)] // 6to4 of a public address
    [InlineData("not a url", "absolute")]
    public void Production_settings_refuse_what_is_not_https_to_a_public_address(string url, string? why)
    {
        var problem = Guard().Check(url);
        if (why is null) Assert.Null(problem);
        else Assert.Contains(why, problem);
    }

    [Fact]
    public async Task The_address_actually_connected_to_is_checked_too()
    {
        // "localhost" passes no URL check when private targets are allowed, but with them refused the connection is.
        var guard = Guard();
        var ex = await Assert.ThrowsAsync<HttpRequestException>(async () =>
            await guard.ConnectAsync(new SocketsHttpConnectionContextFake("127.0.0.1", 9).Context, CancellationToken.None));
        Assert.Contains("no public address", ex.Message);
        Assert.True(Guard(allowHttp: true, allowPrivate: true).Check("http://127.0.0.1:5000/x") is null);
    }

    [Fact]
    public void A_signature_holds_for_its_body_and_secret_and_only_while_recent()
    {
        const string secret = "whsec_test";
        var now = DateTimeOffset.UtcNow;
        var header = WebhookSignature.Sign(secret, now.ToUnixTimeSeconds(), "{\"a\":1}");
        Assert.Matches("^t=[0-9]+,v1=[0-9a-f]{64}$", header);
        Assert.True(WebhookSignature.Verify(secret, header, "{\"a\":1}", now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify(secret, header, "{\"a\":2}", now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify("whsec_other", header, "{\"a\":1}", now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify(secret, header, "{\"a\":1}", now.AddMinutes(6), TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify(secret, null, "{\"a\":1}", now, TimeSpan.FromMinutes(5)));
        Assert.False(WebhookSignature.Verify(secret, "t=x,v1=y", "{\"a\":1}", now, TimeSpan.FromMinutes(5)));
    }
}

/// <summary>SocketsHttpConnectionContext has no public constructor: one is made through a real request's callback.</summary>
sealed class SocketsHttpConnectionContextFake
{
    public SocketsHttpConnectionContext Context { get; }

    public SocketsHttpConnectionContextFake(string host, int port)
    {
        SocketsHttpConnectionContext? captured = null;
        using var handler = new SocketsHttpHandler
        {
            ConnectCallback = (ctx, _) =>
            {
                captured = ctx;
                throw new OperationCanceledException("captured");
            },
        };
        using var client = new HttpClient(handler);
        try
        {
            client.GetAsync($"http://{host}:{port}/").GetAwaiter().GetResult();
        }
        catch (Exception)
        {
        }
        Context = captured ?? throw new InvalidOperationException("no connection context");
    }
}
