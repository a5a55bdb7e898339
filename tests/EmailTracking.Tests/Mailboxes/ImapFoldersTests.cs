using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using MimeKit;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// A server-side rule (Sieve, Outlook rules on an IMAP account) files an answer in a folder of its own before the watch
/// reads the Inbox. The IMAP watch reads the other folders where received mail lands, each with its own checkpoint, and
/// leaves alone those that hold no received mail (Drafts, Trash, Junk) or only copies of other folders' (Gmail's All Mail).
/// </summary>
public sealed class ImapFoldersTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    sealed record Tracked(TestUser User, Guid MessageId, string CopyMessageId);

    async Task<Tracked> TrackAsync()
    {
        var user = await app.NewUserAsync();
        var body = await user.RegisterAsync(new
        {
            from = user.Email, subject = "Proposal for Flynn's", to = new[] { "Flynn <flynn@flynnsarcade.test>" },
            html = "<p>Hi, <a href=\"https://encom.test/deck\">the deck</a></p>", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-2),
        });
        var copy = body.GetProperty("copies")[0].GetProperty("messageId").GetString()!.Trim('<', '>');
        return new Tracked(user, body.GetProperty("id").GetGuid(), copy);
    }

    static MimeMessage Reply(Tracked tracked, string? id = null, string text = "Sounds good, let's talk Tuesday.")
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse("Flynn <flynn@flynnsarcade.test>"));
        m.To.Add(MailboxAddress.Parse(tracked.User.Email));
        m.Subject = "Re: Proposal for Flynn's";
        m.MessageId = id ?? $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
        m.Date = DateTimeOffset.UtcNow;
        m.InReplyTo = tracked.CopyMessageId;
        m.Body = new TextPart("plain") { Text = text + "\n\nOn Mon, someone wrote:\n> Hi, the deck\n" };
        return m;
    }

    async Task<Guid> ConnectAsync(TestUser user, ScriptedImapServer server)
    {
        var id = Guid.NewGuid();
        var secrets = app.Services.GetRequiredService<MailboxSecrets>();
        var endpoint = new ServerEndpoint("127.0.0.1", server.Port, MailSecurity.None);
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = id, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email,
                ProtectedSecret = secrets.Protect(new ImapSmtpSecret(endpoint, endpoint, "me", "secret")), CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        return id;
    }

    Task DisconnectAsync(Guid id) => app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == id).ExecuteDeleteAsync());

    uint Checkpoint(Guid id, string folder) =>
        app.WithDb(db => db.MailboxCursors.Where(c => c.ConnectionId == id && c.Name == ImapWatch.FolderCursor(folder)).Select(c => c.Value).FirstOrDefault())
            is { } v ? uint.Parse(v.Split(':')[1], System.Globalization.CultureInfo.InvariantCulture) : 0;

    List<InboundMessage> Inbound(Tracked tracked) =>
        app.WithDb(db => db.InboundMessages.Where(i => i.TrackedMessageId == tracked.MessageId).AsNoTracking().ToList());

    MailboxConnection Row(Guid id) => app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));

    static async Task UntilAsync(Func<bool> condition, Func<string> what)
    {
        var deadline = DateTime.UtcNow.AddSeconds(60);
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting: " + what());
            await Task.Delay(200);
        }
    }

    [Fact]
    public async Task A_reply_a_rule_filed_in_another_folder_is_recorded_once_and_junk_trash_drafts_and_all_mail_are_not_read()
    {
        var tracked = await TrackAsync();
        await using var server = new ScriptedImapServer(
            new("Sent", "\\HasNoChildren \\Sent"),
            new("Drafts", "\\HasNoChildren \\Drafts"),
            new("Trash", "\\HasChildren \\Trash"),
            new("Trash/Old"),
            new("Junk", "\\HasNoChildren \\Junk"),
            // No special-use mark: known by its name.
            new("Spam"),
            new("[Gmail]", "\\Noselect \\HasChildren"),
            new("[Gmail]/All Mail", "\\HasNoChildren \\All"),
            new("Archive", "\\HasNoChildren \\Archive"),
            new("Customers"));
        var reply = Reply(tracked);
        server.Deliver("Customers", reply);
        // The same answer again, archived by the user: one record.
        server.Deliver("Archive", reply);
        server.Deliver("[Gmail]/All Mail", reply);
        // Answers in folders that are not read would be other records.
        foreach (var folder in new[] { "Drafts", "Trash", "Trash/Old", "Junk", "Spam", "[Gmail]/All Mail" }) server.Deliver(folder, Reply(tracked));
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await UntilAsync(() => Checkpoint(id, "Customers") == 1 && Checkpoint(id, "Archive") == 1 && Row(id).LastSyncAt is not null,
                () => $"opened {string.Join(", ", server.Opened())}");
        }
        finally
        {
            await DisconnectAsync(id);
        }

        var inbound = Assert.Single(Inbound(tracked));
        Assert.Equal(reply.MessageId, inbound.InternetMessageId);
        // From whichever of the two folders was read first; the other's copy is recognised by its Message-ID.
        Assert.Matches("^imap:(Customers|Archive):7:1$", inbound.ProviderId);
        var opened = server.Opened();
        foreach (var folder in new[] { "Drafts", "Trash", "Trash/Old", "Junk", "Spam", "[Gmail]/All Mail" }) Assert.DoesNotContain(folder, opened);
        Assert.All(server.BodiesFetched(), f => Assert.Matches("^(Customers|Archive) 1$", f));
    }

    [Fact]
    public async Task A_restart_does_not_read_a_folders_messages_again()
    {
        var tracked = await TrackAsync();
        await using var server = new ScriptedImapServer(new ScriptedImapServer.Folder("Customers"));
        server.Deliver("Customers", Reply(tracked));
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await UntilAsync(() => Checkpoint(id, "Customers") == 1, () => $"fetched {string.Join(", ", server.BodiesFetched())}");
            // A new watch of the mailbox (a restart), knowing only what the database holds.
            app.Services.GetServices<IHostedService>().OfType<MailboxWatcher>().Single().Restart(id);
            var logins = server.Log.Count(l => l.Contains("LOGIN", StringComparison.Ordinal));
            await UntilAsync(() => server.Log.Count(l => l.Contains("LOGIN", StringComparison.Ordinal)) > logins, () => "no new login");
            server.Deliver("Customers", Reply(tracked));
            await UntilAsync(() => Checkpoint(id, "Customers") == 2, () => $"fetched {string.Join(", ", server.BodiesFetched())}");
        }
        finally
        {
            await DisconnectAsync(id);
        }

        Assert.Equal(["Customers 1", "Customers 2"], server.BodiesFetched());
        Assert.Equal(2, Inbound(tracked).Count);
    }

    [Fact]
    public async Task A_folder_that_cannot_be_opened_leaves_the_others_read_and_shows_on_the_mailbox()
    {
        var tracked = await TrackAsync();
        // Listed (and so tried) before the folder that holds the answer.
        await using var server = new ScriptedImapServer(new("A Shared Folder") { Refuse = true }, new("Customers"));
        server.Deliver("A Shared Folder", Reply(tracked));
        server.Deliver("Customers", Reply(tracked));
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await UntilAsync(() => Checkpoint(id, "Customers") == 1 && Row(id).LastSyncAt is not null,
                () => $"status {Row(id).StatusMessage}; opened {string.Join(", ", server.Opened())}");
            var row = Row(id);
            Assert.Equal(MailboxStatus.Active, row.Status);
            Assert.Contains("A Shared Folder", row.StatusMessage);

            // Once it can be opened, it is read, and the mailbox no longer shows it.
            server["A Shared Folder"].Refuse = false;
            await UntilAsync(() => Checkpoint(id, "A Shared Folder") == 1 && Row(id).StatusMessage is null, () => $"status {Row(id).StatusMessage}");
        }
        finally
        {
            await DisconnectAsync(id);
        }
        Assert.Equal(2, Inbound(tracked).Count);
    }

    [Fact]
    public async Task A_folder_created_later_is_read_from_before_it_appeared_and_a_deleted_one_loses_its_checkpoint()
    {
        var tracked = await TrackAsync();
        await using var server = new ScriptedImapServer(new ScriptedImapServer.Folder("Customers"));
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await UntilAsync(() => app.WithDb(db => db.MailboxCursors.Any(c => c.ConnectionId == id && c.Name == ImapWatch.FoldersCursor)),
                () => "the folders are never listed");
            Assert.Equal(0u, Checkpoint(id, "Customers"));
            Assert.True(app.WithDb(db => db.MailboxCursors.Any(c => c.ConnectionId == id && c.Name == ImapWatch.FolderCursor("Customers"))));

            // A rule creates the folder as it files the answer (Sieve's fileinto :create), and the user deletes another.
            server.AddFolder(new("Partners"));
            server.Deliver("Partners", Reply(tracked));
            server.RemoveFolder("Customers");
            await UntilAsync(() => Inbound(tracked).Count == 1, () => $"opened {string.Join(", ", server.Opened())}");
            await UntilAsync(() => !app.WithDb(db => db.MailboxCursors.Any(c => c.ConnectionId == id && c.Name == ImapWatch.FolderCursor("Customers"))),
                () => "the deleted folder keeps its checkpoint");
        }
        finally
        {
            await DisconnectAsync(id);
        }
        Assert.StartsWith("imap:Partners:", Assert.Single(Inbound(tracked)).ProviderId);
    }

    [Fact]
    public async Task A_watch_on_a_server_that_can_idle_waits_in_idle_between_readings_and_hears_of_new_mail_there()
    {
        var tracked = await TrackAsync();
        await using var server = new ScriptedImapServer(new("Sent", "\\HasNoChildren \\Sent"), new("Customers"));
        server.Idle = true;
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await UntilAsync(() => Row(id).LastSyncAt is not null && server.Log.Any(l => l.EndsWith(" IDLE", StringComparison.Ordinal)),
                () => string.Join(" | ", server.Log.Take(30)));
            // Each round reads Sent, then selects the Inbox again, which MailKit reports as a count change though the
            // count is the same: taken as new mail, the watch went round and round, never IDLE. Now a round comes when
            // the other folders are due (every 2 s here), or when mail comes.
            var before = server.Opened().Count(f => f == "INBOX");
            await Task.Delay(TimeSpan.FromSeconds(3));
            var opened = server.Opened().Count(f => f == "INBOX") - before;
            Assert.True(opened <= 4, $"the Inbox was opened {opened} times in 3 s");

            server.Deliver("INBOX", Reply(tracked));
            await UntilAsync(() => Inbound(tracked).Count == 1, () => string.Join(" | ", server.Log.TakeLast(10)));
        }
        finally
        {
            await DisconnectAsync(id);
        }
    }

    [Fact]
    public async Task Folders_that_hold_no_received_mail_are_left_out_by_mark_or_by_name_with_what_is_inside_them()
    {
        await using var server = new ScriptedImapServer(
            new("INBOX/Customers"), new("Sent Items"), new("Sent Items/2024"), new("Drafts", "\\Drafts"), new("Papierkorb", "\\HasChildren \\Trash"),
            new("Papierkorb/Alt"), new("Deleted Items"), new("Junk E-mail"), new("[Gmail]", "\\Noselect \\HasChildren"),
            new("[Gmail]/Starred", "\\Flagged"), new("[Gmail]/Important", "\\Important"), new("[Gmail]/All Mail", "\\All"),
            new("Archive", "\\Archive"), new("Trashy Novels Club"), new("Customers"));
        var endpoint = new ServerEndpoint("127.0.0.1", server.Port, MailSecurity.None);
        using var client = await MailConnect.ImapAsync(new ImapSmtpSecret(endpoint, endpoint, "me", "secret"),
            new MailboxOptions { AllowPrivateHosts = true }, CancellationToken.None);
        var sent = await ImapWatch.FindSentFolderAsync(client, CancellationToken.None);
        Assert.Equal("Sent Items", sent?.FullName);
        var listed = await client.GetFoldersAsync(client.PersonalNamespaces[0]);

        var read = ImapWatch.ReceivedFolders(listed, client.Inbox, sent).Select(f => f.FullName).Order(StringComparer.Ordinal);
        Assert.Equal(["Archive", "Customers", "INBOX/Customers", "Trashy Novels Club"], read);
    }
}
