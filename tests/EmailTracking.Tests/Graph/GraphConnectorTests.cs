using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;
using MimeKit.Utils;

namespace EmailTracking.Tests.Graph;

/// <summary>
/// Microsoft 365 end to end against the fake identity platform and Graph: the real MSAL and Graph SDK on the wire,
/// sign-in, sending, change notifications, delta, and what happens when things go wrong.
/// </summary>
public abstract class GraphConnectorTests(GraphFixture f)
{
    const string Bob = "bob@partner.test";

    GraphApp App => f.App;
    FakeMicrosoft Fake => f.Fake;

    [Fact]
    public async Task Connecting_checks_the_state_and_that_the_address_is_the_users_and_keeps_the_tokens_encrypted()
    {
        var user = await App.NewUserAsync();
        Fake.AddAccount(user.Email);
        var start = await user.Client.GetAsync("/mailboxes/microsoft/connect");
        Assert.Equal(HttpStatusCode.Redirect, start.StatusCode);
        var authorize = new Uri(start.Headers.Location!.OriginalString);
        var query = Microsoft.AspNetCore.WebUtilities.QueryHelpers.ParseQuery(authorize.Query);
        Assert.Equal(FakeMicrosoft.ClientId, query["client_id"].ToString());
        Assert.Equal("S256", query["code_challenge_method"].ToString());
        Assert.Equal(["openid", "profile", "offline_access", "Mail.ReadWrite", "Mail.Send", "User.Read"], query["scope"].ToString().Split(' '));
        Assert.DoesNotContain(user.Id.ToString(), query["state"].ToString());

        var callback = await App.SignInAsync(user, user.Email);
        // Another signed-in user who is sent to the same callback (login CSRF) gets nothing: the state is not theirs.
        var stranger = await App.NewUserAsync();
        var stolen = await stranger.Client.GetAsync(callback);
        Assert.Equal(HttpStatusCode.BadRequest, stolen.StatusCode);
        Assert.Empty((await stranger.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());

        var done = await user.Client.GetAsync(callback);
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Equal("/mailboxes", done.Headers.Location?.OriginalString);
        var id = await App.WaitForMailboxAsync(user, m => m.GetProperty("status").GetString() == "active");
        var stored = App.WithDb(db => db.Mailboxes.AsNoTracking().First(m => m.Id == id));
        Assert.Equal(MailboxKind.Graph, stored.Kind);
        Assert.Equal(user.Email, stored.Address);
        Assert.DoesNotContain("0.AAAA", stored.ProtectedSecret);
        Assert.DoesNotContain("eyJ0eXAi", stored.ProtectedSecret);

        // The same callback again (replayed), or a forged state in a fresh sign-in: refused, nothing changes.
        Assert.Equal(HttpStatusCode.BadRequest, (await user.Client.GetAsync(callback)).StatusCode);
        var fresh = await App.SignInAsync(user, user.Email);
        var forged = System.Text.RegularExpressions.Regex.Replace(fresh, "state=[^&]+", "state=forged");
        Assert.Equal(HttpStatusCode.BadRequest, (await user.Client.GetAsync(forged)).StatusCode);

        // A Microsoft account that is not one of the user's addresses is not connected.
        var other = await App.NewUserAsync();
        var foreign = $"ceo{Guid.NewGuid():N}"[..10] + "@contoso.test";
        Fake.AddAccount(foreign);
        var refused = await other.Client.GetAsync(await App.SignInAsync(other, foreign));
        Assert.Equal(HttpStatusCode.Redirect, refused.StatusCode);
        Assert.Equal("/mailboxes", refused.Headers.Location?.OriginalString);
        Assert.Empty((await other.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray());
    }

    [Fact]
    public async Task A_microsoft_account_whose_address_is_the_punycode_form_of_the_users_alias_is_connected()
    {
        var user = await App.NewUserAsync();
        var name = $"me{Guid.NewGuid():N}"[..12];
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = name + "@例え.jp" })).IsSuccessStatusCode);
        Fake.AddAccount(name + "@xn--r8jz45g.jp");
        var done = await user.Client.GetAsync(await App.SignInAsync(user, name + "@xn--r8jz45g.jp"));
        Assert.Equal("/mailboxes", done.Headers.Location?.OriginalString);
        var id = await App.WaitForMailboxAsync(user, m => m.GetProperty("status").GetString() == "active");
        Assert.Equal(name + "@xn--r8jz45g.jp", App.WithDb(db => db.Mailboxes.AsNoTracking().First(m => m.Id == id).Address));
    }

    [Fact]
    public async Task A_sent_copy_records_exchanges_message_id_and_conversation_and_a_notified_reply_reaches_the_message_and_the_feed()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        Fake.Throttle(1); // the first call is answered 429 with Retry-After; the SDK waits and tries again
        var (messageId, copyId) = await SendAsync(user, address, "Proposal");

        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        var copy = App.Copy(copyId);
        Assert.Equal(sentItem.InternetMessageId.Trim('<', '>'), copy.SentMessageIdHeader);
        Assert.Equal(sentItem.ConversationId, copy.ProviderThreadId);
        var wire = Assert.Single(Fake[address].Outbox);
        Assert.Equal(copy.PixelToken, wire.Headers["X-ET-Token"]);
        Assert.Equal([Bob], wire.To.Mailboxes.Select(m => m.Address));
        Assert.Contains("/o/" + copy.PixelToken, wire.HtmlBody);

        using var feed = await Sse.OpenAsync(user.Client, "/api/feed");
        Fake.Deliver(address, Reply(sentItem, Bob, address, "Looks good, let's talk."));
        Assert.All(await Fake.NotifyAsync(address, "inbox"), s => Assert.Equal(HttpStatusCode.Accepted, s));

        var item = await NextReplyAsync(feed, messageId);
        Assert.Equal(Bob, item.GetProperty("fromAddress").GetString());
        var recipients = (await user.Client.GetJsonAsync($"/api/messages/{messageId}")).GetProperty("message").GetProperty("recipients");
        Assert.True(recipients.EnumerateArray().Single(r => r.GetProperty("address").GetString() == Bob).GetProperty("counts").GetProperty("replied").GetBoolean());
    }

    [Fact]
    public async Task Per_recipient_copies_each_reach_only_their_recipient_and_are_found_by_header_where_the_property_filter_is_refused()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        Fake.RefusePropertyFilter = true;
        try
        {
            var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
            {
                from = address, subject = "Two copies", to = new[] { Bob }, cc = new[] { "carol@partner.test" }, bcc = new[] { "dave@partner.test" },
                html = "<p>Hello</p>", perRecipient = true,
            }, TestApi.Json);
            var text = await send.Content.ReadAsStringAsync();
            Assert.True(send.StatusCode == HttpStatusCode.Created, text);
            var copies = JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray()
                .ToDictionary(c => c.GetProperty("recipients")[0].GetString()!, c => c.GetProperty("copyId").GetGuid());
            Assert.Equal(3, copies.Count);
            var outbox = Fake[address].Outbox;
            Assert.Equal(3, outbox.Count);
            Assert.Single(outbox, m => m.To.Mailboxes.Select(a => a.Address).SequenceEqual([Bob]) && m.Cc.Count == 0 && m.Bcc.Count == 0);
            Assert.Single(outbox, m => m.To.Count == 0 && m.Cc.Mailboxes.Select(a => a.Address).SequenceEqual(["carol@partner.test"]));
            Assert.Single(outbox, m => m.To.Count == 0 && m.Cc.Count == 0 && m.Bcc.Mailboxes.Select(a => a.Address).SequenceEqual(["dave@partner.test"]));
            var sentIds = Fake.Folder(address, "sentitems").Select(m => m.InternetMessageId.Trim('<', '>')).ToHashSet();
            var recorded = copies.Values.Select(id => App.Copy(id).SentMessageIdHeader).ToList();
            Assert.All(recorded, id => Assert.Contains(id!, sentIds));
            Assert.Equal(3, recorded.Distinct().Count());
        }
        finally
        {
            Fake.RefusePropertyFilter = false;
        }
    }

    [Fact]
    public async Task Refreshed_tokens_are_kept_in_the_mailboxs_encrypted_token_cache()
    {
        Fake.AccessTokenLifetime = 60; // under MSAL's five-minute margin: every call refreshes
        try
        {
            var (user, address, mailboxId) = await App.ConnectedUserAsync();
            var before = App.WithDb(db => db.Mailboxes.AsNoTracking().First(m => m.Id == mailboxId).ProtectedSecret);
            await SendAsync(user, address, "Fresh tokens");
            Assert.True(Fake[address].TokenRefreshes > 0);
            await Eventually.TrueAsync(() => Task.FromResult(App.WithDb(db => db.Mailboxes.AsNoTracking().First(m => m.Id == mailboxId).ProtectedSecret) != before),
                "the refreshed cache to be stored");
            Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());
        }
        finally
        {
            Fake.AccessTokenLifetime = 3600;
        }
    }

    [Fact]
    public async Task The_handshake_echoes_the_token_and_a_notification_with_a_wrong_client_state_changes_nothing()
    {
        var client = App.Anonymous();
        foreach (var path in new[] { "/hooks/graph/notifications", "/hooks/graph/lifecycle" })
        {
            var token = "Validation: Testing client application reachability for subscription Request-Id: 6f2 a+b/c";
            var res = await client.PostAsync(path + "?validationToken=" + Uri.EscapeDataString(token), new StringContent("", Encoding.UTF8, "text/plain"));
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal("text/plain", res.Content.Headers.ContentType?.MediaType);
            Assert.Equal(token, await res.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync(path, new StringContent("{not json", Encoding.UTF8, "application/json"))).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync(path, new StringContent("{\"value\":3}", Encoding.UTF8, "application/json"))).StatusCode);
            Assert.Equal(HttpStatusCode.BadRequest, (await client.PostAsync(path, new StringContent("{\"value\":[{\"clientState\":\"x\"}]}", Encoding.UTF8, "application/json"))).StatusCode);
        }

        var (user, address, _) = await App.ConnectedUserAsync();
        var (messageId, _) = await SendAsync(user, address, "Quote");
        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        Fake.Deliver(address, Reply(sentItem, Bob, address, "Please call me."));
        var before = Fake[address].DeltaCalls;
        Assert.All(await Fake.NotifyAsync(address, "inbox", clientState: "guessed-client-state"), s => Assert.Equal(HttpStatusCode.Accepted, s));
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(before, Fake[address].DeltaCalls);
        Assert.Equal(0, await RepliesAsync(user, messageId));

        Assert.All(await Fake.NotifyAsync(address, "inbox"), s => Assert.Equal(HttpStatusCode.Accepted, s));
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply after an authentic notification");
    }

    [Fact]
    public async Task An_expired_delta_link_reads_the_folder_again_and_each_reply_is_recorded_once()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var (messageId, _) = await SendAsync(user, address, "Offer");
        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        var first = Fake.Deliver(address, Reply(sentItem, Bob, address, "First answer."));
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the first reply");

        Fake.ForgetSyncStates();
        Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "Second answer, from Carol."));
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 2, "the second reply after the resync");
        Assert.Equal(2, Fake[address].MimeReads[first.InternetMessageId]); // read again by the resync, counted once
        Assert.True(Fake[address].NextLinkCalls > 0, "the resync followed @odata.nextLink pages");
        await Task.Delay(1000);
        Assert.Equal(2, await RepliesAsync(user, messageId));
    }

    [Fact]
    public async Task A_message_that_is_not_MIME_is_noted_for_the_user_and_the_reply_after_it_is_still_recorded()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (messageId, _) = await SendAsync(user, address, "Broken");
        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        var garbage = System.Security.Cryptography.RandomNumberGenerator.GetBytes(2500);
        garbage[0] = 0; // cannot start a header
        var broken = Fake.DeliverRaw(address, garbage);
        Fake.Deliver(address, Reply(sentItem, Bob, address, "The answer after the broken one."));
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply behind the broken message");

        var notes = await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable");
        var note = Assert.Single(notes.EnumerateArray());
        Assert.Equal("graph:" + broken.Id, note.GetProperty("providerId").GetString());
        Assert.Equal("inbox", note.GetProperty("folder").GetString());
        Assert.Equal(2500, note.GetProperty("size").GetInt64());
        Assert.StartsWith("not a readable MIME message:", note.GetProperty("reason").GetString());
        var row = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == mailboxId);
        Assert.Equal(1, row.GetProperty("unreadable").GetInt32());

        // Read again after the sync state is lost: still one note.
        Fake.ForgetSyncStates();
        Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "Carol's answer."));
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 2, "the second reply after the resync");
        Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
    }

    [Fact]
    public async Task A_message_Exchange_cannot_give_as_MIME_is_matched_from_its_headers_and_does_not_hold_the_mailbox_up()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (messageId, _) = await SendAsync(user, address, "Signed");
        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        // A signed (S/MIME) answer: Exchange serves the item and its headers, never its MIME (a 500 every time).
        Fake.Deliver(address, Reply(sentItem, Bob, address, "Signed answer."), mimeUnconvertible: true);
        // One without headers either (such as a report about a signed mail): noted, and passed.
        var report = Fake.DeliverRaw(address, Encoding.ASCII.GetBytes("never served"), mimeUnconvertible: true);
        Fake.Deliver(address, Reply(sentItem, "carol@partner.test", address, "Carol's answer after them."));
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 2, "the signed answer and the one after it");

        var note = Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
        Assert.Equal("graph:" + report.Id, note.GetProperty("providerId").GetString());
        Assert.Contains("ErrorMimeContentConversionFailed", note.GetProperty("reason").GetString());
        var row = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single(m => m.GetProperty("id").GetGuid() == mailboxId);
        Assert.Equal("active", row.GetProperty("status").GetString());
    }

    [Fact]
    public async Task Disconnecting_a_mailbox_ends_its_subscriptions_at_once()
    {
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        await Eventually.TrueAsync(() => Task.FromResult(Fake.SubscriptionsOf(address).Count == 2), "both subscriptions");

        var res = await user.Client.DeleteAsync($"/api/mailboxes/{mailboxId}");
        Assert.Equal(System.Net.HttpStatusCode.NoContent, res.StatusCode);
        Assert.Empty(Fake.SubscriptionsOf(address));
    }

    [Fact]
    public async Task A_subscription_created_while_the_mailbox_is_disconnected_is_deleted_at_Microsoft()
    {
        var user = await App.NewUserAsync();
        Fake.AddAccount(user.Email);
        var hold = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        Fake.HoldSubscriptionCreates = hold;
        try
        {
            // The watch's first subscription is on its way when the user disconnects the mailbox.
            var done = await user.Client.GetAsync(await App.SignInAsync(user, user.Email));
            Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
            await Fake.SubscriptionCreateHeld.Task.WaitAsync(TimeSpan.FromSeconds(30));
            var mailboxId = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("id").GetGuid();
            var created = Fake.SubscriptionsCreated;
            Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/mailboxes/{mailboxId}")).StatusCode);

            // Microsoft completes the create all the same.
            Fake.HoldSubscriptionCreates = null;
            hold.SetResult();
            await Eventually.TrueAsync(() => Task.FromResult(Fake.SubscriptionsCreated > created), "the held create to go through at Microsoft");
            await Eventually.TrueAsync(() => Task.FromResult(Fake.SubscriptionsOf(user.Email).Count == 0),
                () => $"no live subscription of the disconnected mailbox; there are {Fake.SubscriptionsOf(user.Email).Count}");
            Assert.Empty(App.WithDb(db => db.MailboxCursors.Where(c => c.ConnectionId == mailboxId).ToList()));
        }
        finally
        {
            Fake.HoldSubscriptionCreates = null;
            hold.TrySetResult();
        }
    }

    [Fact]
    public async Task A_long_Retry_After_is_waited_out_before_the_next_call_and_the_mailbox_says_until_when()
    {
        // This watch runs on the test's clock: its waits are seen, not slept. The longest back-off is far beyond the
        // schedule's first step (5 s), so that waiting out Retry-After cannot be mistaken for backing off.
        var app = new GraphApp(Fake, provider: f.Provider, settings: new Dictionary<string, string>
        {
            ["Mailboxes:Watch"] = "false",
            ["Mailboxes:MaxBackoff"] = "00:30:00",
        });
        await app.InitializeAsync();
        try
        {
            Fake.AppHandler = () => app.Server.CreateHandler();
            var user = await app.NewUserAsync();
            Fake.AddAccount(user.Email);
            Assert.Equal(HttpStatusCode.Redirect, (await user.Client.GetAsync(await app.SignInAsync(user, user.Email))).StatusCode);
            var mailboxId = app.WithDb(db => db.Mailboxes.Single(m => m.UserId == user.Id).Id);

            var clock = new RecordingClock(DateTimeOffset.UtcNow);
            // 503 with Retry-After: Microsoft asks to come back in two minutes (429 is the same to the watch).
            Fake.Throttle(1000, retryAfter: 120, status: 503);
            using var stop = new CancellationTokenSource();
            using var scope = app.Services.CreateScope();
            var watch = ActivatorUtilities.CreateInstance<GraphWatch>(scope.ServiceProvider, (TimeProvider)clock);
            var run = watch.RunAsync(mailboxId, stop.Token);
            try
            {
                Assert.Equal(TimeSpan.FromSeconds(120), await clock.NextDelayAsync());
                var mailbox = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId));
                Assert.Equal(MailboxStatus.Active, mailbox.Status);
                Assert.Contains("throttling", mailbox.StatusMessage);
                Assert.Contains(clock.GetUtcNow().AddSeconds(120).ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture), mailbox.StatusMessage);
                Assert.Null(mailbox.LastSyncAt);

                // Microsoft lets go; once the wait is over the mailbox is read again.
                Fake.Throttle(0);
                clock.Advance(TimeSpan.FromSeconds(120));
                await Eventually.TrueAsync(() => Task.FromResult(app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId)).LastSyncAt is not null),
                    "a round after the wait");
                Assert.Null(app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId)).StatusMessage);
            }
            finally
            {
                Fake.Throttle(0);
                await stop.CancelAsync();
                await run.WaitAsync(TimeSpan.FromSeconds(30));
            }
        }
        finally
        {
            Fake.AppHandler = () => App.Server.CreateHandler();
            await ((IAsyncLifetime)app).DisposeAsync();
        }
    }

    [Fact]
    public async Task A_send_still_throttled_when_the_sdk_gives_up_its_retries_is_refused_for_now_not_for_good()
    {
        var (_, address, mailboxId) = await App.ConnectedUserAsync();
        using var scope = App.Services.CreateScope();
        var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Graph);
        var mailbox = App.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId));
        var sender = MailboxAddress.Parse(address);
        var mime = new MimeMessage { Subject = "Throttled", MessageId = MimeUtils.GenerateMessageId("et.test"), Date = DateTimeOffset.UtcNow };
        mime.From.Add(sender);
        mime.To.Add(MailboxAddress.Parse(Bob));
        mime.Body = new TextPart("html") { Text = "<p>Hello</p>" };
        // Retry-After: 1 each time: the SDK waits and tries three more times, and is refused every time.
        Fake.Throttle(1000);
        TransportResult result;
        try
        {
            result = await transport.SendAsync(mailbox, [new OutgoingCopy(Guid.NewGuid(), mime, sender, [MailboxAddress.Parse(Bob)])], CancellationToken.None);
        }
        finally
        {
            Fake.Throttle(0);
        }
        var copy = Assert.Single(result.Copies);
        Assert.False(copy.Sent);
        Assert.True(copy.Temporary, copy.Error);
        Assert.False(copy.MayHaveLeft); // the draft was never made
        Assert.Contains("throttling", copy.Error);
        Assert.Empty(Fake[address].Outbox);
    }

    [Fact]
    public async Task A_keyed_send_that_stopped_after_it_left_is_found_in_Sent_Items_by_its_retry_and_recorded_with_Exchanges_ids()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var key = Guid.NewGuid().ToString();
        var body = new { from = address, subject = "Stopped after it left", to = new[] { Bob }, html = "<p>Hello Bob</p>" };
        var (first, firstText) = await Api.StoppedSends.SendAsync(user, body, key);
        Assert.True(first.StatusCode == HttpStatusCode.Created, firstText);
        var messageId = JsonDocument.Parse(firstText).RootElement.GetProperty("id").GetGuid();
        await Api.StoppedSends.RewindAsync(App, messageId);

        var (retry, text) = await Api.StoppedSends.SendAsync(user, body, key);
        Assert.True(retry.StatusCode == HttpStatusCode.Created, text);
        Assert.True(retry.Headers.Contains(EmailTracking.Server.Messages.IdempotencyKeys.CompletedOnRetryHeader));
        Assert.Single(Fake[address].Outbox);
        var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
        var copy = App.WithDb(db => db.Copies.AsNoTracking().Single(c => c.TrackedMessageId == messageId));
        Assert.Equal(sentItem.InternetMessageId.Trim('<', '>'), copy.SentMessageIdHeader);
        Assert.Equal(sentItem.ConversationId, copy.ProviderThreadId);

        // Sent Items cannot be searched (throttled past the SDK's retries): the 409 stays, saying so, and nothing goes.
        await Api.StoppedSends.RewindAsync(App, messageId);
        Fake.Throttle(1000);
        try
        {
            var (stuck, stuckText) = await Api.StoppedSends.SendAsync(user, body, key);
            Assert.True(stuck.StatusCode == HttpStatusCode.Conflict, stuckText);
            Assert.Contains("could not be asked what it sent", JsonDocument.Parse(stuckText).RootElement.GetProperty("reason").GetString());
        }
        finally
        {
            Fake.Throttle(0);
        }
        Assert.Single(Fake[address].Outbox);
    }

    [Fact]
    public async Task Whether_a_copy_left_is_not_answered_no_when_Sent_Items_could_not_be_searched()
    {
        // After a crash between a send and its record, "not in Sent" means "send it again": a search that failed must
        // not say so, or the recipient gets the mail twice.
        var (user, address, mailboxId) = await App.ConnectedUserAsync();
        var (_, copyId) = await SendAsync(user, address, "Did it leave?");
        var copy = App.Copy(copyId);
        using var scope = App.Services.CreateScope();
        var transport = scope.ServiceProvider.GetRequiredKeyedService<IMailTransport>(MailboxKind.Graph);
        var mailbox = App.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == mailboxId));
        Assert.True(await transport.IsInSentAsync(mailbox, copy.MessageIdHeader, copy.PixelToken, CancellationToken.None));
        Assert.False(await transport.IsInSentAsync(mailbox, "never@sent.test", "NeverSentNeverSentNever0", CancellationToken.None));

        Fake.Throttle(1000); // still throttled after the SDK's own retries
        try
        {
            var problem = await Assert.ThrowsAsync<MailboxException>(() => transport.IsInSentAsync(mailbox, copy.MessageIdHeader, copy.PixelToken, CancellationToken.None));
            Assert.Contains("throttling", problem.Message);
            Assert.False(problem.NeedsReconnect);
        }
        finally
        {
            Fake.Throttle(0);
        }
    }

    [Fact]
    public async Task Reconnecting_the_address_with_another_Microsoft_account_ends_the_old_accounts_subscriptions()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var old = Fake.SubscriptionsOf(address).Select(s => s.Id).ToList();
        Assert.Equal(2, old.Count);

        // Another Microsoft account signs in as the same address: the old account's subscriptions are not the mailbox's
        // any more, and would notify this server for days.
        Fake.AddAccount(address);
        Assert.Equal(HttpStatusCode.Redirect, (await user.Client.GetAsync(await App.SignInAsync(user, address))).StatusCode);
        await Eventually.TrueAsync(() => Task.FromResult(Fake.SubscriptionsOf(address).Count(s => !old.Contains(s.Id)) == 2), "the new account's subscriptions");
        Assert.DoesNotContain(Fake.SubscriptionsOf(address), s => old.Contains(s.Id));
    }

    [Fact]
    public async Task After_a_restart_the_watch_neither_misses_nor_double_counts()
    {
        var first = new GraphApp(Fake, provider: f.Provider);
        await first.InitializeAsync();
        GraphApp? second = null;
        try
        {
            Fake.AppHandler = () => first.Server.CreateHandler();
            var (user, address, _) = await first.ConnectedUserAsync();
            var (messageId, _) = await SendAsync(user, address, "Renewal");
            var sentItem = Assert.Single(Fake.Folder(address, "sentitems"));
            var early = Fake.Deliver(address, Reply(sentItem, Bob, address, "Before the restart."));
            await Fake.NotifyAsync(address, "inbox");
            await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply before the restart");
            first.Dispose(); // the server stops; its database stays

            // While it is down an answer arrives; its notification reaches nobody.
            var late = Fake.Deliver(address, Reply(sentItem, Bob, address, "While you were away."));
            second = new GraphApp(Fake, first.ConnectionString, f.Provider);
            await second.InitializeAsync();
            Fake.AppHandler = () => second.Server.CreateHandler();
            var client = second.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
            client.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", user.Token);
            var again = user with { Client = client };
            await Eventually.TrueAsync(async () => await RepliesAsync(again, messageId) == 2, "the reply that arrived while the server was down");
            Assert.True(1 == Fake[address].MimeReads[early.InternetMessageId], $"early {early.Sequence} late {late.Sequence}: " + string.Join(" | ", Fake[address].DeltaLog));
            Assert.Equal(1, Fake[address].MimeReads[late.InternetMessageId]);
            Assert.Equal(2, Fake.SubscriptionsOf(address).Count); // the stored subscriptions were still good
        }
        finally
        {
            Fake.AppHandler = () => App.Server.CreateHandler();
            if (second is not null) second.Dispose();
            await ((IAsyncLifetime)first).DisposeAsync();
        }
    }

    [Fact]
    public async Task A_revoked_sign_in_marks_the_mailbox_needs_reconnect_and_sending_is_refused()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        Fake.Revoke(address);
        await Fake.NotifyAsync(address, "inbox");
        await App.WaitForMailboxAsync(user, m => m.GetProperty("status").GetString() == "needs-reconnect");
        var mailbox = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
        Assert.Contains("invalid_grant", mailbox.GetProperty("statusMessage").GetString());
        Assert.Contains("Connect the mailbox again", mailbox.GetProperty("statusMessage").GetString());

        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new { from = address, subject = "Hello", to = new[] { Bob }, html = "<p>Hi</p>" }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Conflict, send.StatusCode);
    }

    [Fact]
    public async Task A_small_file_goes_as_a_fileAttachment_and_a_4_MB_one_through_an_upload_session_in_every_copy()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var small = Mailboxes.TestFiles.Pdf(200 * 1024, seed: 2);
        var large = Mailboxes.TestFiles.Pdf(4 * 1024 * 1024, seed: 3);
        var before = Fake.AttachmentLog.Count;
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject = "Files", to = new[] { Bob, "carol@partner.test" }, html = "<p>Two files</p>", perRecipient = true,
            attachments = new[] { Mailboxes.TestFiles.Attachment("brief.pdf", small), Mailboxes.TestFiles.Attachment("Übersicht.pdf", large) },
        }, TestApi.Json);
        var text = await send.Content.ReadAsStringAsync();
        Assert.True(send.StatusCode == HttpStatusCode.Created, text);
        Assert.All(JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray(), c => Assert.True(c.GetProperty("sent").GetBoolean(), c.ToString()));

        // Each copy: one POST for the small file; for the large one a session, then PUTs in order, each under 4 MB.
        var log = Fake.AttachmentLog.Skip(before).ToList();
        var slice = 12 * 320 * 1024;
        string[] perCopy =
        [
            $"fileAttachment brief.pdf {small.Length}",
            $"createUploadSession Übersicht.pdf {large.Length}",
            $"PUT bytes 0-{slice - 1}/{large.Length}",
            $"PUT bytes {slice}-{large.Length - 1}/{large.Length}",
        ];
        Assert.Equal([.. perCopy, .. perCopy], log);

        var outbox = Fake[address].Outbox.TakeLast(2).ToList();
        Assert.All(outbox, m =>
        {
            var files = m.Attachments.OfType<MimePart>().ToList();
            Assert.Equal(["brief.pdf", "Übersicht.pdf"], files.Select(f => f.FileName));
            Assert.All(files, f => Assert.Equal("application/pdf", f.ContentType.MimeType));
            using var bytes = new MemoryStream();
            files[1].Content!.DecodeTo(bytes);
            Assert.Equal(large, bytes.ToArray());
        });
    }

    [Fact]
    public async Task Programs_and_attachments_past_25_MB_are_refused_by_name_and_nothing_is_registered_or_sent()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var outbox = Fake[address].Outbox.Count;
        async Task<string[]> RefusedAsync(params object[] attachments)
        {
            var res = await user.Client.PostAsJsonAsync("/api/messages/send", new
            {
                from = address, subject = "Files", to = new[] { Bob }, html = "<p>Files</p>", attachments,
            }, TestApi.Json);
            var text = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.BadRequest, text);
            return [.. JsonDocument.Parse(text).RootElement.GetProperty("errors").GetProperty("attachments").EnumerateArray().Select(e => e.GetString()!)];
        }

        var setup = Assert.Single(await RefusedAsync(Mailboxes.TestFiles.Attachment("setup.exe", Mailboxes.TestFiles.Pdf(1000))));
        Assert.StartsWith("setup.exe is refused: .exe files are programs or scripts.", setup);
        Assert.Contains("Gmail and Outlook block such files", setup);
        // A program under another name, and a script in a zip, are refused too; the client's content type is not believed.
        var program = "MZ\u0090\0"u8.ToArray().Concat(new byte[500]).ToArray();
        Assert.Contains("invoice.pdf is refused: its content is a Windows program", Assert.Single(await RefusedAsync(Mailboxes.TestFiles.Attachment("invoice.pdf", program, "application/pdf"))));
        using (var zipped = new MemoryStream())
        {
            using (var zip = new System.IO.Compression.ZipArchive(zipped, System.IO.Compression.ZipArchiveMode.Create, leaveOpen: true))
            {
                using var entry = zip.CreateEntry("docs/run.js").Open();
                entry.Write("alert(1)"u8);
            }
            Assert.Contains("photos.zip is refused: the archive holds run.js", Assert.Single(await RefusedAsync(Mailboxes.TestFiles.Attachment("photos.zip", zipped.ToArray()))));
        }
        var tooMuch = Assert.Single(await RefusedAsync(
            Mailboxes.TestFiles.Attachment("part1.pdf", Mailboxes.TestFiles.Pdf(13 * 1024 * 1024)),
            Mailboxes.TestFiles.Attachment("part2.pdf", Mailboxes.TestFiles.Pdf(13 * 1024 * 1024))));
        Assert.StartsWith("part2.pdf takes the attachments past 25 MB in all (26 MB with it)", tooMuch);

        Assert.Equal(outbox, Fake[address].Outbox.Count);
        Assert.Empty(await user.Client.GetJsonAsync("/api/messages") is { ValueKind: JsonValueKind.Array } list ? list.EnumerateArray().ToList() : []);
    }

    [Fact]
    public async Task An_expired_client_secret_of_the_server_is_not_put_to_the_user_as_a_reconnect()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        try
        {
            // The administrator's client secret ran out: no user can fix that by signing in again (a new sign-in is
            // refused the same way), so the mailbox stays connected and says what is wrong, and it works again as soon
            // as the server has a new secret.
            Fake.ClientSecretExpired = true;
            Fake.ForgetAccessTokens();
            await Fake.NotifyAsync(address, "inbox");
            await App.WaitForMailboxAsync(user, m => m.GetProperty("statusMessage").GetString()?.Contains("invalid_client", StringComparison.Ordinal) == true
                || m.GetProperty("status").GetString() != "active");
            var mailbox = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
            Assert.Equal("active", mailbox.GetProperty("status").GetString());
            Assert.DoesNotContain("Connect the mailbox again", mailbox.GetProperty("statusMessage").GetString());

            await user.Client.PostAsJsonAsync("/api/messages/send", new { from = address, subject = "Hello", to = new[] { Bob }, html = "<p>Hi</p>" }, TestApi.Json);
            Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());
        }
        finally
        {
            Fake.ClientSecretExpired = false;
        }
    }

    [Fact]
    public async Task Mail_sent_from_Outlook_with_our_header_gets_its_real_message_id_and_a_reply_matched_by_conversation_counts()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var registered = await user.RegisterAsync(new { from = address, subject = "From Outlook", to = new[] { Bob }, html = "<p>Hello from Outlook</p>", source = "outlook-addin" });
        var messageId = registered.GetProperty("id").GetGuid();
        var copyJson = registered.GetProperty("copies")[0];
        var copyId = copyJson.GetProperty("id").GetGuid();
        var token = App.Copy(copyId).PixelToken;

        // Outlook sends it: the add-in's draft Message-ID is not the one that leaves.
        var mime = new MimeMessage { Subject = "From Outlook", MessageId = "draft-" + Guid.NewGuid().ToString("N") + "@outlook.draft", Date = DateTimeOffset.UtcNow };
        mime.From.Add(MailboxAddress.Parse(address));
        mime.To.Add(MailboxAddress.Parse(Bob));
        mime.Headers.Add("X-ET-Token", token);
        mime.Body = new TextPart("html") { Text = "<p>Hello from Outlook</p>" };
        var sent = Fake.SendFromOutlook(address, mime);
        await Fake.NotifyAsync(address, "sentitems");
        await Eventually.TrueAsync(() => Task.FromResult(App.Copy(copyId).SentMessageIdHeader == sent.InternetMessageId.Trim('<', '>')), "the real Message-ID from Sent Items");
        Assert.Equal(sent.ConversationId, App.Copy(copyId).ProviderThreadId);

        // Bob's client quotes neither id (no In-Reply-To, no References): Exchange threads it by conversation.
        var reply = new MimeMessage { Subject = "RE: From Outlook", MessageId = MimeUtils.GenerateMessageId("partner.test"), Date = DateTimeOffset.UtcNow };
        reply.From.Add(MailboxAddress.Parse(Bob));
        reply.To.Add(MailboxAddress.Parse(address));
        reply.Body = new TextPart("plain") { Text = "Got it, thanks." };
        Fake.Deliver(address, reply, conversationId: sent.ConversationId);
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply matched by conversationId");
    }

    [Fact]
    public async Task A_forward_of_ones_own_tracked_mail_in_Sent_Items_is_not_taken_for_its_copy()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        const string body = "<p>Hello Bob, see <a href=\"https://encom.test/grid\">the grid</a>.</p>";
        var registered = await user.RegisterAsync(new { from = address, subject = "Grid proposal", to = new[] { Bob }, html = body, source = "outlook-addin" });
        var copyJson = registered.GetProperty("copies")[0];
        var copyId = copyJson.GetProperty("id").GetGuid();
        var tracked = copyJson.GetProperty("html").GetString()!;

        // Outlook sent it, and a gateway dropped our header: Sent Items finds it by the pixel and links in its body.
        var copy = new MimeMessage { Subject = "Grid proposal", Date = DateTimeOffset.UtcNow };
        copy.From.Add(MailboxAddress.Parse(address));
        copy.To.Add(MailboxAddress.Parse(Bob));
        copy.Body = new TextPart("html") { Text = tracked };
        var sent = Fake.SendFromOutlook(address, copy);
        await Fake.NotifyAsync(address, "sentitems");
        await Eventually.TrueAsync(() => Task.FromResult(App.Copy(copyId).SentMessageIdHeader == sent.InternetMessageId.Trim('<', '>')), "the copy's Message-ID from Sent Items");

        // The user forwards it to Lora, untracked: Outlook writes a forward without In-Reply-To or References, and
        // quotes the tracked body, pixel and links and all, below its own text.
        var forward = new MimeMessage { Subject = "FW: Grid proposal", Date = DateTimeOffset.UtcNow.AddMinutes(5) };
        forward.From.Add(MailboxAddress.Parse(address));
        forward.To.Add(MailboxAddress.Parse("lora@partner.test"));
        forward.Headers.Add("Thread-Index", Convert.ToBase64String([.. Enumerable.Range(1, 27).Select(i => (byte)i)]));
        forward.Body = new TextPart("html")
        {
            Text = "<p>Lora, FYI.</p><div id=\"divRplyFwdMsg\"><b>From:</b> Kevin Flynn<br><b>Sent:</b> Monday<br><b>To:</b> Bob<br>" +
                   "<b>Subject:</b> Grid proposal</div>" + tracked,
        };
        Fake.SendFromOutlook(address, forward);
        // Then another tracked mail from Outlook: once it is recorded, Sent Items was read past the forward.
        var later = await user.RegisterAsync(new { from = address, subject = "Arcade plans", to = new[] { Bob }, html = "<p>Arcade</p>", source = "outlook-addin" });
        var laterCopyId = later.GetProperty("copies")[0].GetProperty("id").GetGuid();
        var laterMail = new MimeMessage { Subject = "Arcade plans", Date = DateTimeOffset.UtcNow.AddMinutes(6) };
        laterMail.From.Add(MailboxAddress.Parse(address));
        laterMail.To.Add(MailboxAddress.Parse(Bob));
        laterMail.Headers.Add("X-ET-Token", App.Copy(laterCopyId).PixelToken);
        laterMail.Body = new TextPart("html") { Text = later.GetProperty("copies")[0].GetProperty("html").GetString()! };
        Fake.SendFromOutlook(address, laterMail);
        await Fake.NotifyAsync(address, "sentitems");
        await Eventually.TrueAsync(() => Task.FromResult(App.Copy(laterCopyId).SentMessageIdHeader is not null), "the later mail read from Sent Items");

        // Answers quote the Message-ID the copy left with: the forward's would lose them.
        Assert.Equal(sent.InternetMessageId.Trim('<', '>'), App.Copy(copyId).SentMessageIdHeader);
        Assert.Equal(sent.ConversationId, App.Copy(copyId).ProviderThreadId);
    }

    [Fact]
    public async Task Lifecycle_notifications_resubscribe_a_removed_subscription_and_reauthorize_when_asked()
    {
        var (user, address, _) = await App.ConnectedUserAsync();
        var subs = Fake.SubscriptionsOf(address);
        var inbox = subs.Single(s => s.Folder == "inbox");
        var sentitems = subs.Single(s => s.Folder == "sentitems");

        Assert.Equal(HttpStatusCode.Accepted, await Fake.LifecycleAsync(sentitems.Id, "reauthorizationRequired", clientState: "wrong"));
        Assert.Equal(HttpStatusCode.Accepted, await Fake.LifecycleAsync(sentitems.Id, "reauthorizationRequired"));
        await Eventually.TrueAsync(() => Task.FromResult(Fake.Reauthorized.Contains(sentitems.Id)), "the reauthorization");

        Assert.Equal(HttpStatusCode.Accepted, await Fake.LifecycleAsync(inbox.Id, "subscriptionRemoved"));
        await Eventually.TrueAsync(() => Task.FromResult(Fake.SubscriptionsOf(address).Any(s => s.Folder == "inbox" && s.Id != inbox.Id)), "a new inbox subscription");
        Assert.Equal(2, Fake.SubscriptionsOf(address).Count);
        Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());
    }

    [Fact]
    public async Task A_subscription_close_to_its_expiry_is_renewed()
    {
        var (_, address, mailboxId) = await App.ConnectedUserAsync();
        var inbox = Fake.SubscriptionsOf(address).Single(s => s.Folder == "inbox");
        using (var scope = App.Services.CreateScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var secrets = scope.ServiceProvider.GetRequiredService<MailboxSecrets>();
            var row = await db.MailboxCursors.SingleAsync(c => c.ConnectionId == mailboxId && c.Name == GraphWatch.SubscriptionPrefix + inbox.Id);
            var state = secrets.Unprotect<GraphSubscriptionState>(row.Value)!;
            Assert.Equal("inbox", state.Folder);
            row.Value = secrets.Protect(state with { ExpiresAt = DateTimeOffset.UtcNow.AddHours(2) });
            await db.SaveChangesAsync();
        }
        await Fake.NotifyAsync(address, "inbox");
        await Eventually.TrueAsync(() => Task.FromResult(Fake.Renewed.Contains(inbox.Id)), "the renewal (PATCH expirationDateTime)");
        Assert.True(Fake.SubscriptionsOf(address).Single(s => s.Id == inbox.Id).Expires > DateTimeOffset.UtcNow.AddDays(2));
        Assert.Empty(Fake.Unmatched);
    }

    [Fact]
    public async Task A_tenant_that_forbids_subscriptions_leaves_the_mailbox_read_by_polling_with_the_reason_and_only_a_refused_mailbox_needs_reconnect()
    {
        var user = await App.NewUserAsync();
        var account = Fake.AddAccount(user.Email);
        account.SubscriptionsForbidden = true;
        var done = await user.Client.GetAsync(await App.SignInAsync(user, user.Email));
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        await App.WaitForMailboxAsync(user, m => m.GetProperty("lastSyncAt").ValueKind != JsonValueKind.Null || m.GetProperty("status").GetString() != "active");

        // Subscribing was refused (403), reading is not: the mailbox stays connected and says why push is off.
        var mailbox = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
        Assert.Equal("active", mailbox.GetProperty("status").GetString());
        var message = mailbox.GetProperty("statusMessage").GetString();
        Assert.NotNull(message);
        Assert.Contains("Microsoft cannot notify this server of new mail", message);
        Assert.Contains("ExtensionError", message);
        Assert.Contains("read every 2 s instead", message);
        Assert.DoesNotContain("Connect the mailbox again", message);
        Assert.Empty(Fake.SubscriptionsOf(user.Email));

        // Without notifications the delta is read every poll interval: a reply is still recorded.
        var (messageId, _) = await SendAsync(user, user.Email, "No subscriptions here");
        var sentItem = Assert.Single(Fake.Folder(user.Email, "sentitems"));
        Fake.Deliver(user.Email, Reply(sentItem, Bob, user.Email, "Polling found me."));
        await Eventually.TrueAsync(async () => await RepliesAsync(user, messageId) == 1, "the reply read by polling");
        Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());

        // A 403 on the mail itself is another matter: only the owner can fix that.
        account.MailboxForbidden = true;
        await App.WaitForMailboxAsync(user, m => m.GetProperty("status").GetString() == "needs-reconnect");
        var refused = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("statusMessage").GetString();
        Assert.Contains("ErrorAccessDenied", refused);
        Assert.Contains("Connect the mailbox again", refused);
    }

    [Fact]
    public async Task A_refused_subscription_is_asked_for_again_an_hour_later_not_at_every_poll()
    {
        var user = await App.NewUserAsync();
        var account = Fake.AddAccount(user.Email);
        account.SubscriptionsForbidden = true;
        var done = await user.Client.GetAsync(await App.SignInAsync(user, user.Email));
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        await App.WaitForMailboxAsync(user, m => m.GetProperty("lastSyncAt").ValueKind != JsonValueKind.Null);
        var refused = account.SubscriptionRefusals;
        Assert.Equal(2, refused); // both folders, once

        // Polled every 2 s here: several rounds later, Microsoft was not asked again, and the mailbox still says why.
        var calls = account.DeltaCalls;
        await Eventually.TrueAsync(() => Task.FromResult(account.DeltaCalls >= calls + 6), "three more rounds");
        Assert.Equal(refused, account.SubscriptionRefusals);
        var mailbox = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
        Assert.Equal("active", mailbox.GetProperty("status").GetString());
        Assert.Contains("Microsoft cannot notify this server of new mail", mailbox.GetProperty("statusMessage").GetString());
    }

    [Fact]
    public async Task The_mailboxes_page_offers_microsoft_and_shows_why_a_sign_in_was_not_connected()
    {
        const string password = "Graph-Page-Test-1";
        var user = await App.NewUserAsync(password: password);
        var browser = await WebSession.SignInAsync(App, user.Email, password);
        var page = await browser.GetStringAsync("/mailboxes");
        Assert.Contains("Connect Microsoft 365", page);
        Assert.DoesNotContain("microsoft-not-configured", page);

        var foreign = $"cfo{Guid.NewGuid():N}"[..10] + "@contoso.test";
        Fake.AddAccount(foreign);
        var back = await browser.GetAsync(await App.SignInAsync(browser, foreign));
        Assert.Equal("/mailboxes", back.Headers.Location?.OriginalString);
        var after = await browser.GetStringAsync("/mailboxes");
        Assert.Contains($"The Microsoft account {foreign} is not one of your addresses", after);
        Assert.Contains("no-mailboxes", after);
    }

    // ---- helpers ----

    static async Task<(Guid MessageId, Guid CopyId)> SendAsync(TestUser user, string address, string subject)
    {
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject, to = new[] { Bob }, html = "<p>Hello Bob, here is <a href=\"https://encom.test/deck\">the deck</a>.</p>",
        }, TestApi.Json);
        var text = await send.Content.ReadAsStringAsync();
        Assert.True(send.StatusCode == HttpStatusCode.Created, $"send: {(int)send.StatusCode} {text}");
        var sent = JsonDocument.Parse(text).RootElement;
        var copy = Assert.Single(sent.GetProperty("copies").EnumerateArray());
        Assert.True(copy.GetProperty("sent").GetBoolean(), copy.ToString());
        return (sent.GetProperty("id").GetGuid(), copy.GetProperty("copyId").GetGuid());
    }

    static MimeMessage Reply(FakeMicrosoft.Message original, string from, string to, string text)
    {
        var id = original.InternetMessageId.Trim('<', '>');
        var reply = new MimeMessage { Subject = "Re: " + original.Subject, MessageId = MimeUtils.GenerateMessageId("partner.test"), Date = DateTimeOffset.UtcNow, InReplyTo = id };
        reply.References.Add(id);
        reply.From.Add(MailboxAddress.Parse(from));
        reply.To.Add(MailboxAddress.Parse(to));
        reply.Body = new TextPart("plain") { Text = text };
        return reply;
    }

    static async Task<int> RepliesAsync(TestUser user, Guid messageId)
    {
        var detail = await user.Client.GetJsonAsync($"/api/messages/{messageId}");
        return detail.GetProperty("events").EnumerateArray().Count(e => e.GetProperty("kind").GetString() == "reply");
    }

    static async Task<JsonElement> NextReplyAsync(SseReader feed, Guid messageId)
    {
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, "no reply on the live feed");
            var (_, item) = await feed.NextAsync(left);
            if (item.GetProperty("messageId").GetGuid() == messageId && item.GetProperty("kind").GetString() == "reply") return item;
        }
    }
}

