using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Messages;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Sequences;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Api;

/// <summary>The server with an IMAP mailbox's sending through <see cref="RecordingTransport"/> and the idempotency keys' clock fake.</summary>
public abstract class IdempotencyApp(DatabaseProvider provider) : AppFactory(provider)
{
    public FakeTimeProvider Clock { get; } = new(DateTimeOffset.UtcNow);
    public RecordingTransport Transport { get; } = new();

    protected override void Configure(IWebHostBuilder builder) => builder.ConfigureServices(s =>
    {
        s.AddKeyedSingleton<TimeProvider>(IdempotencyKeys.ClockKey, Clock);
        s.AddKeyedScoped<IMailTransport>(MailboxKind.Imap, (_, _) => Transport);
        s.AddKeyedScoped<IMailboxWatch, NoWatch>(MailboxKind.Imap);
    });

    /// <summary>An active IMAP mailbox for the user's own address (its credentials are never used: the transport records).</summary>
    public async Task MailboxAsync(TestUser user) => await WithDbAsync(async db =>
    {
        db.Mailboxes.Add(new MailboxConnection
        {
            TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email, Status = MailboxStatus.Active,
            ProtectedSecret = "unused", CreatedAt = DateTimeOffset.UtcNow,
        });
        await db.SaveChangesAsync();
    });
}

/// <summary>Sends with an Idempotency-Key through a real transport, and puts the database back as a crash would have left it.</summary>
public static class StoppedSends
{
    public static async Task<(HttpResponseMessage Response, string Text)> SendAsync(TestUser user, object body, string key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, "/api/messages/send") { Content = JsonContent.Create(body, options: TestApi.Json) };
        request.Headers.TryAddWithoutValidation(IdempotencyKeys.Header, key);
        var res = await user.Client.SendAsync(request);
        return (res, await res.Content.ReadAsStringAsync());
    }

    /// <summary>
    /// What the process dying just after the transport sent the copies leaves: the message registered and not recorded
    /// as sent (no send time, no Message-ID or thread from the provider), the key unanswered, its lease run out.
    /// </summary>
    public static Task RewindAsync(AppFactory app, Guid messageId) => app.WithDbAsync(async db =>
    {
        await db.Messages.Where(m => m.Id == messageId).ExecuteUpdateAsync(u => u.SetProperty(m => m.SentAt, (DateTimeOffset?)null));
        await db.Copies.Where(c => c.TrackedMessageId == messageId)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.SentMessageIdHeader, (string?)null).SetProperty(c => c.ProviderThreadId, (string?)null));
        var past = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(1);
        Assert.Equal(1, await db.IdempotencyKeys.Where(k => k.MessageId == messageId)
            .ExecuteUpdateAsync(u => u.SetProperty(k => k.ResponseStatus, (int?)null).SetProperty(k => k.ResponseBody, (string?)null).SetProperty(k => k.LeaseUntil, past)));
    });
}

public sealed class IdempotencySqliteApp() : IdempotencyApp(DatabaseProvider.Sqlite);

public sealed class IdempotencyPostgresApp() : IdempotencyApp(DatabaseProvider.Postgres);

/// <summary>
/// The Idempotency-Key header on POST /api/messages and /api/messages/send: a retry answers the first request's
/// answer and sends nothing again, whatever the timing; a changed request, a bad key and an expired key are told apart.
/// </summary>
public abstract class IdempotencyTests(IdempotencyApp app)
{
    static string Recipient() => $"r{Guid.NewGuid():N}"[..12] + "@encom.test";

    static string SendBody(TestUser user, string to, string subject = "Proposal") => JsonSerializer.Serialize(new
    {
        from = user.Email, subject, to = new[] { to }, html = "<p>Hello, <a href=\"https://encom.test/deck\">the deck</a>.</p>",
    });

