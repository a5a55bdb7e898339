using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using MailKit;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Mail;

/// <summary>
/// The whole reply path through real Postfix and Dovecot: the product sends over SMTP with its own Message-IDs, people
/// and robots answer, and the IMAP watcher matches, classifies and streams each answer to the live feed.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class ReplyLoopTests(SqliteApp app, ShortRefusalGraceApp shortGrace) : IClassFixture<SqliteApp>, IClassFixture<ShortRefusalGraceApp>
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(90);

    static object ConnectBody(string address, string password) => new
    {
        address, username = MailServer.Sender, password,
        imap = new { host = MailServer.ImapHost, port = MailServer.ImapPort, security = "none" },
        smtp = new { host = MailServer.SmtpHost, port = MailServer.SmtpPort, security = "none" },
    };

    /// <summary>
    /// A user whose sending address is this test's own (plus-addressing lands it in et-sender's INBOX): the robot
    /// answers each sender once a day, and other tests' mail in the same INBOX is not this user's.
    /// </summary>
    async Task<(TestUser User, string Address)> NewSenderAsync(AppFactory? on = null)
    {
        var user = await (on ?? app).NewUserAsync();
        var address = MailServer.UniqueSender().Address;
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address })).IsSuccessStatusCode);
        return (user, address);
    }

    /// <summary><see cref="NewSenderAsync"/> with the sender's mailbox connected (IMAP and SMTP on the local servers).</summary>
    async Task<(TestUser User, string Address, Guid MailboxId)> ConnectedSenderAsync()
    {
        var (user, address) = await NewSenderAsync();
        var connect = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", ConnectBody(address, MailServer.Password), TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, connect.StatusCode);
        return (user, address, JsonDocument.Parse(await connect.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid());
    }

    /// <summary>The live feed's items about <paramref name="messageId"/>, read until <paramref name="done"/> holds for them (within <see cref="Patience"/>).</summary>
    static async Task<List<JsonElement>> FeedUntilAsync(SseReader feed, Guid messageId, Func<List<JsonElement>, bool> done)
    {
        var seen = new List<JsonElement>();
        var deadline = DateTime.UtcNow + Patience;
        while (!done(seen))
        {
            var left = deadline - DateTime.UtcNow;
            Assert.True(left > TimeSpan.Zero, $"the feed showed only: {string.Join(" | ", seen.Select(e => e.ToString()))}\n{MailServer.PostfixLogTail()}");
            try
            {
                var (_, item) = await feed.NextAsync(left);
                if (item.GetProperty("messageId").GetGuid() == messageId) seen.Add(item);
            }
            catch (OperationCanceledException)
            {
            }
        }
        return seen;
    }

    /// <summary>Sends through the API, one copy per recipient: the message's id and each recipient's copy's Message-ID.</summary>
    static async Task<(Guid MessageId, Dictionary<string, string> Copies)> SendTrackedAsync(TestUser user, object body)
    {
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", body, TestApi.Json);
        var sentText = await send.Content.ReadAsStringAsync();
        Assert.True(send.StatusCode == HttpStatusCode.Created, $"send: {(int)send.StatusCode} {sentText}");
        var sent = JsonDocument.Parse(sentText).RootElement;
        Assert.All(sent.GetProperty("copies").EnumerateArray(), c => Assert.True(c.GetProperty("sent").GetBoolean(), c.ToString()));
        return (sent.GetProperty("id").GetGuid(), sent.GetProperty("copies").EnumerateArray().ToDictionary(
            c => c.GetProperty("recipients")[0].GetString()!, c => c.GetProperty("messageId").GetString()!.Trim('<', '>')));
    }

    static string From(JsonElement e) => e.TryGetProperty("fromAddress", out var f) ? f.GetString() ?? "" : "";

    static bool Has(List<JsonElement> seen, string kind, Func<JsonElement, bool> f) => seen.Any(e => e.GetProperty("kind").GetString() == kind && f(e));

    [Fact]
    public async Task A_recipient_the_SMTP_server_refuses_for_now_is_reported_as_temporary_and_the_other_copy_leaves()
    {
        var (user, address, mailboxId) = await ConnectedSenderAsync();
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain);
        var greylisted = new MailboxAddress(null, MailServer.Greylisted);
        var sender = new MailboxAddress(null, address);
        OutgoingCopy Copy(MailboxAddress to)
        {
            var m = new MimeMessage { Subject = MailServer.UniqueSubject("Greylisting"), Body = new TextPart("plain") { Text = "Hello." } };
            m.From.Add(sender);
            m.To.Add(to);
            m.MessageId = MimeKit.Utils.MimeUtils.GenerateMessageId("example.test");
            return new OutgoingCopy(Guid.NewGuid(), m, sender, [to]);
        }
        var refused = Copy(greylisted);
        var taken = Copy(bob);

        using var scope = app.Services.CreateScope();
        var mailbox = scope.ServiceProvider.GetRequiredService<AppDbContext>().Mailboxes.Single(m => m.Id == mailboxId);
        var transport = scope.ServiceProvider.GetRequiredKeyedService<EmailTracking.Server.Mailboxes.IMailTransport>(MailboxKind.Imap);
        var result = await transport.SendAsync(mailbox, [refused, taken], CancellationToken.None);

        // The 450 is an answer to RCPT: refused for now, certainly not handed over, worth another try later.
        var r = result.Copies.Single(c => c.CopyId == refused.CopyId);
        Assert.False(r.Sent);
        Assert.True(r.Temporary);
        Assert.False(r.MayHaveLeft);
        Assert.Contains("450", r.Error);
        Assert.True(result.Copies.Single(c => c.CopyId == taken.CopyId).Sent);
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, taken.Message.MessageId!);
    }

    [Fact]
    public async Task Replies_from_a_recipient_and_a_forwarded_colleague_an_out_of_office_robot_and_a_bounce_each_reach_the_feed_with_their_kind()
    {
        var (user, address) = await NewSenderAsync();
        var connect = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", ConnectBody(address, MailServer.Password), TestApi.Json);
        var connected = await connect.Content.ReadAsStringAsync();
        Assert.True(connect.StatusCode == HttpStatusCode.Created, $"connect: {(int)connect.StatusCode} {connected}");
        Assert.Equal("active", JsonDocument.Parse(connected).RootElement.GetProperty("status").GetString());
        Assert.DoesNotContain(MailServer.Password, connected);
        var mailboxId = JsonDocument.Parse(connected).RootElement.GetProperty("id").GetGuid();

        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var carol = MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address;
        var robot = MailServer.Address(MailServer.Robot, MailServer.PartnerDomain).Address;
        var alice = MailServer.Address(MailServer.Alice, MailServer.PartnerDomain).Address;
        var nobody = MailServer.UnknownUser(MailServer.PartnerDomain).Address;
        var subject = MailServer.UniqueSubject("Proposal");

        using var feed = await Sse.OpenAsync(user.Client, "/api/feed");
        var (messageId, copies) = await SendTrackedAsync(user, new
        {
            from = address, subject, to = new[] { bob, robot, nobody }, cc = new[] { carol },
            html = "<p>Hello, here is <a href=\"https://encom.test/deck\">the deck</a>.</p>", perRecipient = true,
        });
        Assert.Equal(4, copies.Values.Distinct().Count());

        // Bob got his own copy, with our Message-ID, tracked; he answers it.
        var bobsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Bob, copies[bob]);
        Assert.Contains("/o/", bobsCopy.HtmlBody);
        Assert.Equal([carol], bobsCopy.Cc.Mailboxes.Select(m => m.Address));
        await MailServer.SendAsync(MailServer.Answer(bobsCopy, bob, address, "Thanks, let's talk on Tuesday."));

        // Carol forwards her copy to Alice, who was never a recipient; Alice answers the forward.
        var carolsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Carol, copies[carol]);
        var forward = new MimeMessage { MessageId = MailServer.NewMessageId(), Subject = "Fwd: " + subject, Date = DateTimeOffset.Now };
        forward.From.Add(MailboxAddress.Parse(carol));
        forward.To.Add(MailboxAddress.Parse(alice));
        forward.References.Add(carolsCopy.MessageId!);
        forward.Body = new TextPart("plain") { Text = "Alice, can you answer this?\n\n---------- Forwarded message ---------\n" + carolsCopy.TextBody };
        await MailServer.SendAsync(forward);
        var received = await MailServer.WaitForMessageIdAsync(MailServer.Alice, forward.MessageId);
        await MailServer.SendAsync(MailServer.Answer(received, alice, address, "Hi, I handle purchasing here. Can you send the price list?"));

        // The robot answers by itself and the unknown address bounces: wait for all four on the live feed.
        static string? Recipient(JsonElement e) => e.TryGetProperty("recipient", out var r) ? r.GetString() : null;
        var seen = await FeedUntilAsync(feed, messageId, seen => Has(seen, "reply", e => From(e) == bob) && Has(seen, "reply", e => From(e) == alice)
                 && Has(seen, "auto-reply", e => From(e) == robot) && Has(seen, "bounce", e => Recipient(e) == nobody));

        var bobEvent = seen.Single(e => e.GetProperty("kind").GetString() == "reply" && From(e) == bob);
        Assert.Equal("human", bobEvent.GetProperty("verdict").GetString());
        Assert.Equal(bob, Recipient(bobEvent));
        var aliceEvent = seen.Single(e => e.GetProperty("kind").GetString() == "reply" && From(e) == alice);
        Assert.Equal(carol, Recipient(aliceEvent)); // on Carol's copy: she forwarded it
        Assert.Contains("not a recipient", aliceEvent.GetProperty("reason").GetString());
        var ooo = seen.Single(e => e.GetProperty("kind").GetString() == "auto-reply");
        Assert.Equal(robot, Recipient(ooo));
        Assert.Contains(MailServer.RobotReturn.ToString("yyyy-MM-dd"), ooo.GetProperty("reason").GetString());
        var bounce = seen.Single(e => e.GetProperty("kind").GetString() == "bounce");
        Assert.Contains("5.1.1", bounce.GetProperty("reason").GetString());
        Assert.DoesNotContain(seen, e => From(e) == address);

        // What the message page counts: Bob and (through Alice) Carol replied; the robot did not; the unknown bounced.
        var detail = await user.Client.GetJsonAsync($"/api/messages/{messageId}");
        var rows = detail.GetProperty("message").GetProperty("recipients").EnumerateArray()
            .ToDictionary(r => r.GetProperty("address").GetString()!, r => r.GetProperty("counts"));
        Assert.True(rows[bob].GetProperty("replied").GetBoolean());
        Assert.True(rows[carol].GetProperty("replied").GetBoolean());
        Assert.False(rows[robot].GetProperty("replied").GetBoolean());
        Assert.True(rows[robot].GetProperty("autoReplied").GetBoolean());
        Assert.True(rows[nobody].GetProperty("bounced").GetBoolean());

        // The watch's checkpoint moved past what it handled.
        var cursor = app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == mailboxId && c.Name == ImapWatch.InboxCursor).Value);
        Assert.True(uint.Parse(cursor.Split(':')[1]) >= 4, $"INBOX checkpoint {cursor}");

        // A restart of the watch (a reconnect, a new instance) counts nothing twice, and what arrives meanwhile is seen.
        app.Services.GetRequiredService<MailboxWatcher>().Restart(mailboxId);
        await MailServer.SendAsync(MailServer.Answer(bobsCopy, bob, address, "One more thing: can you include support?"));
        var deadline = DateTime.UtcNow + Patience;
        while (app.WithDb(db => db.InboundMessages.Count(i => i.TrackedMessageId == messageId)) < 5)
        {
            Assert.True(DateTime.UtcNow < deadline, "the second reply was not recorded after the restart");
            await Task.Delay(250);
        }
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(5, app.WithDb(db => db.InboundMessages.Count(i => i.TrackedMessageId == messageId)));
        Assert.Equal(5, app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == messageId)));

        // The sent mail was stored in the mailbox's Sent folder, with our Message-ID.
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        var sentFolder = await ImapWatch.FindSentFolderAsync(imap, CancellationToken.None);
        Assert.NotNull(sentFolder);
        await sentFolder.OpenAsync(FolderAccess.ReadOnly);
        Assert.NotEmpty(await sentFolder.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", copies[bob])));
    }

    /// <summary>A read receipt for <paramref name="original"/>, sent through the servers (each its own Message-ID).</summary>
    static MimeMessage ReadReceipt(MimeMessage original, string from, string to, string disposition, bool inReplyTo)
    {
        var m = Replies.TestReceipts.Read(from, to, original.MessageId!, disposition, original.Subject ?? "", inReplyTo);
        m.MessageId = MailServer.NewMessageId();
        return m;
    }

    [Fact]
    public async Task Read_receipts_through_the_mail_servers_are_an_open_and_a_receipt_on_the_feed_never_a_reply()
    {
        var (user, address, _) = await ConnectedSenderAsync();
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var carol = MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address;
        var subject = MailServer.UniqueSubject("Pricing");

        using var feed = await Sse.OpenAsync(user.Client, "/api/feed");
        var (messageId, copies) = await SendTrackedAsync(user, new
        {
            from = address, subject, to = new[] { bob, carol }, html = "<p>Our prices for next year.</p>", perRecipient = true,
        });

        // Bob's Outlook reports the mail displayed (matched by the id its report names); Carol's Thunderbird, which names
        // our Message-ID in In-Reply-To, that she deleted it unread. Neither wrote anything.
        var bobsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Bob, copies[bob]);
        await MailServer.SendAsync(ReadReceipt(bobsCopy, bob, address, "manual-action/MDN-sent-automatically; displayed", inReplyTo: false));
        var carolsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Carol, copies[carol]);
        await MailServer.SendAsync(ReadReceipt(carolsCopy, carol, address, "manual-action/MDN-sent-manually; deleted", inReplyTo: true));

        var seen = await FeedUntilAsync(feed, messageId, seen => Has(seen, "open", e => From(e) == bob) && Has(seen, "receipt", e => From(e) == carol));
        var open = seen.Single(e => From(e) == bob);
        Assert.Equal("human", open.GetProperty("verdict").GetString());
        Assert.Contains("read receipt", open.GetProperty("reason").GetString());
        var deleted = seen.Single(e => From(e) == carol);
        Assert.Equal("bot", deleted.GetProperty("verdict").GetString());
        Assert.Contains("deleted without being read", deleted.GetProperty("reason").GetString());
        Assert.DoesNotContain(seen, e => e.GetProperty("kind").GetString() is "reply" or "auto-reply");

        var detail = await user.Client.GetJsonAsync($"/api/messages/{messageId}");
        var rows = detail.GetProperty("message").GetProperty("recipients").EnumerateArray()
            .ToDictionary(r => r.GetProperty("address").GetString()!, r => r.GetProperty("counts"));
        Assert.Equal(1, rows[bob].GetProperty("opens").GetInt32());
        Assert.Equal(0, rows[carol].GetProperty("opens").GetInt32());
        Assert.All(rows.Values, c => Assert.False(c.GetProperty("replied").GetBoolean()));
        var inbound = app.WithDb(db => db.InboundMessages.Where(i => i.TrackedMessageId == messageId).AsNoTracking().ToList());
        Assert.Equal(2, inbound.Count);
        Assert.All(inbound, i => Assert.Equal(EventKind.Receipt, i.Kind));
        Assert.Equal([MatchedBy.InReplyTo, MatchedBy.OriginalMessageId], inbound.OrderBy(i => i.FromAddress == bob).Select(i => i.MatchedBy));
    }

    [Fact]
    public async Task The_Sent_folder_keeps_the_mail_as_written_with_every_recipient_and_nothing_that_counts_the_sender_as_a_recipient()
    {
        var (user, address, _) = await ConnectedSenderAsync();
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var carol = MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address;
        var alice = MailServer.Address(MailServer.Alice, MailServer.PartnerDomain).Address;
        var subject = MailServer.UniqueSubject("Kept as written");
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject, to = new[] { bob }, cc = new[] { carol }, bcc = new[] { alice },
            html = "<p>Hello, here is <a href=\"https://encom.test/deck\">the deck</a>.</p>", perRecipient = true,
        }, TestApi.Json);
        var sentText = await send.Content.ReadAsStringAsync();
        Assert.True(send.StatusCode == HttpStatusCode.Created, $"send: {(int)send.StatusCode} {sentText}");
        var ids = JsonDocument.Parse(sentText).RootElement.GetProperty("copies").EnumerateArray()
            .Select(c => c.GetProperty("messageId").GetString()!.Trim('<', '>')).ToList();
        Assert.Equal(3, ids.Count);

        // Each recipient got a tracked copy ...
        var bobsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Bob, ids[0]);
        Assert.Contains("/o/", bobsCopy.HtmlBody);
        Assert.Contains("/c/", bobsCopy.HtmlBody);

        // ... and the Sent folder holds one mail, as the sender wrote it: reading it in a mail client that loads images,
        // or following its link, is not Bob's open or click.
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        var sentFolder = await ImapWatch.FindSentFolderAsync(imap, CancellationToken.None);
        Assert.NotNull(sentFolder);
        await sentFolder.OpenAsync(FolderAccess.ReadOnly);
        var found = await sentFolder.SearchAsync(MailKit.Search.SearchQuery.SubjectContains(subject));
        var kept = await sentFolder.GetMessageAsync(Assert.Single(found));
        Assert.Contains(kept.MessageId, ids);
        Assert.Equal(subject, kept.Subject);
        Assert.Contains("https://encom.test/deck", kept.HtmlBody);
        Assert.DoesNotContain("/o/", kept.HtmlBody);
        Assert.DoesNotContain("/c/", kept.HtmlBody);
        Assert.DoesNotContain("/o/", kept.TextBody);
        Assert.Equal(bob, Assert.Single(kept.To.Mailboxes).Address);
        Assert.Equal(carol, Assert.Single(kept.Cc.Mailboxes).Address);
        Assert.Equal(alice, Assert.Single(kept.Bcc.Mailboxes).Address);
        // What left never shows the Bcc.
        Assert.Empty(bobsCopy.Bcc);
        Assert.DoesNotContain(alice, bobsCopy.Headers.ToString());
    }

    [Fact]
    public async Task A_refused_login_marks_the_mailbox_needs_reconnect_and_connecting_again_makes_it_active()
    {
        var (user, address) = await NewSenderAsync();
        // The password changed at the provider after the mailbox was connected: stored as the product stores secrets.
        using (var scope = app.Services.CreateScope())
        {
            var secrets = scope.ServiceProvider.GetRequiredService<MailboxSecrets>();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            db.Mailboxes.Add(new MailboxConnection
            {
                TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = address, Status = MailboxStatus.Active, CreatedAt = DateTimeOffset.UtcNow,
                ProtectedSecret = secrets.Protect(new ImapSmtpSecret(
                    new ServerEndpoint(MailServer.ImapHost, MailServer.ImapPort, MailSecurity.None),
                    new ServerEndpoint(MailServer.SmtpHost, MailServer.SmtpPort, MailSecurity.None), MailServer.Sender, "no-longer-valid")),
            });
            await db.SaveChangesAsync();
        }
        app.Services.GetRequiredService<MailboxWatcher>().Wake();

        var deadline = DateTime.UtcNow + Patience;
        JsonElement row;
        while (true)
        {
            row = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
            if (row.GetProperty("status").GetString() == "needs-reconnect") break;
            Assert.True(DateTime.UtcNow < deadline, $"still {row}");
            await Task.Delay(250);
        }
        Assert.Contains("refused the login", row.GetProperty("statusMessage").GetString());

        // Sending through it is refused with the reason, and nothing is registered.
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject = "x", to = new[] { "et-bob@partner.test" }, html = "<p>x</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Conflict, send.StatusCode);
        Assert.Contains("reconnected", await send.Content.ReadAsStringAsync());
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));

        // A wrong password is refused up front; the right one makes the mailbox active again.
        var wrong = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", ConnectBody(address, "wrong"), TestApi.Json);
        var wrongText = await wrong.Content.ReadAsStringAsync();
        Assert.True(wrong.StatusCode == HttpStatusCode.UnprocessableEntity && wrongText.Contains("refused the login"), wrongText);
        var again = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", ConnectBody(address, MailServer.Password), TestApi.Json);
        Assert.Equal(HttpStatusCode.OK, again.StatusCode);
        Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());
    }

    [Fact]
    public async Task Broken_and_hostile_mail_in_the_inbox_is_passed_over_and_the_answer_behind_it_is_still_recorded()
    {
        var (user, address, mailboxId) = await ConnectedSenderAsync();
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject = MailServer.UniqueSubject("Broken mail"), to = new[] { bob }, html = "<p>Hello</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, send.StatusCode);
        var sent = JsonDocument.Parse(await send.Content.ReadAsStringAsync()).RootElement;
        var messageId = sent.GetProperty("id").GetGuid();
        var ours = sent.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');

        // Straight into et-sender's Maildir, as a broken or hostile sender's server would deliver it: a header bomb
        // answering our message, a reference loop, an unknown charset, a truncated multipart and plain garbage.
        var home = $"/home/{MailServer.Sender}";
        var maildir = Path.Combine(home, "Maildir", "new");
        var bomb = new System.Text.StringBuilder($"From: bomb@partner.test\r\nIn-Reply-To: <{ours}>\r\nMessage-ID: <bomb-{Guid.NewGuid():N}@partner.test>\r\n");
        for (var i = 0; i < 100_000; i++) bomb.Append("X-Filler-").Append(i).Append(": x\r\n");
        bomb.Append("Subject: Re: bomb\r\n\r\nbody\r\n");
        var loop = $"From: loop@partner.test\r\nMessage-ID: <loop-{Guid.NewGuid():N}@partner.test>\r\nIn-Reply-To: <loop@x>\r\nReferences: {string.Concat(Enumerable.Repeat("<loop@x> <loop2@x> ", 5000))}\r\nSubject: loop\r\n\r\nx\r\n";
        var charset = $"From: charset@partner.test\r\nMessage-ID: <cs-{Guid.NewGuid():N}@partner.test>\r\nSubject: =?x-unknown-42?B?AAEC?=\r\nContent-Type: text/plain; charset=x-unknown-42\r\n\r\n\u00ff\u00fe garbage\r\n";
        var truncated = $"From: cut@partner.test\r\nMessage-ID: <cut-{Guid.NewGuid():N}@partner.test>\r\nContent-Type: multipart/mixed; boundary=\"b\"\r\n\r\n--b\r\nContent-Type: text/plain\r\n\r\nhalf a mess";
        var garbage = new byte[4096];
        new Random(7).NextBytes(garbage);
        garbage[0] = 0; // cannot start a header: not MIME from its first byte
        foreach (var (name, bytes) in new[]
        {
            ("bomb", System.Text.Encoding.ASCII.GetBytes(bomb.ToString())), ("loop", System.Text.Encoding.ASCII.GetBytes(loop)),
            ("charset", System.Text.Encoding.Latin1.GetBytes(charset)), ("truncated", System.Text.Encoding.ASCII.GetBytes(truncated)), ("garbage", garbage),
        })
        {
            // Written in tmp/ and moved into new/, as Maildir delivery is done: Dovecot watches new/ and would otherwise
            // index a file half written (the header bomb is 1.6 MB), which it then serves cut short, as a second
            // unreadable message.
            var fileName = $"{DateTimeOffset.UtcNow.ToUnixTimeSeconds()}.{name}{Guid.NewGuid():N}.et-test";
            var staged = Path.Combine(home, "Maildir", "tmp", fileName);
            await File.WriteAllBytesAsync(staged, bytes);
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(staged, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead | UnixFileMode.OtherRead);
            File.Move(staged, Path.Combine(maildir, fileName));
        }

        // Then Bob's real answer.
        var bobsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Bob, ours);
        await MailServer.SendAsync(MailServer.Answer(bobsCopy, bob, address, "Got it, thanks."));

        var deadline = DateTime.UtcNow + Patience;
        while (!app.WithDb(db => db.InboundMessages.Any(i => i.TrackedMessageId == messageId && i.FromAddress == bob)))
        {
            Assert.True(DateTime.UtcNow < deadline, "Bob's answer behind the broken mail was not recorded");
            await Task.Delay(250);
        }
        // The header bomb answered our message and is recorded as what it is (a human-looking reply from bomb@);
        // the others matched nothing. The mailbox stays active and its checkpoint is past all of them.
        var rows = await user.Client.GetJsonAsync("/api/mailboxes");
        Assert.Equal("active", rows.EnumerateArray().Single().GetProperty("status").GetString());
        var cursor = app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == mailboxId && c.Name == ImapWatch.InboxCursor).Value);
        Assert.True(uint.Parse(cursor.Split(':')[1]) >= 6, $"INBOX checkpoint {cursor}");
        // The garbage is not lost: it is noted for the user, with its folder, size, date and why, saved with the
        // checkpoint that went past it. The other four were read (MimeKit repairs them) and need no note.
        Assert.Equal(1, rows.EnumerateArray().Single().GetProperty("unreadable").GetInt32());
        var note = Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
        Assert.Equal("INBOX", note.GetProperty("folder").GetString());
        Assert.StartsWith($"imap:INBOX:", note.GetProperty("providerId").GetString());
        Assert.StartsWith("not a readable MIME message:", note.GetProperty("reason").GetString());
        Assert.True(note.GetProperty("size").GetInt64() >= 4096);
        Assert.NotEqual(JsonValueKind.Null, note.GetProperty("receivedAt").ValueKind);
    }

    [Fact]
    public async Task A_message_the_IMAP_server_refuses_to_send_is_noted_and_the_answer_behind_it_is_still_recorded()
    {
        var (user, address) = await NewSenderAsync();
        // A message already in the INBOX that the server will not hand over (Exchange: "could not be converted to
        // RFC-822"), every time it is asked.
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain);
        var stuck = MailServer.NewMessage(bob, new MailboxAddress(null, address), MailServer.UniqueSubject("Unconvertible"));
        await MailServer.SendAsync(stuck);
        await MailServer.WaitForMessageIdAsync(MailServer.Sender, stuck.MessageId!);
        uint uid;
        using (var imap = await MailServer.ConnectImapAsync(MailServer.Sender))
        {
            await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
            uid = Assert.Single(await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", stuck.MessageId!))).Id;
        }
        await using var proxy = new ImapRefusingProxy(MailServer.ImapHost, MailServer.ImapPort, uid);

        var mailboxId = await ConnectThroughAsync(user, address, proxy);
        var send = await user.Client.PostAsJsonAsync("/api/messages/send", new
        {
            from = address, subject = MailServer.UniqueSubject("Behind a refused message"), to = new[] { bob.Address }, html = "<p>Hello</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, send.StatusCode);
        var sent = JsonDocument.Parse(await send.Content.ReadAsStringAsync()).RootElement;
        var messageId = sent.GetProperty("id").GetGuid();
        var bobsCopy = await MailServer.WaitForMessageIdAsync(MailServer.Bob, sent.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>'));
        await MailServer.SendAsync(MailServer.Answer(bobsCopy, bob.Address, address, "Got it, thanks."));

        var deadline = DateTime.UtcNow + Patience;
        while (!app.WithDb(db => db.InboundMessages.Any(i => i.TrackedMessageId == messageId && i.FromAddress == bob.Address)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"Bob's answer behind the refused message was not recorded ({proxy.Refusals} refusals)");
            await Task.Delay(250);
        }
        // Asked for once: noted with its folder, UID and the server's reason, and the checkpoint went past it.
        Assert.Equal(1, proxy.Refusals);
        var rows = await user.Client.GetJsonAsync("/api/mailboxes");
        Assert.Equal("active", rows.EnumerateArray().Single().GetProperty("status").GetString());
        var note = Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
        Assert.Equal("INBOX", note.GetProperty("folder").GetString());
        Assert.Matches($"^imap:INBOX:[0-9]+:{uid}$", note.GetProperty("providerId").GetString());
        Assert.Contains(ImapRefusingProxy.Refusal, note.GetProperty("reason").GetString());
    }

    /// <summary>
    /// Two answers from Bob to a message the user sent from their own mail client (registered, an hour ago), already in
    /// the INBOX before the mailbox is connected: the UID of the first, for a proxy to refuse, and the one behind it.
    /// </summary>
    static async Task<(Guid MessageId, uint Uid, MimeMessage Refused, MimeMessage Behind)> TwoAnswersAsync(TestUser user, string address, string subject)
    {
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain);
        var registered = await user.RegisterAsync(new
        {
            from = address, subject, to = new[] { bob.Address }, html = "<p>Hello</p>", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
        });
        var original = MailServer.NewMessage(new MailboxAddress(null, address), bob, subject);
        original.MessageId = registered.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');
        var refused = MailServer.Answer(original, bob.Address, address, "Yes, Tuesday works for us.");
        await MailServer.SendAsync(refused);
        await MailServer.WaitForMessageIdAsync(MailServer.Sender, refused.MessageId!);
        var behind = MailServer.Answer(original, bob.Address, address, "And could you bring the price list?");
        await MailServer.SendAsync(behind);
        await MailServer.WaitForMessageIdAsync(MailServer.Sender, behind.MessageId!);
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        await imap.Inbox.OpenAsync(FolderAccess.ReadOnly);
        var uid = Assert.Single(await imap.Inbox.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", refused.MessageId!))).Id;
        return (registered.GetProperty("id").GetGuid(), uid, refused, behind);
    }

    /// <summary>Connects the user's mailbox with its IMAP through <paramref name="proxy"/>; the mailbox's id.</summary>
    static async Task<Guid> ConnectThroughAsync(TestUser user, string address, ImapProxy proxy)
    {
        var connect = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address, username = MailServer.Sender, password = MailServer.Password,
            imap = new { host = "127.0.0.1", port = proxy.Port, security = "none" },
            smtp = new { host = MailServer.SmtpHost, port = MailServer.SmtpPort, security = "none" },
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, connect.StatusCode);
        return JsonDocument.Parse(await connect.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
    }

    /// <summary>Waits until <paramref name="answer"/> to the tracked message is recorded; all recorded answers to it.</summary>
    static async Task<List<InboundMessage>> WaitForAnswerAsync(AppFactory on, Guid mailboxId, Guid messageId, MimeMessage answer, ImapRefusingProxy proxy)
    {
        var deadline = DateTime.UtcNow + Patience;
        while (!on.WithDb(db => db.InboundMessages.Any(i => i.TrackedMessageId == messageId && i.InternetMessageId == answer.MessageId)))
        {
            Assert.True(DateTime.UtcNow < deadline, $"the answer behind the refused message was not recorded ({proxy.Refusals} refusals of {proxy.Fetches} fetches; "
                + $"mailbox: {on.WithDb(db => db.Mailboxes.Single(m => m.Id == mailboxId).StatusMessage)})");
            await Task.Delay(250);
        }
        return on.WithDb(db => db.InboundMessages.AsNoTracking().Where(i => i.TrackedMessageId == messageId).ToList());
    }

    [Fact]
    public async Task A_message_the_IMAP_server_refuses_for_now_holds_the_round_and_is_recorded_once_the_server_sends_it()
    {
        var (user, address) = await NewSenderAsync();
        var (messageId, uid, refused, behind) = await TwoAnswersAsync(user, address, MailServer.UniqueSubject("Refused for now"));
        // The server answers NO [UNAVAILABLE] to the first answer twice, then sends it. Each refusal stops the round
        // before it; the watch tries again after its back-off (5 s in tests), well within the grace (an hour).
        await using var proxy = new ImapRefusingProxy(MailServer.ImapHost, MailServer.ImapPort, uid, code: "UNAVAILABLE", times: 2);
        var mailboxId = await ConnectThroughAsync(user, address, proxy);

        // The answer behind it is handled only after it: once that one is recorded, the refused one is too.
        var answers = await WaitForAnswerAsync(app, mailboxId, messageId, behind, proxy);
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var first = Assert.Single(answers, i => i.InternetMessageId == refused.MessageId);
        Assert.Equal(EventKind.Reply, first.Kind);
        Assert.Equal(bob, first.FromAddress);
        Assert.Matches($"^imap:INBOX:[0-9]+:{uid}$", first.ProviderId);
        Assert.Equal(EventKind.Reply, Assert.Single(answers, i => i.InternetMessageId == behind.MessageId).Kind);
        Assert.Equal(2, proxy.Refusals);
        Assert.True(proxy.Fetches >= 3, $"{proxy.Fetches} fetches");
        // Nothing was passed over: no note, and the mailbox is active.
        Assert.Empty((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
        var row = (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single();
        Assert.Equal("active", row.GetProperty("status").GetString());
        Assert.Equal(0, row.GetProperty("unreadable").GetInt32());
    }

    [Fact]
    public async Task A_message_the_IMAP_server_refuses_for_now_for_longer_than_the_grace_is_noted_and_the_answer_behind_it_is_still_recorded()
    {
        var (user, address) = await NewSenderAsync(shortGrace);
        var (messageId, uid, refused, behind) = await TwoAnswersAsync(user, address, MailServer.UniqueSubject("Refused for good, for now"));
        // NO [UNAVAILABLE] every time: refused, retried after the back-off (5 s, longer than this server's grace of
        // 3 s), refused again and then noted and passed.
        await using var proxy = new ImapRefusingProxy(MailServer.ImapHost, MailServer.ImapPort, uid, code: "UNAVAILABLE");
        var mailboxId = await ConnectThroughAsync(user, address, proxy);

        var answers = await WaitForAnswerAsync(shortGrace, mailboxId, messageId, behind, proxy);
        Assert.Equal(2, proxy.Refusals);
        Assert.DoesNotContain(answers, i => i.InternetMessageId == refused.MessageId);
        var note = Assert.Single((await user.Client.GetJsonAsync($"/api/mailboxes/{mailboxId}/unreadable")).EnumerateArray());
        Assert.Equal("INBOX", note.GetProperty("folder").GetString());
        Assert.Matches($"^imap:INBOX:[0-9]+:{uid}$", note.GetProperty("providerId").GetString());
        var reason = note.GetProperty("reason").GetString();
        Assert.Contains("[UNAVAILABLE]", reason);
        Assert.Contains(ImapRefusingProxy.Busy, reason);
        Assert.Contains("longer than 3 seconds", reason);
        Assert.Equal("active", (await user.Client.GetJsonAsync("/api/mailboxes")).EnumerateArray().Single().GetProperty("status").GetString());
    }
}

/// <summary>
/// A server that waits only 3 s for a message its IMAP server refuses for now: less than the watch's first back-off
/// (5 s in tests), so the second refusal is past the grace.
/// </summary>
public sealed class ShortRefusalGraceApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Mailboxes:TemporaryRefusalGrace", "00:00:03");
}
