using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// A server that announces a message (RFC822.SIZE) far smaller than it sends it trips the limit on what one answer may
/// hold, which closes the connection. It would do the same at every round: the message is noted as unreadable, with
/// why, and the watch goes on past it instead of stopping at it for good.
/// </summary>
public sealed class ImapUnderstatedSizeTests
{
    const long MaxMessage = 1024 * 1024;

    [Fact]
    public async Task A_message_sent_far_larger_than_announced_is_noted_and_passed()
    {
        await using var app = new ConfiguredApp(("Mailboxes:MaxMessageBytes", MaxMessage.ToString(System.Globalization.CultureInfo.InvariantCulture)));
        var user = await app.NewUserAsync();
        await using var server = new ScriptedImapServer();
        // Past a whole message and the slack one answer may carry besides.
        var huge = Message("huge", (int)(MaxMessage + MailConnect.ImapReplySlack + 1024 * 1024));
        server.Deliver("INBOX", huge, announced: 2000);
        server.Deliver("INBOX", Message("after", 2000));
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
        string? Inbox() => app.WithDb(db => db.MailboxCursors.Where(c => c.ConnectionId == id && c.Name == ImapWatch.InboxCursor).Select(c => c.Value).FirstOrDefault());
        MailboxConnection Row() => app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == id));
        try
        {
            var deadline = DateTime.UtcNow.AddSeconds(90);
            while (Inbox() != "7:2" || Row().StatusMessage is not null)
            {
                Assert.True(DateTime.UtcNow < deadline, $"the Inbox's checkpoint is {Inbox()}; the mailbox says {Row().StatusMessage}; fetched {string.Join(", ", server.BodiesFetched())}");
                await Task.Delay(200);
            }
        }
        finally
        {
            await app.WithDbAsync(db => db.Mailboxes.Where(m => m.Id == id).ExecuteDeleteAsync());
        }

        var note = Assert.Single(app.WithDb(db => db.UnreadableMessages.Where(u => u.UserId == user.Id).AsNoTracking().ToList()));
        Assert.Equal("imap:INBOX:7:1", note.ProviderId);
        Assert.Equal("INBOX", note.Folder);
        Assert.Contains("announced 2,000 bytes", note.Reason);
        Assert.Equal(2000, note.Size);
        // Asked for once: the next connection went on past it.
        Assert.Equal(["INBOX 1", "INBOX 2"], server.BodiesFetched());
    }

    static byte[] Message(string name, int bytes)
    {
        var text = new StringBuilder();
        text.Append("From: someone@partner.test\r\nTo: me@encom.test\r\n");
        text.Append($"Subject: {name}\r\nMessage-ID: <{name}-{Guid.NewGuid():N}@partner.test>\r\nDate: {DateTimeOffset.UtcNow:R}\r\n");
        text.Append("Content-Type: text/plain\r\n\r\n");
        var line = new string('x', 76) + "\r\n";
        while (text.Length + line.Length <= bytes) text.Append(line);
        return Encoding.ASCII.GetBytes(text.ToString());
    }
}
