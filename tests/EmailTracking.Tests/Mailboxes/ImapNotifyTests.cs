using System.Diagnostics;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using MimeKit;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>The other folders are polled only every ten minutes here: what is read before that was read because the server said so.</summary>
public abstract class ImapNotifyApp(DatabaseProvider provider) : AppFactory(provider)
{
    public static readonly TimeSpan PollInterval = TimeSpan.FromMinutes(10);

    protected override void Configure(IWebHostBuilder builder) =>
        builder.UseSetting("Mailboxes:PollInterval", PollInterval.ToString("c", System.Globalization.CultureInfo.InvariantCulture));
}

public sealed class ImapNotifySqliteApp() : ImapNotifyApp(DatabaseProvider.Sqlite);

public sealed class ImapNotifyPostgresApp() : ImapNotifyApp(DatabaseProvider.Postgres);

/// <summary>
/// A server-side rule files an answer in "Customers" while the watch IDLEs on the Inbox. Where the server can NOTIFY
/// (RFC 5465), the watch asks to be told of new mail in the folders it reads (and not of Junk or Trash), and reads the
/// folder the server names at once; without NOTIFY the folder waits for the poll, as before.
/// </summary>
public abstract class ImapNotifyTests(ImapNotifyApp app)
{
    /// <summary>Far below the poll interval, and far above what reading one message takes.</summary>
    static readonly TimeSpan AtOnce = TimeSpan.FromSeconds(20);

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