/// <summary>A fake clock that also tells what waits were asked of it (the due time of each timer made), in order.</summary>
sealed class RecordingClock(DateTimeOffset start) : Microsoft.Extensions.Time.Testing.FakeTimeProvider(start)
{
    readonly global::System.Threading.Channels.Channel<TimeSpan> delays = global::System.Threading.Channels.Channel.CreateUnbounded<TimeSpan>();

    public override ITimer CreateTimer(TimerCallback callback, object? state, TimeSpan dueTime, TimeSpan period)
    {
        delays.Writer.TryWrite(dueTime);
        return base.CreateTimer(callback, state, dueTime, period);
    }

    /// <summary>The next wait asked for (within 30 s of real time).</summary>
    public async Task<TimeSpan> NextDelayAsync()
    {
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        return await delays.Reader.ReadAsync(timeout.Token);
    }
}

public sealed class GraphConnectorOnSqlite(GraphSqliteFixture f) : GraphConnectorTests(f), IClassFixture<GraphSqliteFixture>;

public sealed class GraphConnectorOnPostgres(GraphPostgresFixture f) : GraphConnectorTests(f), IClassFixture<GraphPostgresFixture>;

public sealed class GraphNotConfiguredTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Without_an_app_registration_connecting_is_a_clear_problem()
    {
        var user = await app.NewUserAsync();
        var res = await user.Client.GetAsync("/mailboxes/microsoft/connect");
        Assert.Equal(HttpStatusCode.ServiceUnavailable, res.StatusCode);
        var problem = JsonDocument.Parse(await res.Content.ReadAsStringAsync()).RootElement;
        Assert.Equal("Microsoft 365 is not configured on this server.", problem.GetProperty("title").GetString());
        Assert.Contains("Mailboxes:Graph:ClientId", problem.GetProperty("detail").GetString());
        Assert.Equal(HttpStatusCode.Redirect, (await app.Anonymous().GetAsync("/mailboxes/microsoft/connect")).StatusCode);

        const string password = "Graph-Page-Test-1";
        var withPassword = await app.NewUserAsync(password: password);
        var page = await (await WebSession.SignInAsync(app, withPassword.Email, password)).GetStringAsync("/mailboxes");
        Assert.Contains("microsoft-not-configured", page);
        Assert.DoesNotContain("Connect Microsoft 365", page);
    }
}
