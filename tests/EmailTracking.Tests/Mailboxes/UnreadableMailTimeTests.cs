using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// An IMAP server gives each message's INTERNALDATE in its own time zone ("02-Dec-2026 11:00:00 +0100" from a Dovecot
/// in Berlin). Noted as it came, PostgreSQL refused the row (timestamptz takes only UTC offsets: the save failed, and
/// with the IMAP watch's checkpoint in the same save the mailbox stopped at that message for good), and SQLite kept the
/// local clock time, whose stored ticks do not order with the UTC times beside them.
/// </summary>
public abstract class UnreadableMailTimeTests(AppFactory app)
{
    [Fact]
    public async Task A_message_dated_in_the_imap_servers_own_zone_is_noted_and_read_back_as_the_same_instant_in_utc()
    {
        var user = await app.NewUserAsync();
        var connectionId = Guid.NewGuid();
        await app.WithDbAsync(async db =>
        {
            db.Mailboxes.Add(new MailboxConnection
            {
                Id = connectionId, TeamId = user.TeamId, UserId = user.Id, Kind = MailboxKind.Imap, Address = user.Email,
                ProtectedSecret = "x", CreatedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        var connection = app.WithDb(db => db.Mailboxes.AsNoTracking().Single(m => m.Id == connectionId));
        var received = new DateTimeOffset(2026, 12, 2, 11, 0, 0, TimeSpan.FromHours(1));

        // As the IMAP watch does it: the note saved together with the checkpoint past the message.
        await app.WithDbAsync(async db =>
        {
            db.MailboxCursors.Add(new MailboxCursor { ConnectionId = connectionId, Name = "imap:INBOX", Value = "42:0", UpdatedAt = DateTimeOffset.UtcNow });
            await UnreadableMail.NoteAsync(db, connection, "imap:INBOX:42", "INBOX", "the message could not be read", 1234, received,
                DateTimeOffset.UtcNow, save: false, CancellationToken.None);
            await db.SaveChangesAsync();
        });

        var noted = app.WithDb(db => db.UnreadableMessages.AsNoTracking().Single(u => u.ConnectionId == connectionId)).ReceivedAt;
        Assert.Equal(received, noted);
        Assert.Equal(TimeSpan.Zero, noted!.Value.Offset);
        Assert.Equal("42:0", app.WithDb(db => db.MailboxCursors.AsNoTracking().Single(c => c.ConnectionId == connectionId).Value));
    }
}

public sealed class UnreadableMailTimeOnSqlite(SqliteApp app) : UnreadableMailTimeTests(app), IClassFixture<SqliteApp>;

public sealed class UnreadableMailTimeOnPostgres(PostgresApp app) : UnreadableMailTimeTests(app), IClassFixture<PostgresApp>;