    static MimeMessage Reply(Tracked tracked, string text)
    {
        var m = new MimeMessage();
        m.From.Add(MailboxAddress.Parse("Flynn <flynn@flynnsarcade.test>"));
        m.To.Add(MailboxAddress.Parse(tracked.User.Email));
        m.Subject = "Re: Proposal for Flynn's";
        m.MessageId = $"{Guid.NewGuid():N}@mail.flynnsarcade.test";
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

    List<string> Recorded(Tracked tracked) =>
        app.WithDb(db => db.InboundMessages.Where(i => i.TrackedMessageId == tracked.MessageId).AsNoTracking().Select(i => i.ProviderId).ToList());

    MailboxConnection Row(Guid id) => app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));

    static async Task UntilAsync(Func<bool> condition, TimeSpan within, Func<string> what)
    {
        var deadline = DateTime.UtcNow + within;
        while (!condition())
        {
            Assert.True(DateTime.UtcNow < deadline, "timed out waiting: " + what());
            await Task.Delay(100);
        }
    }

    /// <summary>The watch has read everything once and is IDLE on the Inbox (its last command is an IDLE it has not ended).</summary>
    async Task IdleAsync(Guid id, ScriptedImapServer server, int afterLogins = 1)
    {
        await UntilAsync(() => Row(id).LastSyncAt is not null, TimeSpan.FromSeconds(60), () => "never read: " + Row(id).StatusMessage);
        await UntilAsync(() => server.Log.Count(l => l.Contains(" LOGIN ", StringComparison.Ordinal)) >= afterLogins
                && server.Log.LastOrDefault() is { } last && last.StartsWith("INBOX ", StringComparison.Ordinal) && last.EndsWith(" IDLE", StringComparison.Ordinal),
            TimeSpan.FromSeconds(20), () => $"not idle ({Row(id).Status}: {Row(id).StatusMessage}): " + string.Join(" | ", server.Log.Take(40)));
    }

    static ScriptedImapServer Server() => new(
        new("Sent", "\\HasNoChildren \\Sent"),
        new("Junk", "\\HasNoChildren \\Junk"),
        new("Trash", "\\HasNoChildren \\Trash"),
        new("Customers"),
        new("Archive", "\\HasNoChildren \\Archive"));

    [Fact]
    public async Task A_reply_a_rule_files_in_another_folder_while_the_watch_idles_is_read_at_once_where_the_server_can_notify()
    {
        var tracked = await TrackAsync();
        await using var server = Server();
        server.Notify = true;
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await IdleAsync(id, server);
            // Asked of the folders it reads, and of the selected one, not of Sent, Junk or Trash.
            var notify = Assert.Single(server.Log, l => l.Contains(" NOTIFY ", StringComparison.Ordinal));
            Assert.Contains("SELECTED-DELAYED", notify);
            Assert.Contains("Customers", notify);
            Assert.Contains("Archive", notify);
            foreach (var skipped in new[] { "Sent", "Junk", "Trash" }) Assert.DoesNotContain(skipped, notify);

            // Spam keeps coming into Junk: the server does not tell of it, and the watch does not wake for it.
            var commands = server.Log.Count;
            server.Deliver("Junk", Reply(tracked, "Cheap watches"));
            var time = Stopwatch.StartNew();
            server.Deliver("Customers", Reply(tracked, "Filed by a rule: sounds good."));
            await UntilAsync(() => Recorded(tracked).Count == 1, AtOnce, () => "not read: " + string.Join(" | ", server.Log.Skip(commands)));
            Assert.True(time.Elapsed < AtOnce, $"read after {time.Elapsed}");
            Assert.Equal("imap:Customers:7:1", Assert.Single(Recorded(tracked)));
            Assert.DoesNotContain("Junk", server.Opened());

            // The Inbox is still told of while the watch IDLEs: a NOTIFY that left out the selected folder would silence it.
            server.Deliver("INBOX", Reply(tracked, "And straight to the Inbox."));
            await UntilAsync(() => Recorded(tracked).Count == 2, AtOnce, () => "the Inbox not read: " + string.Join(" | ", server.Log.Skip(commands)));
            // The folder the answer was filed in is read once: its STATUS, after it was read, answers no more.
            await IdleAsync(id, server);
            Assert.Equal(["Customers 1", "INBOX 1"], server.BodiesFetched());
            Assert.Equal(MailboxStatus.Active, Row(id).Status);
        }
        finally
        {
            await DisconnectAsync(id);
        }
    }

    [Fact]
    public async Task Without_notify_a_reply_filed_in_another_folder_waits_for_the_poll_while_the_inbox_is_read_at_once()
    {
        var tracked = await TrackAsync();
        await using var server = Server();
        server.Idle = true;
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await IdleAsync(id, server);
            server.Deliver("Customers", Reply(tracked, "Filed by a rule."));
            server.Deliver("INBOX", Reply(tracked, "In the Inbox."));
            await UntilAsync(() => Recorded(tracked).Count == 1, AtOnce, () => string.Join(" | ", server.Log));
            await IdleAsync(id, server);
            await Task.Delay(TimeSpan.FromSeconds(2));
            Assert.Equal("imap:INBOX:7:1", Assert.Single(Recorded(tracked)));
            Assert.DoesNotContain(server.Log, l => l.Contains(" NOTIFY ", StringComparison.Ordinal));
        }
        finally
        {
            await DisconnectAsync(id);
        }
    }

    [Fact]
    public async Task A_server_that_refuses_notify_is_not_asked_again_on_that_connection_and_the_mailbox_is_read_as_before()
    {
        var tracked = await TrackAsync();
        await using var server = Server();
        server.Notify = true;
        server.RefuseNotify = "NO [NOTIFICATIONOVERFLOW] Too many mailboxes";
        var id = await ConnectAsync(tracked.User, server);
        try
        {
            await IdleAsync(id, server);
            server.Deliver("INBOX", Reply(tracked, "In the Inbox."));
            await UntilAsync(() => Recorded(tracked).Count == 1, AtOnce, () => string.Join(" | ", server.Log));
            await IdleAsync(id, server);
            var row = Row(id);
            Assert.Equal(MailboxStatus.Active, row.Status);
            Assert.Null(row.StatusMessage);
            Assert.Single(server.Log, l => l.Contains(" NOTIFY ", StringComparison.Ordinal));
            Assert.Single(server.Log, l => l.Contains(" LOGIN ", StringComparison.Ordinal));
        }
        finally
        {
            await DisconnectAsync(id);
        }
    }
}

public sealed class ImapNotifyOnSqlite(ImapNotifySqliteApp app) : ImapNotifyTests(app), IClassFixture<ImapNotifySqliteApp>;

public sealed class ImapNotifyOnPostgres(ImapNotifyPostgresApp app) : ImapNotifyTests(app), IClassFixture<ImapNotifyPostgresApp>;
