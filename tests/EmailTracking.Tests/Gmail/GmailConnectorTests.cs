using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Mailboxes.Gmail;
using EmailTracking.Server.Messages;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.WebUtilities;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Gmail;

/// <summary>
/// The Gmail connector end to end against a fake Google: OAuth consent, sending through the API, the history watch
/// woken by verified Pub/Sub pushes, resync after lost history, restarts, and revoked access.
/// </summary>
public abstract class GmailConnectorTests(GmailApp app)
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(20);
    FakeGoogle Google => app.Google;

    // ---- helpers ----

    /// <summary>Connect → Google's consent page (the fake, signed in as <paramref name="account"/>) → the callback.</summary>
    async Task<(HttpResponseMessage Callback, Dictionary<string, string> AuthQuery, Uri CallbackUrl)> ConsentAsync(TestUser user, string account)
    {
        var connect = await user.Client.GetAsync(GmailMailboxApi.ConnectPath);
        Assert.Equal(HttpStatusCode.Redirect, connect.StatusCode);
        var authUrl = connect.Headers.Location!;
        Assert.StartsWith(Google.AuthUri, authUrl.AbsoluteUri);
        var query = QueryHelpers.ParseQuery(authUrl.Query).ToDictionary(k => k.Key, k => k.Value.ToString());
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var consent = await browser.GetAsync(authUrl.AbsoluteUri + "&x_account=" + Uri.EscapeDataString(account));
        Assert.Equal(HttpStatusCode.Redirect, consent.StatusCode);
        var callbackUrl = consent.Headers.Location!;
        var callback = await user.Client.GetAsync(callbackUrl.PathAndQuery);
        return (callback, query, callbackUrl);
    }

    async Task<Guid> ConnectAsync(TestUser user)
    {
        var (callback, _, _) = await ConsentAsync(user, user.Email);
        Assert.Equal(HttpStatusCode.Redirect, callback.StatusCode);
        Assert.Equal("/mailboxes?gmail=connected", callback.Headers.Location!.OriginalString);
        var id = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id && m.Kind == MailboxKind.Gmail).Id);
        await WaitForAsync(() => app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).LastSyncAt) is not null, "the first sync");
        return id;
    }

    static async Task WaitForAsync(Func<bool> done, string what)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what}");
            await Task.Delay(100);
        }
    }

    DateTimeOffset? LastSync(Guid id) => app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).LastSyncAt);

    /// <summary>Pushes, then waits for the watch to finish a round after it.</summary>
    async Task PushAndWaitForRoundAsync(Guid id, string address)
    {
        var before = LastSync(id);
        await PushOkAsync(address);
        await WaitForAsync(() => LastSync(id) > before, "another sync round");
    }

    async Task<HttpResponseMessage> PushAsync(string address, string? token, string? body = null)
    {
        using var client = app.Anonymous(null);
        var request = new HttpRequestMessage(HttpMethod.Post, GmailMailboxApi.PushPath)
        {
            Content = new StringContent(body ?? FakeGoogle.PushBody(address, Google.CurrentHistoryId(address)), Encoding.UTF8, "application/json"),
        };
        if (token is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return await client.SendAsync(request);
    }

    string GoodToken() => Google.SignPushToken(GmailApp.PushAudience, GmailApp.PushServiceAccount);

    async Task PushOkAsync(string address)
    {
        var res = await PushAsync(address, GoodToken());
        Assert.Equal(HttpStatusCode.NoContent, res.StatusCode);
    }

    static MimeMessage Answer(string from, string to, string subject, string? inReplyTo, string text = "Thanks, let's talk on Tuesday.")
    {
        var m = new MimeMessage { Subject = "Re: " + subject, MessageId = $"{Guid.NewGuid():N}@mail.encom.test", Date = DateTimeOffset.Now };
        m.From.Add(MailboxAddress.Parse(from));
        m.To.Add(MailboxAddress.Parse(to));
        if (inReplyTo is not null)
        {
            m.InReplyTo = inReplyTo;
            m.References.Add(inReplyTo);
        }
        m.Body = new TextPart("plain") { Text = text + "\n\nOn Monday you wrote:\n> Hello\n" };
        return m;
    }

    List<InboundMessage> Inbound(Guid mailboxId) => app.WithDb(db => db.InboundMessages.Where(i => i.ConnectionId == mailboxId).AsNoTracking().ToList());

    async Task<JsonElement> MailboxRowAsync(TestUser user) => (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();

    async Task<(Guid MessageId, JsonElement Copy, FakeGoogle.Message Sent)> SendAsync(TestUser user, string to, string subject)
    {
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject, to = new[] { to }, html = "<p>Hello, here is <a href=\"https://encom.test/deck\">the deck</a>.</p>",
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, $"send: {(int)res.StatusCode} {text}");
        var body = JsonDocument.Parse(text).RootElement.Clone();
        var copy = body.GetProperty("copies")[0];
        Assert.True(copy.GetProperty("sent").GetBoolean(), copy.ToString());
        var sent = Google.Read(user.Email, m => m.Messages.Last(x => x.Labels.Contains("SENT")));
        return (body.GetProperty("id").GetGuid(), copy, sent);
    }

    // ---- connecting ----

    [Fact]
    public async Task Connecting_asks_Google_for_offline_read_and_send_access_and_keeps_the_grant_encrypted()
    {
        var user = await app.NewUserAsync();
        var (callback, query, _) = await ConsentAsync(user, user.Email);

        Assert.Equal(FakeGoogle.ClientId, query["client_id"]);
        Assert.Equal("code", query["response_type"]);
        Assert.Equal("offline", query["access_type"]);
        Assert.Equal("consent", query["prompt"]);
        Assert.Equal("http://localhost/mailboxes/gmail/callback", query["redirect_uri"]);
        Assert.Equal([FakeGoogle.ReadonlyScope, FakeGoogle.SendScope], query["scope"].Split(' ').Order());
        Assert.False(string.IsNullOrEmpty(query["state"]));

        Assert.Equal(HttpStatusCode.Redirect, callback.StatusCode);
        Assert.Equal("/mailboxes?gmail=connected", callback.Headers.Location!.OriginalString);
        var row = await MailboxRowAsync(user);
        Assert.Equal("gmail", row.GetProperty("kind").GetString());
        Assert.Equal(user.Email, row.GetProperty("address").GetString());
        Assert.Equal("active", row.GetProperty("status").GetString());
        var secret = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).ProtectedSecret);
        Assert.DoesNotContain("1//0fake", secret);

        // The watch starts: Gmail is asked to publish to the topic, and the first sync sets the checkpoint.
        var id = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).Id);
        await WaitForAsync(() => LastSync(id) is not null, "the first sync");
        Assert.Contains(GmailApp.Topic, Google.Read(user.Email, m => m.WatchTopics));
        var cursor = app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == id && c.Name == GmailWatch.HistoryCursor).Value);
        Assert.Equal(Google.CurrentHistoryId(user.Email).ToString(), cursor);
    }

    [Fact]
    public async Task A_callback_whose_state_is_tampered_or_another_users_is_refused_and_the_code_is_never_used()
    {
        var owner = await app.NewUserAsync();
        var stranger = await app.NewUserAsync();
        var exchanges = Google.CodeExchanges;

        // The owner starts; the stranger's browser is handed the owner's callback (login CSRF): refused.
        var connect = await owner.Client.GetAsync(GmailMailboxApi.ConnectPath);
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var consent = await browser.GetAsync(connect.Headers.Location!.AbsoluteUri + "&x_account=" + Uri.EscapeDataString(owner.Email));
        var callbackUrl = consent.Headers.Location!;
        await stranger.Client.GetAsync(GmailMailboxApi.ConnectPath); // the stranger has a nonce cookie of their own
        var stolen = await stranger.Client.GetAsync(callbackUrl.PathAndQuery);
        Assert.Equal("/mailboxes?gmail=bad-state", stolen.Headers.Location!.OriginalString);

        // A state that was altered: refused too.
        var q = QueryHelpers.ParseQuery(callbackUrl.Query);
        var tampered = await owner.Client.GetAsync($"{GmailMailboxApi.CallbackPath}?code={Uri.EscapeDataString(q["code"]!)}&state={Uri.EscapeDataString(q["state"]! + "x")}");
        Assert.Equal("/mailboxes?gmail=bad-state", tampered.Headers.Location!.OriginalString);
        var missing = await owner.Client.GetAsync($"{GmailMailboxApi.CallbackPath}?code={Uri.EscapeDataString(q["code"]!)}");
        Assert.Equal("/mailboxes?gmail=bad-state", missing.Headers.Location!.OriginalString);

        Assert.Equal(exchanges, Google.CodeExchanges);
        Assert.Empty(app.WithDb(db => db.Mailboxes.Where(m => m.UserId == owner.Id || m.UserId == stranger.Id).ToList()));
    }

    [Fact]
    public async Task A_Google_account_whose_address_is_the_punycode_form_of_the_users_alias_is_connected_once()
    {
        var user = await app.NewUserAsync();
        var name = $"me-{Guid.NewGuid():N}"[..15];
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@例え.jp" })).IsSuccessStatusCode);
        for (var i = 0; i < 2; i++)
        {
            var (callback, _, _) = await ConsentAsync(user, name + "@xn--r8jz45g.jp");
            Assert.Equal("/mailboxes?gmail=connected", callback.Headers.Location!.OriginalString);
        }
        Assert.Equal(name + "@xn--r8jz45g.jp", app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id && m.Kind == MailboxKind.Gmail).Address));
    }

    [Fact]
    public async Task A_Google_account_whose_address_is_not_the_users_is_refused_and_its_grant_handed_back()
    {
        var user = await app.NewUserAsync();
        var other = $"someone-{Guid.NewGuid():N}"[..20] + "@gmail.test";
        var revoked = Google.Revoked.Count;
        var (callback, _, _) = await ConsentAsync(user, other);
        Assert.Equal("/mailboxes?gmail=not-yours", callback.Headers.Location!.OriginalString);
        Assert.Empty(app.WithDb(db => db.Mailboxes.Where(m => m.UserId == user.Id).ToList()));
        Assert.True(Google.Revoked.Count > revoked);
    }

    [Fact]
    public async Task A_first_checkpoint_the_database_failed_to_store_is_stored_at_the_next_round_and_the_mailbox_goes_on()
    {
        var user = await app.NewUserAsync();
        // The database goes away for a moment just as the first sync stores the mailbox's history checkpoint. The watch
        // keeps one context across its rounds: the checkpoint left in it unsaved made every later round fail the same
        // way (the same key added again), and the mailbox was never read again until the server restarted.
        app.FailFirstCheckpoint.Arm();
        var id = await ConnectAsync(user);
        Assert.NotNull(app.WithDb(db => db.MailboxCursors.SingleOrDefault(c => c.ConnectionId == id && c.Name == GmailWatch.HistoryCursor)));
        Assert.Equal(MailboxStatus.Active, app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).Status));
        // And it goes on reading.
        await PushAndWaitForRoundAsync(id, user.Email);
    }

    [Fact]
    public async Task Consent_without_both_permissions_or_denied_connects_nothing()
    {
        var user = await app.NewUserAsync();
        Google.GrantOnly = [FakeGoogle.ReadonlyScope];
        try
        {
            var (callback, _, _) = await ConsentAsync(user, user.Email);
            Assert.Equal("/mailboxes?gmail=scopes", callback.Headers.Location!.OriginalString);
        }
        finally
        {
            Google.GrantOnly = null;
        }
        var connect = await user.Client.GetAsync(GmailMailboxApi.ConnectPath);
        using var browser = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false });
        var denied = await browser.GetAsync(connect.Headers.Location!.AbsoluteUri + "&x_deny=1");
        var back = await user.Client.GetAsync(denied.Headers.Location!.PathAndQuery);
        Assert.Equal("/mailboxes?gmail=denied", back.Headers.Location!.OriginalString);
        Assert.Empty(app.WithDb(db => db.Mailboxes.Where(m => m.UserId == user.Id).ToList()));
    }

    // ---- sending and answers ----

    [Fact]
    public async Task Sent_mail_records_the_Message_ID_and_thread_Gmail_kept_and_a_pushed_reply_reaches_the_message_and_the_feed()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var bob = "bob@encom.test";
        var subject = "Proposal " + Guid.NewGuid().ToString("N")[..6];
        var (messageId, copy, sent) = await SendAsync(user, bob, subject);

        // Gmail replaced our Message-ID; the copy knows the one Bob will quote, and the thread.
        var ours = copy.GetProperty("messageId").GetString()!.Trim('<', '>');
        Assert.NotEqual(ours, sent.MessageId);
        Assert.EndsWith("@mail.gmail.com", sent.MessageId);
        var row = app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == messageId));
        Assert.Equal(sent.MessageId, row.SentMessageIdHeader);
        Assert.Equal(sent.ThreadId, row.ProviderThreadId);
        Assert.Contains("/o/", sent.Mime.HtmlBody);
        Assert.Equal([bob], Google.SentEnvelopes[sent.Id]);

        using var feed = await Sse.OpenAsync(user.Client, "/api/feed");
        Google.Deliver(user.Email, Answer(bob, user.Email, subject, sent.MessageId));
        await PushOkAsync(user.Email);

        var deadline = DateTime.UtcNow + Patience;
        while (true)
        {
            var (_, item) = await feed.NextAsync(deadline - DateTime.UtcNow);
            if (item.GetProperty("messageId").GetGuid() == messageId && item.GetProperty("kind").GetString() == "reply")
            {
                Assert.Equal(bob, item.GetProperty("fromAddress").GetString());
                break;
            }
        }
        var detail = await user.Client.GetJsonAsync($"/api/messages/{messageId}");
        var recipient = detail.GetProperty("message").GetProperty("recipients")[0];
        Assert.True(recipient.GetProperty("counts").GetProperty("replied").GetBoolean());
        var inbound = Assert.Single(Inbound(id));
        Assert.Equal(MatchedBy.InReplyTo, inbound.MatchedBy);
        Assert.StartsWith("gmail:", inbound.ProviderId);
    }

    [Fact]
    public async Task Each_per_recipient_copy_goes_only_to_its_recipients_through_Gmail()
    {
        var user = await app.NewUserAsync();
        await ConnectAsync(user);
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "Hello both", to = new[] { "bob@encom.test", "carol@encom.test" }, cc = new[] { "dave@encom.test" },
            html = "<p>Hello</p>", perRecipient = true,
        }, TestApi.Json);
        var body = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        var copies = body.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal(3, copies.Count);
        var sent = Google.Read(user.Email, m => m.Messages.Where(x => x.Labels.Contains("SENT")).ToList());
        Assert.Equal(3, sent.Count);
        Assert.All(sent, s => Assert.Single(Google.SentEnvelopes[s.Id]));
        Assert.Equal(["bob@encom.test", "carol@encom.test", "dave@encom.test"], sent.SelectMany(s => Google.SentEnvelopes[s.Id]).Order());
    }

    [Fact]
    public async Task An_expired_access_token_is_refreshed_and_a_rate_limit_is_waited_out()
    {
        var user = await app.NewUserAsync();
        await ConnectAsync(user);
        Google.ExpireAccessTokens();
        var refreshes = Google.RefreshGrants;
        Google.FailNext("/messages/send", 429, 2);
        await SendAsync(user, "bob@encom.test", "Retry");
        Assert.True(Google.RefreshGrants > refreshes);

        // A server error after which the mail may have left is reported on the copy, not repeated.
        Google.FailNext("/messages/send", 500, 1);
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new { from = user.Email, subject = "Once", to = new[] { "bob@encom.test" }, html = "<p>x</p>" }, TestApi.Json);
        var copy = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement.GetProperty("copies")[0];
        Assert.False(copy.GetProperty("sent").GetBoolean());
        Assert.Contains("500", copy.GetProperty("error").GetString());
    }

    [Fact]
    public async Task Gmails_usage_limit_403_is_waited_out_like_a_429_and_when_it_persists_the_copy_is_only_refused_for_now()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        // Gmail answers its per-user rate limit with a 403 in the domain usageLimits as well as with a 429.
        Google.FailNext("/messages/send", 403, 2, reason: "userRateLimitExceeded");
        await SendAsync(user, "bob@encom.test", "Limited");

        // Still limited after every retry: the copy was refused for now, so a sequence tries the step again later
        // instead of stopping the enrollment as if Gmail had refused the mail itself.
        try
        {
            Google.FailNext("/messages/send", 403, 10, reason: "rateLimitExceeded");
            using var scope = app.Services.CreateScope();
            var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Gmail);
            var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));
            var from = new MailboxAddress(null, user.Email);
            var bob = new MailboxAddress(null, "bob@encom.test");
            var mime = new MimeMessage { Subject = "Still limited", MessageId = $"{Guid.NewGuid():N}@et.test" };
            mime.From.Add(from);
            mime.To.Add(bob);
            mime.Body = new TextPart("html") { Text = "<p>x</p>" };
            var result = await transport.SendAsync(mailbox, [new OutgoingCopy(Guid.NewGuid(), mime, from, [bob])], CancellationToken.None);
            var copy = Assert.Single(result.Copies);
            Assert.False(copy.Sent);
            Assert.True(copy.Temporary, copy.Error);
            // Gmail did not take a send it refused for a usage limit: nothing could have left, so no one need look in
            // Sent for it (a look that reads up to 500 sent mails) before the step is tried again.
            Assert.False(copy.MayHaveLeft, copy.Error);
            Assert.Equal("active", (await MailboxRowAsync(user)).GetProperty("status").GetString());
        }
        finally
        {
            Google.ClearFailures();
        }
    }

    [Fact]
    public async Task A_follow_up_sent_through_Gmail_joins_the_thread_it_names_and_one_whose_thread_is_gone_still_leaves()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, first) = await SendAsync(user, "bob@encom.test", "Thread");
        using var scope = app.Services.CreateScope();
        var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Gmail);
        var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));
        var from = new MailboxAddress(null, user.Email);
        var bob = new MailboxAddress(null, "bob@encom.test");
        MimeMessage FollowUp()
        {
            var mime = new MimeMessage { Subject = "Re: Thread", MessageId = $"{Guid.NewGuid():N}@et.test", InReplyTo = first.MessageId };
            mime.References.Add(first.MessageId);
            mime.From.Add(from);
            mime.To.Add(bob);
            mime.Body = new TextPart("html") { Text = "<p>Did you see it?</p>" };
            return mime;
        }

        var result = await transport.SendAsync(mailbox, [new OutgoingCopy(Guid.NewGuid(), FollowUp(), from, [bob], ThreadId: first.ThreadId)], CancellationToken.None);
        var copy = Assert.Single(result.Copies);
        Assert.True(copy.Sent, copy.Error);
        Assert.Equal(first.ThreadId, copy.ProviderThreadId);
        Assert.Equal(first.ThreadId, Google.Read(user.Email, m => m.Messages.Last()).ThreadId);

        // The user deleted the conversation for good meanwhile: Gmail refuses the thread, and the mail goes on its own.
        result = await transport.SendAsync(mailbox, [new OutgoingCopy(Guid.NewGuid(), FollowUp(), from, [bob], ThreadId: "18c4ffffffffffff")], CancellationToken.None);
        copy = Assert.Single(result.Copies);
        Assert.True(copy.Sent, copy.Error);
        var last = Google.Read(user.Email, m => m.Messages.Last());
        Assert.Equal(last.ThreadId, copy.ProviderThreadId);
        Assert.Equal([bob.Address], Google.SentEnvelopes[last.Id]);
    }

    [Fact]
    public async Task A_small_attachment_goes_as_raw_and_a_message_over_5_MB_through_the_media_upload_in_every_copy()
    {
        var user = await app.NewUserAsync();
        await ConnectAsync(user);
        var big = Mailboxes.TestFiles.Pdf(6 * 1024 * 1024);
        var small = Mailboxes.TestFiles.Text("a,b\n1,2\n");
        var before = Google.SendsVia.Count;

        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "Notes", to = new[] { "bob@encom.test" }, html = "<p>Notes attached.</p>",
            attachments = new[] { Mailboxes.TestFiles.Attachment("notes.csv", small, "application/x-msdownload") },
        }, TestApi.Json);
        Assert.True(res.StatusCode == HttpStatusCode.Created, await res.Content.ReadAsStringAsync());
        var sent = Google.Read(user.Email, m => m.Messages.Last(x => x.Labels.Contains("SENT")));
        var file = Assert.IsAssignableFrom<MimePart>(Assert.Single(sent.Mime.Attachments));
        Assert.Equal("notes.csv", file.FileName);
        // The type the bytes show, not the one the client said.
        Assert.Equal("text/csv", file.ContentType.MimeType);
        Assert.Equal(new[] { "raw" }, Google.SendsVia.Skip(before).ToArray());

        res = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "Deck", to = new[] { "bob@encom.test", "carol@encom.test" }, html = "<p>The deck.</p>", perRecipient = true,
            attachments = new[] { Mailboxes.TestFiles.Attachment("Präsentation Q3.pdf", big) },
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        Assert.All(JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray(), c => Assert.True(c.GetProperty("sent").GetBoolean(), c.ToString()));
        Assert.Equal(new[] { "raw", "upload:media", "upload:media" }, Google.SendsVia.Skip(before).ToArray());
        var copies = Google.Read(user.Email, m => m.Messages.Where(x => x.Labels.Contains("SENT")).TakeLast(2).ToList());
        foreach (var copy in copies)
        {
            var pdf = Assert.IsType<MimePart>(Assert.Single(copy.Mime.Attachments));
            Assert.Equal("Präsentation Q3.pdf", pdf.FileName);
            Assert.Equal("application/pdf", pdf.ContentType.MimeType);
            using var bytes = new MemoryStream();
            pdf.Content!.DecodeTo(bytes);
            Assert.Equal(big, bytes.ToArray());
        }
        // The name is RFC 2231-encoded on the wire (filename*=charset''…; MimeKit picks the smallest charset), not raw UTF-8 in the header.
        var wire = Encoding.ASCII.GetString(copies[0].Raw);
        var disposition = wire[wire.IndexOf("Content-Disposition: attachment", StringComparison.Ordinal)..];
        Assert.Matches(@"filename\*=(utf-8|iso-8859-1)''Pr%(C3%A4|E4)sentation%20Q3\.pdf", disposition[..disposition.IndexOf("\n\n", StringComparison.Ordinal)]);
    }

    [Fact]
    public async Task A_large_follow_up_names_its_thread_in_the_multipart_uploads_metadata()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, first) = await SendAsync(user, "bob@encom.test", "Thread with files");
        using var scope = app.Services.CreateScope();
        var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Gmail);
        var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));
        var from = new MailboxAddress(null, user.Email);
        var bob = new MailboxAddress(null, "bob@encom.test");
        var mime = new MimeMessage { Subject = "Re: Thread with files", MessageId = $"{Guid.NewGuid():N}@et.test", InReplyTo = first.MessageId };
        mime.From.Add(from);
        mime.To.Add(bob);
        var body = new BodyBuilder { HtmlBody = "<p>The files.</p>" };
        body.Attachments.Add("big.pdf", Mailboxes.TestFiles.Pdf(5 * 1024 * 1024 + 10), new ContentType("application", "pdf"));
        mime.Body = body.ToMessageBody();
        var before = Google.SendsVia.Count;

        var result = await transport.SendAsync(mailbox, [new OutgoingCopy(Guid.NewGuid(), mime, from, [bob], ThreadId: first.ThreadId)], CancellationToken.None);
        var copy = Assert.Single(result.Copies);
        Assert.True(copy.Sent, copy.Error);
        Assert.Equal(new[] { "upload:multipart" }, Google.SendsVia.Skip(before).ToArray());
        Assert.Equal(first.ThreadId, copy.ProviderThreadId);
    }

    [Fact]
    public async Task A_rate_limit_that_names_when_it_lifts_is_not_retried_before_then()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        // Gmail's per-user limit says when it lifts, often a quarter of an hour away; every call before then is refused
        // again and counts against the user.
        Google.FailNext("/history", 429, 50, reason: "rateLimitExceeded", retryAfter: DateTimeOffset.UtcNow.AddMinutes(15));
        try
        {
            await PushOkAsync(user.Email);
            await WaitForAsync(() => app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).StatusMessage)?.Contains("Retry after") == true,
                "the mailbox to say Gmail's limit was reached");
            Assert.Equal(1, Google.FailuresServed("/history"));
            Assert.Equal(MailboxStatus.Active, app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).Status));
        }
        finally
        {
            Google.ClearFailures();
        }
    }

    [Fact]
    public async Task A_copy_that_left_is_found_in_Sent_although_Gmail_replaced_its_Message_ID_and_one_that_did_not_is_not()
    {
        // After a send that may have left (a crash, no answer in time), a sequence asks the mailbox before sending the
        // step again. Gmail gave the mail a Message-ID of its own: a search for ours finds nothing, and the step went twice.
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Did it leave");
        var copy = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == messageId));
        Assert.NotEqual(copy.MessageIdHeader, sent.MessageId);
        var registered = await user.RegisterAsync(new { from = user.Email, subject = "Never left", to = new[] { "bob@encom.test" }, html = "<p>Hi</p>" });
        var never = app.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == registered.GetProperty("id").GetGuid()));

        using var scope = app.Services.CreateScope();
        var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Gmail);
        var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));
        Assert.True(await transport.IsInSentAsync(mailbox, copy.MessageIdHeader, copy.PixelToken, CancellationToken.None));
        Assert.False(await transport.IsInSentAsync(mailbox, never.MessageIdHeader, never.PixelToken, CancellationToken.None));
    }

    [Fact]
    public async Task A_keyed_send_that_stopped_between_copies_is_finished_by_its_retry_from_Gmails_sent_mail()
    {
        // The process died while sending: bob's copy had left (Gmail gave it a Message-ID of its own), carol's had not.
        var user = await app.NewUserAsync();
        await ConnectAsync(user);
        var key = Guid.NewGuid().ToString();
        var body = new { from = user.Email, subject = "Stopped between copies", to = new[] { "bob@encom.test", "carol@encom.test" }, html = "<p>Hello</p>" };
        var (first, firstText) = await Api.StoppedSends.SendAsync(user, body, key);
        Assert.True(first.StatusCode == HttpStatusCode.Created, firstText);
        var messageId = JsonDocument.Parse(firstText).RootElement.GetProperty("id").GetGuid();
        await Api.StoppedSends.RewindAsync(app, messageId);
        List<FakeGoogle.Message> SentTo(string address) =>
            Google.Read(user.Email, m => m.Messages.Where(x => x.Labels.Contains("SENT") && Google.SentEnvelopes[x.Id].Contains(address)).ToList());
        var bobs = Assert.Single(SentTo("bob@encom.test"));
        Google.Read(user.Email, m => m.Messages.RemoveAll(x => x.Id == SentTo("carol@encom.test").Single().Id));

        var (retry, text) = await Api.StoppedSends.SendAsync(user, body, key);
        Assert.True(retry.StatusCode == HttpStatusCode.Created, text);
        Assert.True(retry.Headers.Contains(IdempotencyKeys.CompletedOnRetryHeader));
        Assert.Contains("found 1 of 2 copies", JsonDocument.Parse(text).RootElement.GetProperty("warning").GetString());
        Assert.Equal(bobs.Id, Assert.Single(SentTo("bob@encom.test")).Id);
        var carols = Assert.Single(SentTo("carol@encom.test"));
        var copies = app.WithDb(db => db.Recipients.Where(r => r.TrackedMessageId == messageId)
            .Join(db.Copies, r => r.CopyId, c => c.Id, (r, c) => new { r.Address, c.SentMessageIdHeader, c.ProviderThreadId }).ToDictionary(c => c.Address));
        // Recorded as the send reads them back: the Message-ID Gmail kept and its thread.
        Assert.Equal(bobs.MessageId, copies["bob@encom.test"].SentMessageIdHeader);
        Assert.Equal(bobs.ThreadId, copies["bob@encom.test"].ProviderThreadId);
        Assert.Equal(carols.ThreadId, copies["carol@encom.test"].ProviderThreadId);
        Assert.NotNull(app.WithDb(db => db.Messages.Single(m => m.Id == messageId).SentAt));
    }

    [Fact]
    public async Task Mail_sent_from_the_Gmail_UI_with_our_pixel_records_Gmails_Message_ID_and_thread_and_a_reply_matched_only_by_thread_counts()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var registered = await user.RegisterAsync(new { from = user.Email, subject = "From the add-on", to = new[] { "flynn@flynnsarcade.test" }, html = "<p>Hi Flynn</p>", source = "gmail-addon" });
        var messageId = registered.GetProperty("id").GetGuid();
        var html = registered.GetProperty("copies")[0].GetProperty("html").GetString()!;

        var draft = new MimeMessage { Subject = "From the add-on", MessageId = "draft-id@gmail.test", Date = DateTimeOffset.Now };
        draft.From.Add(MailboxAddress.Parse(user.Email));
        draft.To.Add(MailboxAddress.Parse("flynn@flynnsarcade.test"));
        draft.Body = new BodyBuilder { HtmlBody = html }.ToMessageBody();
        var sent = Google.SendFromGmailUi(user.Email, draft);
        await PushOkAsync(user.Email);
        await WaitForAsync(() => app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == messageId).SentMessageIdHeader) == sent.MessageId,
            "the Sent copy's Message-ID");
        Assert.Equal(sent.ThreadId, app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == messageId).ProviderThreadId));

        // Flynn's client quotes nothing; Gmail still files the answer in the thread.
        Google.Deliver(user.Email, Answer("flynn@flynnsarcade.test", user.Email, "From the add-on", null), threadId: sent.ThreadId);
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the reply");
        Assert.Equal(MatchedBy.ThreadId, Inbound(id)[0].MatchedBy);
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);
    }

    // ---- the push endpoint ----

    [Fact]
    public async Task Pushes_without_a_valid_token_from_the_configured_subscription_are_refused_and_wake_nothing()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Push check");
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Push check", sent.MessageId));

        using var otherKey = RSA.Create(2048);
        var now = DateTimeOffset.UtcNow;
        string?[] bad =
        [
            null,
            "not-a-jwt",
            Google.SignPushToken("https://elsewhere.test/push", GmailApp.PushServiceAccount),
            Google.SignPushToken(GmailApp.PushAudience, "attacker@other-project.iam.gserviceaccount.com"),
            Google.SignPushToken(GmailApp.PushAudience, GmailApp.PushServiceAccount, emailVerified: false),
            Google.SignPushToken(GmailApp.PushAudience, GmailApp.PushServiceAccount, expires: now.AddMinutes(-30)),
            Google.SignPushToken(GmailApp.PushAudience, GmailApp.PushServiceAccount, issuer: "https://evil.test"),
            Google.SignPushToken(GmailApp.PushAudience, GmailApp.PushServiceAccount, key: otherKey),
        ];
        foreach (var token in bad)
        {
            var res = await PushAsync(user.Email, token);
            Assert.True(res.StatusCode == HttpStatusCode.Unauthorized, $"{token}: {(int)res.StatusCode}");
        }
        await Task.Delay(TimeSpan.FromSeconds(2));
        Assert.Empty(Inbound(id));

        // Authentic but unreadable: acknowledged (Pub/Sub would send the same bytes again for days) and nothing woken.
        // Authentic for an address not connected here: acknowledged.
        foreach (var unreadable in new[] { "{\"message\":{\"data\":\"@@@\"}}", "not json", "[1,2]", "{\"emailAddress\":\"not an address\",\"historyId\":\"5\"}" })
        {
            Assert.Equal(HttpStatusCode.NoContent, (await PushAsync(user.Email, GoodToken(), unreadable)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await PushAsync("nobody@gmail.test", GoodToken(), FakeGoogle.PushBody("nobody@gmail.test", 5))).StatusCode);
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Empty(Inbound(id));

        // The real one (historyId as a number, padded base64url) wakes the watch.
        var good = await PushAsync(user.Email, GoodToken(), FakeGoogle.PushBody(user.Email.ToUpperInvariant(), Google.CurrentHistoryId(user.Email), numericHistoryId: true, padded: true));
        Assert.Equal(HttpStatusCode.NoContent, good.StatusCode);
        await WaitForAsync(() => Inbound(id).Count == 1, "the reply after an authentic push");
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);
    }

    [Fact]
    public async Task A_push_from_a_subscription_with_payload_unwrapping_wakes_the_watch()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Unwrapped push");
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Unwrapped push", sent.MessageId));

        // The notification itself as the body, as Pub/Sub delivers it with --push-no-wrapper.
        var res = await PushAsync(user.Email, GoodToken(), FakeGoogle.PushBody(user.Email, Google.CurrentHistoryId(user.Email), unwrapped: true));
        Assert.Equal(HttpStatusCode.NoContent, res.StatusCode);
        await WaitForAsync(() => Inbound(id).Count == 1, "the reply after an unwrapped push");
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);
    }

    // ---- the watch ----

    [Fact]
    public async Task Lost_history_means_a_full_resync_that_finds_the_reply_once()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Resync");
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Resync", sent.MessageId));
        Google.ForgetHistoryBefore(user.Email, Google.CurrentHistoryId(user.Email));
        var lists = Google.Read(user.Email, m => m.ListCalls);

        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the reply after a resync");
        Assert.True(Google.Read(user.Email, m => m.HistoryNotFound) >= 1);
        Assert.True(Google.Read(user.Email, m => m.ListCalls) > lists);

        // Another round: history works again from the new checkpoint, and nothing is counted twice.
        var notFound = Google.Read(user.Email, m => m.HistoryNotFound);
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Equal(notFound, Google.Read(user.Email, m => m.HistoryNotFound));
        Assert.Single(Inbound(id));
        Assert.Single(app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Reply).ToList()));
    }

    [Fact]
    public async Task A_message_that_is_not_MIME_is_noted_for_the_user_and_the_mail_after_it_is_still_read()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Broken");
        // What a broken server might deliver: bytes that cannot start a header, then Bob's real answer.
        var garbage = RandomNumberGenerator.GetBytes(3000);
        garbage[0] = 0;
        var broken = Google.DeliverRaw(user.Email, garbage);
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Broken", sent.MessageId));

        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "Bob's answer behind the broken message");
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);

        Assert.Equal(1, (await MailboxRowAsync(user)).GetProperty("unreadable").GetInt32());
        var notes = await user.Client.GetJsonAsync($"/api/mailboxes/{id}/unreadable");
        var note = Assert.Single(notes.EnumerateArray());
        Assert.Equal("gmail:" + broken.Id, note.GetProperty("providerId").GetString());
        Assert.Equal("INBOX", note.GetProperty("folder").GetString());
        Assert.Equal(3000, note.GetProperty("size").GetInt64());
        Assert.StartsWith("not a readable MIME message:", note.GetProperty("reason").GetString());
        Assert.NotEqual(JsonValueKind.Null, note.GetProperty("receivedAt").ValueKind);

        // Read again from the start (history gone): noted once, recorded once.
        Google.ForgetHistoryBefore(user.Email, Google.CurrentHistoryId(user.Email));
        Google.Deliver(user.Email, Answer("carol@encom.test", user.Email, "Broken", sent.MessageId));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 2, "Carol's answer after the resync");
        Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{id}/unreadable")).EnumerateArray());

        // Another user does not see them.
        var other = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.Client.GetAsync($"/api/mailboxes/{id}/unreadable")).StatusCode);
    }

    [Fact]
    public async Task A_reply_larger_than_the_limit_is_matched_from_its_headers_without_downloading_it()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Big");
        var answer = Answer("bob@encom.test", user.Email, "Big", sent.MessageId);
        var body = new BodyBuilder { TextBody = "Here is the signed contract." };
        body.Attachments.Add("contract.pdf", RandomNumberGenerator.GetBytes(300_000), new ContentType("application", "pdf"));
        answer.Body = body.ToMessageBody();
        var big = Google.Deliver(user.Email, answer);

        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the large reply");
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);
        Assert.DoesNotContain(big.Id, Google.Read(user.Email, m => m.RawGets.ToList()));
        Assert.Contains(sent.Id, Google.Read(user.Email, m => m.RawGets.ToList()));
        Assert.True(big.Raw.Length > 200_000);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task A_reply_larger_than_the_limit_keeps_its_non_ASCII_subject_whether_Gmail_lists_header_values_decoded_or_as_written(bool asWritten)
    {
        const string subject = "Grüße aus Köln — 東京の件 ✓";
        var user = await app.NewUserAsync();
        Google.MailboxOf(user.Email).HeaderValuesAsWritten = asWritten;
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", subject);
        var answer = Answer("bob@encom.test", user.Email, subject, sent.MessageId);
        answer.From.Clear();
        answer.From.Add(new MailboxAddress("Jörg Müller", "bob@encom.test"));
        var body = new BodyBuilder { TextBody = "Hier ist der unterschriebene Vertrag." };
        body.Attachments.Add("vertrag.pdf", RandomNumberGenerator.GetBytes(300_000), new ContentType("application", "pdf"));
        answer.Body = body.ToMessageBody();
        var big = Google.Deliver(user.Email, answer);
        // On the wire the subject is RFC 2047 encoded-words.
        Assert.Contains("Subject: Re: =?utf-8?", Encoding.ASCII.GetString(big.Raw), StringComparison.OrdinalIgnoreCase);

        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the large reply");
        var inbound = Inbound(id)[0];
        Assert.Equal(messageId, inbound.TrackedMessageId);
        Assert.Equal("Re: " + subject, inbound.Subject);
        Assert.Equal("bob@encom.test", inbound.FromAddress);
        Assert.DoesNotContain(big.Id, Google.Read(user.Email, m => m.RawGets.ToList()));
    }

    [Fact]
    public async Task A_reply_larger_than_the_limit_with_a_header_name_MimeKit_refuses_is_still_matched_and_the_mail_after_it_read()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Odd header");
        var answer = Answer("bob@encom.test", user.Email, "Odd header", sent.MessageId);
        var body = new BodyBuilder { TextBody = "Here is the signed contract." };
        body.Attachments.Add("contract.pdf", RandomNumberGenerator.GetBytes(300_000), new ContentType("application", "pdf"));
        answer.Body = body.ToMessageBody();
        // A spam filter on the way wrote a header whose name has a space: Gmail lists it by what stands before the colon.
        using var raw = new MemoryStream();
        answer.WriteTo(new FormatOptions { NewLineFormat = NewLineFormat.Dos }, raw);
        var text = Encoding.ASCII.GetString(raw.ToArray());
        var odd = MimeMessage.Load(new MemoryStream(Encoding.ASCII.GetBytes(text.Insert(text.IndexOf("\r\n", StringComparison.Ordinal) + 2, "X Spam Flag: no\r\n"))));
        Assert.Contains(odd.Headers, h => h.Field.StartsWith("X Spam Flag", StringComparison.Ordinal));
        Google.Deliver(user.Email, odd);
        Google.Deliver(user.Email, Answer("carol@encom.test", user.Email, "Odd header", sent.MessageId));

        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 2, "the large reply and the one after it");
        Assert.All(Inbound(id), i => Assert.Equal(messageId, i.TrackedMessageId));
        Assert.Equal("active", (await MailboxRowAsync(user)).GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_refused_users_watch_says_on_the_mailbox_that_push_is_off_and_the_mailbox_is_still_read()
    {
        var user = await app.NewUserAsync();
        // The topic's publisher grant for Gmail is missing: users.watch is refused, reading is not.
        Google.MailboxOf(user.Email).WatchRefused = true;
        var id = await ConnectAsync(user);
        var row = await MailboxRowAsync(user);
        Assert.Equal("active", row.GetProperty("status").GetString());
        var message = row.GetProperty("statusMessage").GetString();
        Assert.NotNull(message);
        Assert.Contains("Gmail cannot notify this server of new mail", message);
        Assert.Contains("User not authorized to perform this action", message);
        Assert.Contains("read every 300 s instead", message);
        Assert.DoesNotContain("Connect Gmail again", message);
        Assert.Empty(Google.Read(user.Email, m => m.WatchTopics.ToList()));

        // The mailbox is still read (the poke stands in for the poll coming due), and each round that goes through
        // keeps saying why push is off.
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Polled");
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Polled", sent.MessageId));
        await PushAndWaitForRoundAsync(id, user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the reply");
        Assert.Equal(messageId, Inbound(id)[0].TrackedMessageId);
        row = await MailboxRowAsync(user);
        Assert.Equal("active", row.GetProperty("status").GetString());
        Assert.Equal(message, row.GetProperty("statusMessage").GetString());
    }

    [Fact]
    public async Task Many_answers_are_read_page_by_page_from_history_and_from_a_resync()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, sent) = await SendAsync(user, "bob@encom.test", "Pages");
        for (var i = 0; i < 5; i++) Google.Deliver(user.Email, Answer($"person{i}@encom.test", user.Email, "Pages", sent.MessageId, $"Answer {i}."));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 5, "five answers over three history pages");
        await WaitForAsync(() => app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == id && c.Name == GmailWatch.HistoryCursor).Value)
            == Google.CurrentHistoryId(user.Email).ToString(), "the checkpoint to reach the end");

        Google.Deliver(user.Email, Answer("person5@encom.test", user.Email, "Pages", sent.MessageId, "Answer 5."));
        Google.ForgetHistoryBefore(user.Email, Google.CurrentHistoryId(user.Email));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 6, "the sixth answer through a paged resync");
        await Task.Delay(TimeSpan.FromSeconds(1));
        Assert.Equal(6, Inbound(id).Count);
        Assert.Equal(6, Inbound(id).Select(i => i.FromAddress).Distinct().Count());
    }

    [Fact]
    public async Task Answers_archived_before_the_watch_read_them_kept_out_of_the_inbox_by_a_filter_or_rescued_from_spam_count_and_spam_trash_and_drafts_do_not()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, sent) = await SendAsync(user, "bob@encom.test", "Labels");
        // Gmail has no folders: archiving an answer takes its INBOX label away, a filter can file it without one, and
        // "Not spam" adds INBOX to a message that arrived long before (a labelAdded record, no messageAdded).
        var archived = Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Labels", sent.MessageId, "Archived at once."));
        Google.ChangeLabels(user.Email, archived.Id, remove: ["INBOX"]);
        Google.DeliverWithLabels(user.Email, Answer("carol@encom.test", user.Email, "Labels", sent.MessageId, "Filtered."), ["Label_12", "CATEGORY_UPDATES"]);
        var spam = Google.DeliverWithLabels(user.Email, Answer("dave@encom.test", user.Email, "Labels", sent.MessageId, "Thought spam."), ["SPAM"]);
        Google.DeliverWithLabels(user.Email, Answer("eve@encom.test", user.Email, "Labels", sent.MessageId, "Spam for good."), ["SPAM"]);
        Google.DeliverWithLabels(user.Email, Answer("frank@encom.test", user.Email, "Labels", sent.MessageId, "Deleted."), ["TRASH"]);
        Google.DeliverWithLabels(user.Email, Answer("grace@encom.test", user.Email, "Labels", sent.MessageId, "A draft."), ["DRAFT"]);
        await PushAndWaitForRoundAsync(id, user.Email);
        Google.ChangeLabels(user.Email, spam.Id, add: ["INBOX"], remove: ["SPAM"]);
        await PushAndWaitForRoundAsync(id, user.Email);
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Equal(["bob@encom.test", "carol@encom.test", "dave@encom.test"], Inbound(id).Select(i => i.FromAddress).Order());
    }

    [Fact]
    public async Task An_answer_deleted_before_the_watch_read_it_counts_once_restored_from_Trash_as_does_one_taken_out_of_spam_without_the_inbox()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Restored");
        // Deleted at once, before the watch read it: in the trash when fetched, so passed over.
        var deleted = Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Restored", sent.MessageId, "Deleted by mistake."));
        Google.ChangeLabels(user.Email, deleted.Id, add: ["TRASH"], remove: ["INBOX"]);
        var spam = Google.DeliverWithLabels(user.Email, Answer("carol@encom.test", user.Email, "Restored", sent.MessageId, "Thought spam."), ["SPAM"]);
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Empty(Inbound(id));

        // Restored from the trash (messages.untrash takes TRASH away and adds nothing), and taken out of spam by removing
        // SPAM alone (to All Mail, not the inbox): labelRemoved records only.
        Google.ChangeLabels(user.Email, deleted.Id, remove: ["TRASH"]);
        Google.ChangeLabels(user.Email, spam.Id, remove: ["SPAM"]);
        await PushAndWaitForRoundAsync(id, user.Email);
        await WaitForAsync(() => Inbound(id).Count == 2, "the restored answers");
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Equal(["bob@encom.test", "carol@encom.test"], Inbound(id).Select(i => i.FromAddress).Order());
        Assert.Equal(2, app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Reply)));
    }

    [Fact]
    public async Task Pages_of_label_changes_alone_store_the_checkpoint_once_a_page_not_once_a_record()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, sent) = await SendAsync(user, "bob@encom.test", "Busy");
        var answer = Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Busy", sent.MessageId));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the answer");
        string Checkpoint() => app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == id && c.Name == GmailWatch.HistoryCursor).Value);
        await WaitForAsync(() => Checkpoint() == Google.CurrentHistoryId(user.Email).ToString(), "the checkpoint to reach the end");
        var writes = app.CheckpointWrites.Of(id);

        // The user reads, stars, labels and marks mail: six label changes, three history pages of two, no new mail.
        Google.ChangeLabels(user.Email, answer.Id, remove: ["UNREAD"]);
        Google.ChangeLabels(user.Email, answer.Id, add: ["STARRED"]);
        Google.ChangeLabels(user.Email, answer.Id, add: ["Label_7"]);
        Google.ChangeLabels(user.Email, sent.Id, add: ["IMPORTANT"]);
        Google.ChangeLabels(user.Email, answer.Id, remove: ["STARRED"]);
        Google.ChangeLabels(user.Email, answer.Id, add: ["UNREAD"]);
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Checkpoint() == Google.CurrentHistoryId(user.Email).ToString(), "the checkpoint to pass the label changes");
        Assert.Equal(3, app.CheckpointWrites.Of(id) - writes);

        // A round with nothing new writes nothing, and nothing was read twice.
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Equal(3, app.CheckpointWrites.Of(id) - writes);
        Assert.Single(Inbound(id));
    }

    [Fact]
    public async Task A_resync_finds_an_answer_the_user_archived()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (_, _, sent) = await SendAsync(user, "bob@encom.test", "Archived");
        var answer = Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Archived", sent.MessageId));
        Google.ChangeLabels(user.Email, answer.Id, remove: ["INBOX"]);
        Google.ForgetHistoryBefore(user.Email, Google.CurrentHistoryId(user.Email));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the archived answer through a resync");
    }

    [Fact]
    public async Task A_restarted_watch_neither_misses_nor_double_counts()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var (messageId, _, sent) = await SendAsync(user, "bob@encom.test", "Restart");
        Google.Deliver(user.Email, Answer("bob@encom.test", user.Email, "Restart", sent.MessageId, "First answer."));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => Inbound(id).Count == 1, "the first reply");

        // Mail arrives while the watch restarts (a deploy, a lease moving to another instance).
        var watcher = app.Services.GetRequiredService<MailboxWatcher>();
        var before = LastSync(id);
        watcher.Restart(id);
        Google.Deliver(user.Email, Answer("carol@encom.test", user.Email, "Restart", sent.MessageId, "Second answer."));
        await WaitForAsync(() => Inbound(id).Count == 2, "the reply that came during the restart");
        await WaitForAsync(() => LastSync(id) > before, "the restarted watch's first round");

        watcher.Restart(id);
        await Task.Delay(TimeSpan.FromSeconds(1));
        await PushAndWaitForRoundAsync(id, user.Email);
        Assert.Equal(2, Inbound(id).Count);
        Assert.Equal(2, app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == messageId && e.Kind == EventKind.Reply)));
        Assert.Equal(Google.CurrentHistoryId(user.Email).ToString(),
            app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == id && c.Name == GmailWatch.HistoryCursor).Value));
    }

    [Fact]
    public async Task Revoked_access_marks_the_mailbox_for_reconnecting_with_a_clear_message_and_reconnecting_fixes_it()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        Google.RevokeAccess(user.Email);

        // Sending finds out first: nothing leaves, the mailbox is marked.
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new { from = user.Email, subject = "After revoke", to = new[] { "bob@encom.test" }, html = "<p>x</p>" }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadGateway, res.StatusCode);
        Assert.Contains("Connect Gmail again", await res.Content.ReadAsStringAsync());
        var row = await MailboxRowAsync(user);
        Assert.Equal("needs-reconnect", row.GetProperty("status").GetString());
        Assert.Contains("Connect Gmail again", row.GetProperty("statusMessage").GetString());

        // The watch, woken, fails the same way and says so; it does not crash or spin.
        app.WithDb(db => db.Mailboxes.Where(m => m.Id == id).ExecuteUpdate(s => s.SetProperty(m => m.Status, MailboxStatus.Active).SetProperty(m => m.StatusMessage, (string?)null)));
        await PushOkAsync(user.Email);
        await WaitForAsync(() => app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).Status) == MailboxStatus.NeedsReconnect, "the watch to notice");
        row = await MailboxRowAsync(user);
        Assert.Contains("revoked", row.GetProperty("statusMessage").GetString());

        // Connecting again replaces the grant; the same mailbox is active and sends.
        var (callback, _, _) = await ConsentAsync(user, user.Email);
        Assert.Equal("/mailboxes?gmail=connected", callback.Headers.Location!.OriginalString);
        Assert.Equal(id, app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).Id));
        await WaitForAsync(() => app.WithDb(db => db.Mailboxes.Single(m => m.Id == id).Status) == MailboxStatus.Active, "active again");
        await SendAsync(user, "bob@encom.test", "After reconnect");
    }

    [Fact]
    public async Task Gmail_refusing_the_access_token_even_after_a_refresh_stops_sending_and_asks_for_a_reconnect()
    {
        var user = await app.NewUserAsync();
        await ConnectAsync(user);
        var refreshes = Google.RefreshGrantsOf(user.Email);
        Google.FailNext("/messages/send", 401, 2);
        var res = await user.Client.PostAsJsonAsync("/api/messages/send", new { from = user.Email, subject = "401", to = new[] { "bob@encom.test" }, html = "<p>x</p>" }, TestApi.Json);
        Assert.Equal(HttpStatusCode.BadGateway, res.StatusCode);
        // The credential refreshes at each 401; the request is tried once more, no further (Google.Apis also refreshes
        // after the last 401, which is wasted but harmless). Counted for this user's grant only: the watches of the other
        // tests' mailboxes refresh theirs meanwhile (a clean-clone run once counted 3).
        Assert.InRange(Google.RefreshGrantsOf(user.Email) - refreshes, 1, 2);
        var row = await MailboxRowAsync(user);
        Assert.Equal("needs-reconnect", row.GetProperty("status").GetString());
        Assert.Contains("Connect Gmail again", row.GetProperty("statusMessage").GetString());
        Assert.Empty(Google.Read(user.Email, m => m.Messages.Where(x => x.Labels.Contains("SENT")).ToList()));
    }

    [Fact]
    public async Task Disconnecting_a_Gmail_mailbox_stops_the_watch_and_hands_the_grant_back_to_Google()
    {
        var user = await app.NewUserAsync();
        var id = await ConnectAsync(user);
        var revoked = Google.Revoked.Count;
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/mailboxes/{id}")).StatusCode);
        Assert.True(Google.Revoked.Count > revoked);
        Assert.Equal(1, Google.Read(user.Email, m => m.StopCalls));
        Assert.Empty(app.WithDb(db => db.MailboxCursors.Where(c => c.ConnectionId == id).ToList()));
    }

    // ---- the page ----

    [Fact]
    public async Task The_mailboxes_page_offers_Connect_Gmail_lists_the_mailbox_and_explains_a_refused_connection()
    {
        const string password = "Gmail-Page-Test1";
        var user = await app.NewUserAsync(password: password);
        await ConnectAsync(user);
        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var page = await browser.GetStringAsync("/mailboxes");
        Assert.Contains("id=\"connect-gmail-button\"", page);
        Assert.Contains("href=\"/mailboxes/gmail/connect\"", page);
        Assert.Contains("<td>Gmail</td>", page);
        Assert.DoesNotContain("gmail-not-configured", page);

        var refused = await browser.GetStringAsync("/mailboxes?gmail=not-yours");
        Assert.Contains("is not one of your addresses", refused);
        var odd = await browser.GetStringAsync("/mailboxes?gmail=%3Cscript%3Ealert(1)%3C/script%3E");
        Assert.DoesNotContain("gmail-notice", odd);
        Assert.DoesNotContain("<script>alert", odd);
    }
}

