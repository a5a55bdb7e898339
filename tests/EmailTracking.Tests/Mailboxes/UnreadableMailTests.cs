using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// What a watch does with a message it cannot read or handle: the failure is told apart from the database's and the
/// network's (those stop the round so that the message is tried again), what the failed handling left half done is
/// dropped, and the note is kept once, with the checkpoint that goes past it.
/// </summary>
public sealed class UnreadableMailTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public void Only_a_failure_of_the_message_itself_is_passed_over()
    {
        using var cancelled = new CancellationTokenSource();
        cancelled.Cancel();
        // The message's own: a bug that this message brings out.
        Assert.True(UnreadableMail.IsPoison(new ArgumentException("bad"), CancellationToken.None));
        Assert.True(UnreadableMail.IsPoison(new NullReferenceException(), CancellationToken.None));
        Assert.True(UnreadableMail.IsPoison(new FormatException("bad date"), CancellationToken.None));
        // Not the message's: tried again on the next round, the checkpoint staying before it.
        Assert.False(UnreadableMail.IsPoison(new SqliteException("locked", 5), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new DbUpdateException("failed"), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new InvalidOperationException("wrapped", new SqliteException("io", 10)), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new TimeoutException(), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new HttpRequestException("reset"), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new IOException("broken pipe"), CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new Google.GoogleApiException("gmail", "backend error") { HttpStatusCode = HttpStatusCode.InternalServerError },
            CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new Microsoft.Kiota.Abstractions.ApiException("throttled") { ResponseStatusCode = 429 }, CancellationToken.None));
        Assert.False(UnreadableMail.IsPoison(new OperationCanceledException(cancelled.Token), cancelled.Token));
    }

    [Fact]
    public async Task A_note_is_saved_with_the_checkpoint_once_and_without_what_the_failed_handling_left()
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
        var now = DateTimeOffset.UtcNow;

        await app.WithDbAsync(async db =>
        {
            // A round: the checkpoint is tracked; a handling failed half way, leaving an answer it never finished.
            var cursor = new MailboxCursor { ConnectionId = connectionId, Name = "imap:INBOX", Value = "7:0", UpdatedAt = now };
            db.MailboxCursors.Add(cursor);
            db.InboundMessages.Add(new InboundMessage
            {
                TeamId = user.TeamId, UserId = user.Id, ConnectionId = connectionId, ProviderId = "imap:INBOX:7:3", FromAddress = "x@partner.test",
                Reason = "half done", TrackedMessageId = Guid.NewGuid(), CopyId = Guid.NewGuid(), HandledAt = now,
            });
            UnreadableMail.ForgetUnsaved(db);
            await UnreadableMail.NoteAsync(db, connection, "imap:INBOX:7:3", "INBOX", UnreadableMail.NotHandled(new ArgumentException(new string('x', 900))),
                4133, now.AddMinutes(-5), now, save: false, CancellationToken.None);
            // Noted twice in one round (the same batch read again): one row.
            await UnreadableMail.NoteAsync(db, connection, "imap:INBOX:7:3", "INBOX", "again", 4133, null, now, save: false, CancellationToken.None);
            cursor.Value = "7:3";
            await db.SaveChangesAsync();
        });

        // Another round reads it again (a resync) and notes it with saving: still one row.
        await app.WithDbAsync(db => UnreadableMail.NoteAsync(db, connection, "imap:INBOX:7:3", "INBOX", "again", 4133, null, now, save: true, CancellationToken.None));

        var notes = app.WithDb(db => db.UnreadableMessages.Where(u => u.ConnectionId == connectionId).AsNoTracking().ToList());
        var note = Assert.Single(notes);
        Assert.Equal(user.Id, note.UserId);
        Assert.Equal("INBOX", note.Folder);
        Assert.Equal(4133, note.Size);
        Assert.StartsWith("could not be handled (ArgumentException): xxx", note.Reason);
        Assert.Equal(500, note.Reason.Length);
        Assert.EndsWith("…", note.Reason);
        Assert.Equal("7:3", app.WithDb(db => db.MailboxCursors.Single(c => c.ConnectionId == connectionId).Value));
        Assert.False(app.WithDb(db => db.InboundMessages.Any(i => i.ConnectionId == connectionId)));

        // Another user can neither read nor clear them; the owner clears up to the newest they saw.
        var other = await app.NewUserAsync();
        Assert.Equal(HttpStatusCode.NotFound, (await other.Client.DeleteAsync($"/api/mailboxes/{connectionId}/unreadable")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await other.Client.GetAsync($"/api/mailboxes/{connectionId}/unreadable")).StatusCode);
        await app.WithDbAsync(db => UnreadableMail.NoteAsync(db, connection, "imap:INBOX:7:9", "INBOX", "later", 10, null, now, save: true, CancellationToken.None));
        // The user saw the list before the later note: clearing up to what they saw leaves the later one.
        var seen = app.WithDb(db => db.UnreadableMessages.Single(u => u.ConnectionId == connectionId && u.ProviderId == "imap:INBOX:7:3").Id);
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/mailboxes/{connectionId}/unreadable?upTo={seen}")).StatusCode);
        Assert.Equal(["imap:INBOX:7:9"], app.WithDb(db => db.UnreadableMessages.Where(u => u.ConnectionId == connectionId).Select(u => u.ProviderId).ToList()));

        // Disconnecting the mailbox removes its notes (its recorded answers stay).
        var removed = await user.Client.DeleteAsync($"/api/mailboxes/{connectionId}");
        Assert.Equal(HttpStatusCode.NoContent, removed.StatusCode);
        Assert.False(app.WithDb(db => db.UnreadableMessages.Any(u => u.ConnectionId == connectionId)));
        Assert.Equal(HttpStatusCode.NotFound, (await user.Client.GetAsync($"/api/mailboxes/{connectionId}/unreadable")).StatusCode);
    }
}
