using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using MailKit;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Tests.Mail;

/// <summary>
/// The SMTP transport's Sent copy, through real Postfix and Dovecot: stored before the mail is handed over and marked as
/// being sent, unmarked once the server accepted the mail, removed when it did not leave, and left marked when the
/// connection went after the hand-over. The Sent folder then answers "did it leave?" rightly or with "cannot know",
/// never with a wrong "no" that would send a sequence's step twice.
/// </summary>
[Collection(MailCollection.Name)]
public sealed class SentCopyTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    /// <summary>A mailbox of a new user with a sending address of its own, whose SMTP goes through <paramref name="proxy"/>.</summary>
    async Task<(MailboxConnection Mailbox, MailboxAddress Sender)> MailboxAsync(SmtpFaultProxy proxy, int? imapPort = null)
    {
        var (mailbox, sender, _) = await UserMailboxAsync(proxy, imapPort);
        return (mailbox, sender);
    }

    async Task<(MailboxConnection Mailbox, MailboxAddress Sender, TestUser User)> UserMailboxAsync(SmtpFaultProxy proxy, int? imapPort = null)
    {
        var user = await app.NewUserAsync();
        var address = MailServer.UniqueSender().Address;
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address })).IsSuccessStatusCode);
        var connect = await user.Client.PostAsJsonAsync("/api/mailboxes/imap", new
        {
            address, username = MailServer.Sender, password = MailServer.Password,
            imap = new { host = imapPort is null ? MailServer.ImapHost : "127.0.0.1", port = imapPort ?? MailServer.ImapPort, security = "none" },
            smtp = new { host = "127.0.0.1", port = proxy.Port, security = "none" },
        }, TestApi.Json);
        var connected = await connect.Content.ReadAsStringAsync();
        Assert.True(connect.StatusCode == HttpStatusCode.Created, connected);
        var id = JsonDocument.Parse(connected).RootElement.GetProperty("id").GetGuid();
        return (app.WithDb(db => db.Mailboxes.Single(m => m.Id == id)), new MailboxAddress(null, address), user);
    }

    static OutgoingCopy Copy(MailboxAddress sender, MailboxAddress to, MimeMessage? forSentFolder = null)
    {
        var m = new MimeMessage { Subject = MailServer.UniqueSubject("Sent copy"), Body = new TextPart("plain") { Text = "Hello." } };
        m.From.Add(sender);
        m.To.Add(to);
        m.MessageId = MimeKit.Utils.MimeUtils.GenerateMessageId("example.test");
        return new OutgoingCopy(Guid.NewGuid(), m, sender, [to], forSentFolder);
    }

    /// <summary>The keywords of each message in the sender's Sent folder with this Message-ID.</summary>
    static async Task<List<IReadOnlySet<string>>> SentCopiesAsync(string messageId)
    {
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        var sent = await ImapWatch.FindSentFolderAsync(imap, CancellationToken.None);
        if (sent is null) return [];
        await sent.OpenAsync(FolderAccess.ReadOnly);
        var found = await sent.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", messageId));
        var copies = found.Count == 0 ? [] : await sent.FetchAsync(found, MessageSummaryItems.Flags);
        await imap.DisconnectAsync(true);
        return [.. copies.Select(c => (IReadOnlySet<string>)c.Keywords.ToHashSet(StringComparer.OrdinalIgnoreCase))];
    }

    static EmailTracking.Server.Mailboxes.IMailTransport Transport(IServiceScope scope) => scope.ServiceProvider.GetRequiredKeyedService<EmailTracking.Server.Mailboxes.IMailTransport>(MailboxKind.Imap);

    [Fact]
    public async Task The_Sent_copy_is_stored_marked_as_being_sent_before_the_server_has_the_mail_and_unmarked_once_it_accepted_it()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (mailbox, sender) = await MailboxAsync(proxy);
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain);
        var copy = Copy(sender, bob);
        var id = copy.Message.MessageId!;
        List<IReadOnlySet<string>>? during = null;
        proxy.BeforeEndOfData(async () => during = await SentCopiesAsync(id));

        using var scope = app.Services.CreateScope();
        var transport = Transport(scope);
        var result = await transport.SendAsync(mailbox, [copy], CancellationToken.None);

        Assert.True(result.Copies.Single().Sent, result.Copies.Single().Error);
        Assert.Null(result.Warning);
        // While the mail was being handed over, its Sent copy was there already, marked.
        Assert.NotNull(during);
        Assert.Contains(SmtpTransport.SendingKeyword, Assert.Single(during));
        // Accepted: the mark is gone, and the Sent folder says it left.
        Assert.DoesNotContain(SmtpTransport.SendingKeyword, Assert.Single(await SentCopiesAsync(id)));
        Assert.True(await transport.IsInSentAsync(mailbox, id, "unused", CancellationToken.None));
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, id);
    }

    [Fact]
    public async Task Attachments_sent_through_the_API_reach_every_recipient_and_the_Sent_copy_of_a_6_MB_mail_is_unmarked()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (_, sender, user) = await UserMailboxAsync(proxy);
        var client = user.Client;
        var pdf = Mailboxes.TestFiles.Pdf(6 * 1024 * 1024, seed: 7);
        var notes = Mailboxes.TestFiles.Text("Zeile 1\nZeile 2\n");
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        var carol = MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address;
        var res = await client.PostAsJsonAsync("/api/messages/send", new
        {
            from = sender.Address, subject = MailServer.UniqueSubject("Files"), to = new[] { bob, carol }, html = "<p>Two files.</p>", perRecipient = true,
            attachments = new[] { Mailboxes.TestFiles.Attachment("../../Angebot 2026.pdf", pdf), Mailboxes.TestFiles.Attachment("Notizen\u0007.txt", notes) },
        }, TestApi.Json);
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, text);
        var copies = JsonDocument.Parse(text).RootElement.GetProperty("copies").EnumerateArray().ToList();
        Assert.Equal(2, copies.Count);
        foreach (var copy in copies)
        {
            Assert.True(copy.GetProperty("sent").GetBoolean(), copy.ToString());
            var to = copy.GetProperty("recipients")[0].GetString()!;
            var received = await MailServer.WaitForMessageIdAsync(to.Split('@')[0], copy.GetProperty("messageId").GetString()!.Trim('<', '>'));
            var files = received.Attachments.OfType<MimePart>().ToList();
            // No path, no control character; the types the bytes show.
            Assert.Equal(["Angebot 2026.pdf", "Notizen.txt"], files.Select(f => f.FileName));
            Assert.Equal(["application/pdf", "text/plain"], files.Select(f => f.ContentType.MimeType));
            using var bytes = new MemoryStream();
            await files[0].Content!.DecodeToAsync(bytes);
            Assert.Equal(pdf, bytes.ToArray());
        }
        // The big mail's Sent copy went in before the hand-over and lost its mark after; it keeps the files.
        var id = copies[0].GetProperty("messageId").GetString()!.Trim('<', '>');
        Assert.DoesNotContain(SmtpTransport.SendingKeyword, Assert.Single(await SentCopiesAsync(id)));
        using var imap = await MailServer.ConnectImapAsync(MailServer.Sender);
        var sent = (await ImapWatch.FindSentFolderAsync(imap, CancellationToken.None))!;
        await sent.OpenAsync(FolderAccess.ReadOnly);
        var kept = await sent.GetMessageAsync((await sent.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", id))).Single());
        Assert.Equal(2, kept.Attachments.Count());
        await imap.DisconnectAsync(true);
    }

    [Fact]
    public async Task A_copy_the_server_refuses_loses_its_Sent_copy_and_the_copy_that_left_instead_is_stored_unmarked()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (mailbox, sender) = await MailboxAsync(proxy);
        var keep = new MimeMessage { Subject = "As written", Body = new TextPart("plain") { Text = "Hello." } };
        keep.From.Add(sender);
        var refused = Copy(sender, new MailboxAddress(null, MailServer.Greylisted), keep);
        var taken = Copy(sender, MailServer.Address(MailServer.Bob, MailServer.PartnerDomain), keep);
        var refusedId = refused.Message.MessageId!;
        List<IReadOnlySet<string>>? during = null;
        proxy.BeforeRecipient(async () => during = await SentCopiesAsync(refusedId));

        using var scope = app.Services.CreateScope();
        var transport = Transport(scope);
        var result = await transport.SendAsync(mailbox, [refused, taken], CancellationToken.None);

        var r = result.Copies.Single(c => c.CopyId == refused.CopyId);
        Assert.False(r.Sent);
        Assert.False(r.MayHaveLeft);
        Assert.True(result.Copies.Single(c => c.CopyId == taken.CopyId).Sent);
        Assert.Null(result.Warning);
        // Stored marked before the first recipient was given; removed once the server refused it (450: nothing kept).
        Assert.NotNull(during);
        Assert.Contains(SmtpTransport.SendingKeyword, Assert.Single(during));
        Assert.Empty(await SentCopiesAsync(refusedId));
        Assert.False(await transport.IsInSentAsync(mailbox, refusedId, "unused", CancellationToken.None));
        // The copy that left is the one the Sent folder keeps.
        Assert.DoesNotContain(SmtpTransport.SendingKeyword, Assert.Single(await SentCopiesAsync(taken.Message.MessageId!)));
        Assert.True(await transport.IsInSentAsync(mailbox, taken.Message.MessageId!, "unused", CancellationToken.None));
    }

    [Fact]
    public async Task A_mail_whose_connection_went_after_the_server_took_it_keeps_its_mark_and_the_Sent_folder_cannot_say_it_never_left()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (mailbox, sender) = await MailboxAsync(proxy);
        var copy = Copy(sender, MailServer.Address(MailServer.Bob, MailServer.PartnerDomain));
        var id = copy.Message.MessageId!;
        proxy.OnAccepted(() => { });

        using var scope = app.Services.CreateScope();
        var transport = Transport(scope);
        var result = await transport.SendAsync(mailbox, [copy], CancellationToken.None);

        var r = result.Copies.Single();
        Assert.False(r.Sent);
        Assert.True(r.MayHaveLeft, r.Error);
        // It did leave ...
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, id);
        // ... and the Sent folder, which cannot know that, does not say it did not: a retry would send it twice.
        Assert.Contains(SmtpTransport.SendingKeyword, Assert.Single(await SentCopiesAsync(id)));
        Assert.Null(await transport.IsInSentAsync(mailbox, id, "unused", CancellationToken.None));
    }

    [Fact]
    public async Task A_Sent_folder_that_cannot_be_reached_before_the_hand_over_stops_the_send_and_nothing_leaves()
    {
        await using var smtp = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var imap = new ImapKillProxy(MailServer.ImapHost, MailServer.ImapPort);
        var (mailbox, sender) = await MailboxAsync(smtp, imap.Port);
        // The IMAP server goes away after the mailbox was connected.
        await imap.DisposeAsync();
        var copy = Copy(sender, MailServer.Address(MailServer.Bob, MailServer.PartnerDomain));
        var recipientGiven = false;
        smtp.BeforeRecipient(() =>
        {
            recipientGiven = true;
            return Task.CompletedTask;
        });

        using var scope = app.Services.CreateScope();
        var problem = await Assert.ThrowsAsync<MailboxException>(() => Transport(scope).SendAsync(mailbox, [copy], CancellationToken.None));

        // Sent without its copy stored first, a crash just after the server took it would look like mail that never left.
        Assert.StartsWith("Nothing was sent", problem.Message);
        Assert.False(recipientGiven);
    }

    [Fact]
    public async Task Without_AppendToSent_a_copy_the_provider_filed_itself_counts_as_left_and_none_cannot_tell()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (mailbox, sender) = await MailboxAsync(proxy);
        var copy = Copy(sender, MailServer.Address(MailServer.Bob, MailServer.PartnerDomain));
        var id = copy.Message.MessageId!;
        using var scope = app.Services.CreateScope();
        // A provider that files its own Sent copy (Gmail's SMTP does): the product stores none.
        var transport = new SmtpTransport(scope.ServiceProvider.GetRequiredService<MailboxSecrets>(),
            Options.Create(new MailboxOptions { AllowPrivateHosts = true, AppendToSent = false }), NullLogger<SmtpTransport>.Instance);

        var result = await transport.SendAsync(mailbox, [copy], CancellationToken.None);

        Assert.True(result.Copies.Single().Sent);
        Assert.Empty(await SentCopiesAsync(id));
        // Nothing filed (yet): this mailbox cannot tell.
        Assert.Null(await transport.IsInSentAsync(mailbox, id, "unused", CancellationToken.None));
        // The provider's own copy, as it files it: the mail left.
        using (var imap = await MailServer.ConnectImapAsync(MailServer.Sender))
        {
            var sent = await ImapWatch.FindSentFolderAsync(imap, CancellationToken.None)
                ?? await imap.GetFolder(imap.PersonalNamespaces[0]).CreateAsync("Sent", true);
            Assert.NotNull(sent);
            await sent.AppendAsync(new AppendRequest(copy.Message, MessageFlags.Seen));
            await imap.DisconnectAsync(true);
        }
        Assert.True(await transport.IsInSentAsync(mailbox, id, "unused", CancellationToken.None));
    }

    [Fact]
    public async Task A_keyed_send_that_stopped_is_finished_from_the_Sent_folder_when_it_can_tell_and_a_409_says_why_when_it_cannot()
    {
        await using var proxy = new SmtpFaultProxy(MailServer.SmtpHost, MailServer.SmtpPort);
        var (_, sender, user) = await UserMailboxAsync(proxy);
        var bob = MailServer.Address(MailServer.Bob, MailServer.PartnerDomain).Address;
        object Body(string subject, params string[] to) => new { from = sender.Address, subject = MailServer.UniqueSubject(subject), to, html = "<p>Hello</p>" };
        async Task<(Guid Id, string Key, object Body, string Text)> SendThenDieAsync(object body)
        {
            var key = Guid.NewGuid().ToString();
            var (res, text) = await Api.StoppedSends.SendAsync(user, body, key);
            Assert.True(res.StatusCode == HttpStatusCode.Created, text);
            var id = JsonDocument.Parse(text).RootElement.GetProperty("id").GetGuid();
            await Api.StoppedSends.RewindAsync(app, id);
            return (id, key, body, text);
        }
        // Every mail handed to the server from here on.
        var handedOver = 0;
        void Count() => proxy.BeforeEndOfData(() =>
        {
            handedOver++;
            Count();
            return Task.CompletedTask;
        });
        void CountHandOvers()
        {
            handedOver = 0;
            Count();
        }

        // One copy, its Sent copy unmarked: it left. Recorded, not handed to the server again.
        var left = await SendThenDieAsync(Body("Left", bob));
        var copy = app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == left.Id));
        await MailServer.WaitForMessageIdAsync(MailServer.Bob, copy.MessageIdHeader);
        CountHandOvers();
        var (retry, text) = await Api.StoppedSends.SendAsync(user, left.Body, left.Key);
        Assert.True(retry.StatusCode == HttpStatusCode.Created, text);
        Assert.True(retry.Headers.Contains(EmailTracking.Server.Messages.IdempotencyKeys.CompletedOnRetryHeader));
        Assert.True(JsonDocument.Parse(text).RootElement.GetProperty("copies")[0].GetProperty("sent").GetBoolean());
        Assert.Equal(0, handedOver);

        // One copy whose hand-over lost its connection: its Sent copy is still marked, so it cannot be told.
        proxy.OnAccepted(() => { });
        var unsure = await SendThenDieAsync(Body("Unsure", bob));
        Assert.False(JsonDocument.Parse(unsure.Text).RootElement.GetProperty("copies")[0].GetProperty("sent").GetBoolean());
        CountHandOvers();
        var (stuck, stuckText) = await Api.StoppedSends.SendAsync(user, unsure.Body, unsure.Key);
        Assert.True(stuck.StatusCode == HttpStatusCode.Conflict, stuckText);
        Assert.Contains("still marked as being sent", JsonDocument.Parse(stuckText).RootElement.GetProperty("reason").GetString());
        Assert.Equal(0, handedOver);

        // Copies per recipient: the Sent folder keeps one version of the send, which says nothing of the others.
        var two = await SendThenDieAsync(Body("Two", bob, MailServer.Address(MailServer.Carol, MailServer.PartnerDomain).Address));
        CountHandOvers();
        var (several, severalText) = await Api.StoppedSends.SendAsync(user, two.Body, two.Key);
        Assert.True(several.StatusCode == HttpStatusCode.Conflict, severalText);
        Assert.Contains("keeps one version of a send", JsonDocument.Parse(severalText).RootElement.GetProperty("reason").GetString());
        Assert.Equal(0, handedOver);
    }
}