static class WebSignIn
{
    /// <summary>A browser-like client signed in through the login form (pages take the cookie, not API tokens).</summary>
    public static async Task<HttpClient> SignInAsync(AppFactory app, string email, string password)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var form = await client.GetStringAsync("/login");
        var token = System.Text.RegularExpressions.Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "no antiforgery token on /login");
        var res = await client.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email, ["Password"] = password, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return client;
    }
}

/// <summary>A server without Gmail settings says so plainly.</summary>
public sealed class GmailConnectorOnSqlite(GmailSqliteApp app) : GmailConnectorTests(app), IClassFixture<GmailSqliteApp>;

public sealed class GmailConnectorOnPostgres(GmailPostgresApp app) : GmailConnectorTests(app), IClassFixture<GmailPostgresApp>;

public sealed class GmailNotConfiguredTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Connecting_Gmail_answers_a_clear_problem()
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.GetAsync(GmailMailboxApi.ConnectPath);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Gmail is not configured on this server.", problem.GetProperty("title").GetString());
        Assert.Contains("ClientId", problem.GetProperty("detail").GetString());
    }

    [Fact]
    public async Task Connecting_needs_a_signed_in_user()
    {
        using var anonymous = app.Anonymous(null);
        var res = await anonymous.GetAsync(GmailMailboxApi.ConnectPath);
        Assert.True(res.StatusCode is HttpStatusCode.Unauthorized || (res.StatusCode == HttpStatusCode.Redirect && res.Headers.Location!.OriginalString.Contains("/login")),
            $"{(int)res.StatusCode} {res.Headers.Location}");
        var push = await anonymous.PostAsync(GmailMailboxApi.PushPath, new StringContent("{}", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.Unauthorized, push.StatusCode);
    }

    [Fact]
    public async Task The_mailboxes_page_says_Gmail_is_not_configured()
    {
        const string password = "Gmail-Page-Test1";
        var user = await app.NewUserAsync(password: password);
        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var page = await browser.GetStringAsync("/mailboxes");
        Assert.Contains("id=\"gmail-not-configured\"", page);
        Assert.Contains("Gmail is not configured on this server", page);
        Assert.DoesNotContain("connect-gmail-button", page);
    }
}