    static async Task<HttpResponseMessage> PostAsync(TestUser user, string path, string json, string? key)
    {
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(json, Encoding.UTF8, "application/json") };
        if (key is not null) request.Headers.TryAddWithoutValidation(IdempotencyKeys.Header, key);
        return await user.Client.SendAsync(request);
    }

    static bool Replayed(HttpResponseMessage res) =>
        res.Headers.TryGetValues(IdempotencyKeys.ReplayedHeader, out var values) && values.Single() == "true";

    static async Task<JsonElement> ProblemAsync(HttpResponseMessage res, HttpStatusCode status)
    {
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(status == res.StatusCode, $"expected {(int)status}, got {(int)res.StatusCode}: {text}");
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        return JsonDocument.Parse(text).RootElement.Clone();
    }

    int Messages(TestUser user) => app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id));

    async Task<TestUser> SenderAsync()
    {
        var user = await app.NewUserAsync();
        await app.MailboxAsync(user);
        return user;
    }

    [Fact]
    public async Task A_send_retried_with_its_key_answers_the_first_answer_and_sends_once()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        var first = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        var firstText = await first.Content.ReadAsStringAsync();
        Assert.True(first.StatusCode == HttpStatusCode.Created, firstText);
        Assert.False(Replayed(first));

        // The same request, its fields in another order and spacing: the same request.
        var again = await PostAsync(user, "/api/messages/send",
            $$"""{ "html": "<p>Hello, <a href=\"https://encom.test/deck\">the deck</a>.</p>",  "to": ["{{to}}"], "subject": "Proposal", "from": "{{user.Email}}" }""", key);
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        Assert.True(Replayed(again));
        Assert.Equal(firstText, await again.Content.ReadAsStringAsync());
        Assert.Equal(first.Headers.Location, again.Headers.Location);
        Assert.Equal("application/json", again.Content.Headers.ContentType?.MediaType);

        Assert.Single(app.Transport.To(to));
        Assert.Equal(1, Messages(user));

        // The key is the user's own: another user's request with it is theirs.
        var other = await SenderAsync();
        var theirs = await PostAsync(other, "/api/messages/send", SendBody(other, to), key);
        Assert.Equal(HttpStatusCode.Created, theirs.StatusCode);
        Assert.False(Replayed(theirs));
        Assert.Equal(2, app.Transport.To(to).Count);
    }

    [Fact]
    public async Task A_registration_retried_with_its_key_answers_the_same_id_and_tracked_html()
    {
        var user = await app.NewUserAsync();
        var body = JsonSerializer.Serialize(new { from = user.Email, subject = "Deck", to = new[] { "alan@encom.test", "lora@encom.test" }, html = "<p><a href=\"https://encom.test/x\">x</a></p>" });
        var key = "crm-sync/42:opportunity#7 retry";
        var first = await PostAsync(user, "/api/messages", body, key);
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var again = await PostAsync(user, "/api/messages", body, key);
        Assert.Equal(HttpStatusCode.Created, again.StatusCode);
        Assert.True(Replayed(again));
        var a = JsonDocument.Parse(await first.Content.ReadAsStringAsync()).RootElement;
        var b = JsonDocument.Parse(await again.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(a.GetProperty("id").GetGuid(), b.GetProperty("id").GetGuid());
        Assert.Equal(a.GetProperty("copies")[1].GetProperty("html").GetString(), b.GetProperty("copies")[1].GetProperty("html").GetString());
        Assert.Equal(a.GetRawText(), b.GetRawText());
        Assert.Equal(1, Messages(user));
        Assert.Equal(2, app.WithDb(db => db.Copies.Count(c => c.UserId == user.Id)));

        // Without a key, the same request is another message, as before.
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(user, "/api/messages", body, null)).StatusCode);
        Assert.Equal(2, Messages(user));
    }

    [Fact]
    public async Task The_same_key_with_another_request_is_a_422_and_nothing_is_sent()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString("N");
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(user, "/api/messages/send", SendBody(user, to), key)).StatusCode);

        var changed = await PostAsync(user, "/api/messages/send", SendBody(user, to, subject: "Proposal (v2)"), key);
        var problem = await ProblemAsync(changed, HttpStatusCode.UnprocessableEntity);
        Assert.Equal("This Idempotency-Key was used for a different request.", problem.GetProperty("title").GetString());
        Assert.Contains("use a new key for a new request", problem.GetProperty("detail").GetString());
        Assert.False(Replayed(changed));

        // The same key on the other endpoint is another request too.
        var register = await PostAsync(user, "/api/messages", SendBody(user, to), key);
        await ProblemAsync(register, HttpStatusCode.UnprocessableEntity);

        Assert.Single(app.Transport.To(to));
        Assert.Equal(1, Messages(user));
    }

    [Fact]
    public async Task A_retry_while_the_first_is_sending_is_a_409_with_retry_after_then_the_replay()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        var sending = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var release = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        app.Transport.WhileSending[to] = async () =>
        {
            sending.SetResult();
            await release.Task;
        };
        var first = PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        await sending.Task.WaitAsync(TimeSpan.FromSeconds(20));

        var meanwhile = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        var problem = await ProblemAsync(meanwhile, HttpStatusCode.Conflict);
        Assert.Equal("A request with this Idempotency-Key is still in progress.", problem.GetProperty("title").GetString());
        Assert.Equal(TimeSpan.FromSeconds(IdempotencyKeys.RetryAfterSeconds), meanwhile.Headers.RetryAfter?.Delta);

        release.SetResult();
        var answered = await first;
        Assert.Equal(HttpStatusCode.Created, answered.StatusCode);
        var after = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.Equal(HttpStatusCode.Created, after.StatusCode);
        Assert.True(Replayed(after));
        Assert.Equal(await answered.Content.ReadAsStringAsync(), await after.Content.ReadAsStringAsync());
        Assert.Single(app.Transport.To(to));
    }

    [Fact]
    public async Task Requests_with_the_same_key_at_the_same_instant_send_once()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        using var go = new ManualResetEventSlim();
        var requests = Enumerable.Range(0, 8).Select(_ => Task.Run(async () =>
        {
            go.Wait();
            var res = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
            return (res, Text: await res.Content.ReadAsStringAsync());
        })).ToList();
        go.Set();
        var answers = await Task.WhenAll(requests);

        Assert.Single(app.Transport.To(to));
        Assert.Equal(1, Messages(user));
        var made = Assert.Single(answers, a => a.res.StatusCode == HttpStatusCode.Created && !Replayed(a.res));
        foreach (var (res, text) in answers.Where(a => a.res != made.res))
        {
            if (res.StatusCode == HttpStatusCode.Created)
            {
                Assert.True(Replayed(res));
                Assert.Equal(made.Text, text);
            }
            else
            {
                Assert.True(res.StatusCode == HttpStatusCode.Conflict, $"{(int)res.StatusCode}: {text}");
                Assert.NotNull(res.Headers.RetryAfter);
            }
        }

        // Registrations the same.
        var body = JsonSerializer.Serialize(new { from = user.Email, subject = "At once", to = new[] { to }, html = "<p>x</p>" });
        var registrations = await Task.WhenAll(Enumerable.Range(0, 8).Select(_ => Task.Run(() => PostAsync(user, "/api/messages", body, "register-" + key))));
        Assert.Equal(2, Messages(user));
        Assert.Single(registrations, r => r.StatusCode == HttpStatusCode.Created && !Replayed(r));
        Assert.All(registrations, r => Assert.True(r.StatusCode is HttpStatusCode.Created or HttpStatusCode.Conflict, r.StatusCode.ToString()));
    }

    [Theory]
    [InlineData("   ")]
    [InlineData("clé-über")]
    [InlineData("tab\tinside")]
    [InlineData("256")]
    public async Task A_key_that_is_not_1_to_255_printable_ascii_characters_is_a_400_and_nothing_is_made(string key)
    {
        if (key == "256") key = new string('k', 256);
        var user = await SenderAsync();
        var to = Recipient();
        foreach (var path in new[] { "/api/messages/send", "/api/messages" })
        {
            var res = await PostAsync(user, path, SendBody(user, to), key);
            var problem = await ProblemAsync(res, HttpStatusCode.BadRequest);
            Assert.Equal("The Idempotency-Key header is not valid.", problem.GetProperty("title").GetString());
        }
        Assert.Empty(app.Transport.To(to));
        Assert.Equal(0, Messages(user));
        Assert.Equal(0, app.WithDb(db => db.IdempotencyKeys.Count(k => k.UserId == user.Id)));

        // 255 printable characters, a space among them, are a key.
        var longest = "k " + new string('~', 253);
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(user, "/api/messages/send", SendBody(user, to), longest)).StatusCode);
        Assert.True(Replayed(await PostAsync(user, "/api/messages/send", SendBody(user, to), longest)));
        Assert.Single(app.Transport.To(to));
    }

    [Fact]
    public async Task A_refused_request_keeps_no_key_so_the_corrected_one_goes_with_it()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        var bad = await PostAsync(user, "/api/messages/send", JsonSerializer.Serialize(new { from = user.Email, subject = "Hi", to = new[] { "not an address" }, html = "<p>x</p>" }), key);
        Assert.Equal(HttpStatusCode.BadRequest, bad.StatusCode);
        Assert.Contains("recipients", await bad.Content.ReadAsStringAsync());
        var fixedSend = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.Equal(HttpStatusCode.Created, fixedSend.StatusCode);
        Assert.False(Replayed(fixedSend));

        var badRegistration = await PostAsync(user, "/api/messages", JsonSerializer.Serialize(new { from = user.Email, subject = "Hi", to = Array.Empty<string>(), html = "<p>x</p>" }), "r" + key);
        Assert.Equal(HttpStatusCode.BadRequest, badRegistration.StatusCode);
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(user, "/api/messages", SendBody(user, to), "r" + key)).StatusCode);

        // A mailbox that could not send sent nothing: the same request with the same key is sent when it can.
        var later = Recipient();
        app.Transport.FailNext[later] = new MailboxException("connection refused", needsReconnect: false);
        var failed = await PostAsync(user, "/api/messages/send", SendBody(user, later), "m" + key);
        Assert.Equal(HttpStatusCode.BadGateway, failed.StatusCode);
        var retried = await PostAsync(user, "/api/messages/send", SendBody(user, later), "m" + key);
        Assert.Equal(HttpStatusCode.Created, retried.StatusCode);
        Assert.False(Replayed(retried));
        Assert.Single(app.Transport.To(later));
        Assert.Equal(3, Messages(user));
    }

    static bool CompletedOnRetry(HttpResponseMessage res) =>
        res.Headers.TryGetValues(IdempotencyKeys.CompletedOnRetryHeader, out var values) && values.Single() == "true";

    [Fact]
    public async Task A_send_that_stopped_after_the_mail_left_is_found_in_sent_and_recorded_not_sent_again()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        app.Transport.CrashAfterSend[to] = true;
        var crashed = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.Equal(HttpStatusCode.InternalServerError, crashed.StatusCode);
        Assert.Single(app.Transport.To(to));
        var message = app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id));
        Assert.Null(message.SentAt);

        var retry = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        var text = await retry.Content.ReadAsStringAsync();
        Assert.True(retry.StatusCode == HttpStatusCode.Created, text);
        Assert.True(CompletedOnRetry(retry));
        Assert.False(Replayed(retry));
        Assert.Single(app.Transport.To(to));
        var sent = JsonDocument.Parse(text).RootElement;
        Assert.Equal(message.Id, sent.GetProperty("id").GetGuid());
        Assert.True(Assert.Single(sent.GetProperty("copies").EnumerateArray()).GetProperty("sent").GetBoolean());
        Assert.Contains("found 1 of 1 copy in the Sent folder", sent.GetProperty("warning").GetString());
        Assert.Equal($"/api/messages/{message.Id}", retry.Headers.Location?.OriginalString);

        // Recorded as a send records it: the send time (the registration's, not later than the mail left) and the thread.
        var copy = app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == message.Id));
        Assert.Equal(message.CreatedAt, app.WithDb(db => db.Messages.Single(m => m.Id == message.Id).SentAt));
        Assert.Equal("thread-of-" + copy.MessageIdHeader, copy.ProviderThreadId);

        // From now on the key answers that answer.
        var replay = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.True(Replayed(replay));
        Assert.Equal(text, await replay.Content.ReadAsStringAsync());
        Assert.Single(app.Transport.To(to));
    }

    [Fact]
    public async Task A_send_that_stopped_between_copies_sends_only_the_copies_not_in_sent_on_retry()
    {
        var user = await SenderAsync();
        var (first, second) = (Recipient(), Recipient());
        var key = Guid.NewGuid().ToString();
        var body = JsonSerializer.Serialize(new
        {
            from = user.Email, subject = "Two copies", to = new[] { first, second }, html = "<p>Hello, <a href=\"https://encom.test/deck\">the deck</a>.</p>",
        });
        app.Transport.CrashAtCopy[second] = true;
        Assert.Equal(HttpStatusCode.InternalServerError, (await PostAsync(user, "/api/messages/send", body, key)).StatusCode);
        // Each copy shows both recipients: told apart by its Message-ID.
        List<MimeKit.MimeMessage> SentTo(string address)
        {
            var id = app.WithDb(db => db.Recipients.Where(r => r.Address == address).Join(db.Copies, r => r.CopyId, c => c.Id, (_, c) => c.MessageIdHeader).Single());
            return [.. app.Transport.Sent.Where(m => m.MessageId == id)];
        }
        Assert.Single(SentTo(first));
        Assert.Empty(SentTo(second));

        var retry = await PostAsync(user, "/api/messages/send", body, key);
        var text = await retry.Content.ReadAsStringAsync();
        Assert.True(retry.StatusCode == HttpStatusCode.Created, text);
        Assert.True(CompletedOnRetry(retry));
        Assert.Single(SentTo(first));
        var late = Assert.Single(SentTo(second));
        var sent = JsonDocument.Parse(text).RootElement;
        Assert.Contains("found 1 of 2 copies in the Sent folder", sent.GetProperty("warning").GetString());
        Assert.Contains("sent the other 1 now", sent.GetProperty("warning").GetString());
        var copies = sent.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal([first, second], copies.Select(c => c.GetProperty("recipients")[0].GetString()));
        Assert.All(copies, c => Assert.True(c.GetProperty("sent").GetBoolean()));

        // The late copy is the one registered for it: its Message-ID and pixel, and links that lead where they should.
        var copy = app.WithDb(db => db.Copies.Include(c => c.Links).Single(c => c.Id == copies[1].GetProperty("copyId").GetGuid()));
        Assert.Equal(copy.MessageIdHeader, late.MessageId);
        Assert.Contains(copy.PixelToken, late.HtmlBody);
        var link = Assert.Single(copy.Links.Where(l => late.HtmlBody!.Contains(l.Token, StringComparison.Ordinal)), l => !l.IsHoneypot);
        Assert.Equal("https://encom.test/deck", link.Url);
        // The registration's links stay beside the rebuilt ones (a first mail the Sent folder did not show may have
        // arrived), and lead to the same place.
        Assert.Equal(4, copy.Links.Count);
        Assert.All(copy.Links.Where(l => !l.IsHoneypot), l => Assert.Equal("https://encom.test/deck", l.Url));
        Assert.Equal(1, Messages(user));
    }

    [Fact]
    public async Task A_stopped_send_whose_mailbox_cannot_tell_or_be_asked_is_a_409_that_says_why_and_sends_nothing()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        app.Transport.CrashBeforeSend[to] = true;
        Assert.Equal(HttpStatusCode.InternalServerError, (await PostAsync(user, "/api/messages/send", SendBody(user, to), key)).StatusCode);
        Assert.Empty(app.Transport.To(to));
        var messageId = app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id).Id);
        try
        {
            app.Transport.CanTell = false;
            var undecided = await ProblemAsync(await PostAsync(user, "/api/messages/send", SendBody(user, to), key), HttpStatusCode.Conflict);
            Assert.Contains("is not sent again", undecided.GetProperty("title").GetString());
            Assert.Equal(messageId, undecided.GetProperty("messageId").GetGuid());
            Assert.Equal(RecordingTransport.CannotTell, undecided.GetProperty("reason").GetString());
            Assert.Contains(RecordingTransport.CannotTell, undecided.GetProperty("detail").GetString());

            app.Transport.CanTell = true;
            app.Transport.Unreachable = new MailboxException("The sign-in was refused (expired credentials).", needsReconnect: true);
            var down = await ProblemAsync(await PostAsync(user, "/api/messages/send", SendBody(user, to), key), HttpStatusCode.Conflict);
            Assert.Contains("could not be asked what it sent: The sign-in was refused (expired credentials).", down.GetProperty("reason").GetString());
            Assert.Empty(app.Transport.To(to));
        }
        finally
        {
            app.Transport.CanTell = true;
            app.Transport.Unreachable = null;
        }

        // Once the mailbox answers, a retry finds nothing left and sends it, as the same message.
        var retry = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.True(retry.StatusCode == HttpStatusCode.Created, await retry.Content.ReadAsStringAsync());
        Assert.True(CompletedOnRetry(retry));
        Assert.Single(app.Transport.To(to));
        Assert.Equal(messageId, app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id).Id));
    }

    [Fact]
    public async Task A_stopped_sends_retry_waits_while_the_message_page_is_sending_its_failed_copy_again()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        app.Transport.CrashBeforeSend[to] = true;
        Assert.Equal(HttpStatusCode.InternalServerError, (await PostAsync(user, "/api/messages/send", SendBody(user, to), key)).StatusCode);
        // As if the first request had recorded the copy's failure before it stopped, and "Send again" were sending it now.
        var copyId = app.WithDb(db => db.Copies.Single(c => c.UserId == user.Id).Id);
        app.WithDb(db => db.Copies.Where(c => c.Id == copyId).ExecuteUpdate(u => u
            .SetProperty(c => c.NotSentReason, "451 4.3.0 Try again later").SetProperty(c => c.NotSentAt, DateTimeOffset.UtcNow)
            .SetProperty(c => c.ResendClaim, Guid.NewGuid()).SetProperty(c => c.ResendClaimedAt, DateTimeOffset.UtcNow)));

        var waiting = await ProblemAsync(await PostAsync(user, "/api/messages/send", SendBody(user, to), key), HttpStatusCode.Conflict);
        Assert.Contains("being sent again from its message page", waiting.GetProperty("reason").GetString());
        Assert.Empty(app.Transport.To(to));
        // The resend's claim stands as it was.
        Assert.NotNull(app.WithDb(db => db.Copies.Single(c => c.Id == copyId).ResendClaim));

        // Once the page's resend is done (here: it sent nothing), the retry sends the copy, once.
        app.WithDb(db => db.Copies.Where(c => c.Id == copyId).ExecuteUpdate(u => u.SetProperty(c => c.ResendClaim, (Guid?)null).SetProperty(c => c.ResendClaimedAt, (DateTimeOffset?)null)));
        var retry = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.True(retry.StatusCode == HttpStatusCode.Created, await retry.Content.ReadAsStringAsync());
        Assert.Single(app.Transport.To(to));
        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.Id == copyId));
        Assert.Null(copy.ResendClaim);
        Assert.Null(copy.NotSentReason);
    }

    [Fact]
    public async Task A_send_where_a_copy_failed_says_its_key_answers_that_result_and_how_to_send_the_failed_copy()
    {
        var user = await SenderAsync();
        var (good, refused) = (Recipient(), Recipient());
        app.Transport.Refuse[refused] = true;
        var key = Guid.NewGuid().ToString();
        var body = JsonSerializer.Serialize(new { from = user.Email, subject = "One refused", to = new[] { good, refused }, html = "<p>Hi</p>" });
        var first = await PostAsync(user, "/api/messages/send", body, key);
        var text = await first.Content.ReadAsStringAsync();
        Assert.True(first.StatusCode == HttpStatusCode.Created, text);
        var warning = JsonDocument.Parse(text).RootElement.GetProperty("warning").GetString();
        Assert.Contains("with the same Idempotency-Key it answers this same result", warning);
        var id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid();
        Assert.Contains($"to send only the copies that failed, POST /api/messages/{id}/resend (for 7 days after the send)", warning);

        // Stripe's semantics: the same key, the same result; the failed copy is not tried again.
        var again = await PostAsync(user, "/api/messages/send", body, key);
        Assert.True(Replayed(again));
        Assert.Equal(text, await again.Content.ReadAsStringAsync());
        Assert.Single(app.Transport.Sent, m => m.To.Mailboxes.Any(a => a.Address == good));
    }

    [Fact]
    public async Task A_key_whose_request_died_before_making_its_message_is_taken_over_by_the_retry()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        var body = SendBody(user, to);
        // The first request claimed the key and the server died before it registered anything (its lease has run out).
        var first = await PostAsync(user, "/api/messages/send", body, key);
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        var hash = app.WithDb(db => db.IdempotencyKeys.Single(k => k.UserId == user.Id).RequestHash);
        var died = Guid.NewGuid().ToString();
        var now = app.Clock.GetUtcNow();
        await app.WithDbAsync(async db =>
        {
            db.IdempotencyKeys.Add(new IdempotencyKey
            {
                UserId = user.Id, Key = died, RequestHash = hash, MessageId = Guid.NewGuid(), CreatedAt = now - TimeSpan.FromMinutes(11),
                LeaseUntil = now - TimeSpan.FromMinutes(1),
            });
            await db.SaveChangesAsync();
        });
        var retry = await PostAsync(user, "/api/messages/send", body, died);
        Assert.Equal(HttpStatusCode.Created, retry.StatusCode);
        Assert.False(Replayed(retry));
        Assert.Equal(2, app.Transport.To(to).Count);
        Assert.True(Replayed(await PostAsync(user, "/api/messages/send", body, died)));
        Assert.Equal(2, app.Transport.To(to).Count);
    }

    [Fact]
    public async Task A_key_is_kept_24_hours_then_is_new_and_deleted()
    {
        var user = await SenderAsync();
        var to = Recipient();
        var key = Guid.NewGuid().ToString();
        var first = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.Equal(HttpStatusCode.Created, first.StatusCode);
        app.Clock.Advance(TimeSpan.FromHours(24) - TimeSpan.FromMinutes(1));
        Assert.True(Replayed(await PostAsync(user, "/api/messages/send", SendBody(user, to), key)));
        Assert.Single(app.Transport.To(to));

        app.Clock.Advance(TimeSpan.FromMinutes(2));
        var later = await PostAsync(user, "/api/messages/send", SendBody(user, to), key);
        Assert.Equal(HttpStatusCode.Created, later.StatusCode);
        Assert.False(Replayed(later));
        Assert.NotEqual(await first.Content.ReadAsStringAsync(), await later.Content.ReadAsStringAsync());
        Assert.Equal(2, app.Transport.To(to).Count);

        // A key older than a day that the upkeep (just done, due again in a minute) has not deleted yet is gone all the same.
        var stale = Guid.NewGuid().ToString();
        var hash = app.WithDb(db => db.IdempotencyKeys.Single(k => k.UserId == user.Id && k.Key == key).RequestHash);
        await app.WithDbAsync(async db =>
        {
            var then = app.Clock.GetUtcNow() - TimeSpan.FromHours(25);
            db.IdempotencyKeys.Add(new IdempotencyKey
            {
                UserId = user.Id, Key = stale, RequestHash = hash, MessageId = Guid.NewGuid(), CreatedAt = then, LeaseUntil = then,
                ResponseStatus = 201, ResponseBody = "{}",
            });
            await db.SaveChangesAsync();
        });
        var fresh = await PostAsync(user, "/api/messages/send", SendBody(user, to), stale);
        Assert.Equal(HttpStatusCode.Created, fresh.StatusCode);
        Assert.False(Replayed(fresh));
        Assert.Equal(3, app.Transport.To(to).Count);

        // The upkeep deletes the keys older than a day, whoever's they are, at the next request with a key after it.
        var other = Guid.NewGuid().ToString();
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(user, "/api/messages", SendBody(user, to), other)).StatusCode);
        app.Clock.Advance(TimeSpan.FromHours(25));
        var stranger = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.Created, (await PostAsync(stranger, "/api/messages", SendBody(stranger, to), "any")).StatusCode);
        Assert.Equal(0, app.WithDb(db => db.IdempotencyKeys.Count(k => k.UserId == user.Id)));
        Assert.Equal(1, app.WithDb(db => db.IdempotencyKeys.Count(k => k.UserId == stranger.Id)));
    }

    [Fact]
    public async Task Swagger_documents_the_header_on_both_endpoints()
    {
        var doc = await app.Anonymous().GetJsonAsync("/swagger/v1/swagger.json");
        foreach (var path in new[] { "/api/messages", "/api/messages/send" })
        {
            var post = doc.GetProperty("paths").GetProperty(path).GetProperty("post");
            var header = post.GetProperty("parameters").EnumerateArray().Single(p => p.GetProperty("name").GetString() == "Idempotency-Key");
            Assert.Equal("header", header.GetProperty("in").GetString());
            Assert.Equal(255, header.GetProperty("schema").GetProperty("maxLength").GetInt32());
            Assert.True(post.GetProperty("responses").GetProperty("201").GetProperty("headers").TryGetProperty("Idempotent-Replayed", out _));
            Assert.True(post.GetProperty("responses").TryGetProperty("422", out _));
            Assert.Equal(path.EndsWith("/send", StringComparison.Ordinal),
                post.GetProperty("responses").GetProperty("201").GetProperty("headers").TryGetProperty(IdempotencyKeys.CompletedOnRetryHeader, out _));
        }
        Assert.False(doc.GetProperty("paths").GetProperty("/api/messages/{id}").GetProperty("get").TryGetProperty("parameters", out var ps)
                     && ps.EnumerateArray().Any(p => p.GetProperty("name").GetString() == "Idempotency-Key"));
    }
}

public sealed class IdempotencyOnSqlite(IdempotencySqliteApp app) : IdempotencyTests(app), IClassFixture<IdempotencySqliteApp>;

public sealed class IdempotencyOnPostgres(IdempotencyPostgresApp app) : IdempotencyTests(app), IClassFixture<IdempotencyPostgresApp>;
