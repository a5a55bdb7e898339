using System.Data.Common;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Keeps a note of a mailbox's message that could not be read or handled, so that the watch can go past it without
/// losing it: the user sees it on the mailboxes page (and in <c>GET /api/mailboxes/{id}/unreadable</c>) with the reason,
/// the folder, the size and when it arrived, and can look at it in their mail client.
/// </summary>
public static class UnreadableMail
{
    const int MaxReason = 500;

    /// <summary>
    /// Adds the note unless the message has one already. With <paramref name="save"/> false the row is only added to the
    /// context, to be saved with the caller's checkpoint in one transaction (the IMAP watch does that).
    /// </summary>
    public static async Task NoteAsync(AppDbContext db, MailboxConnection connection, string providerId, string? folder, string reason,
        long? size, DateTimeOffset? receivedAt, DateTimeOffset now, bool save, CancellationToken ct)
    {
        if (db.UnreadableMessages.Local.Any(u => u.ConnectionId == connection.Id && u.ProviderId == providerId)
            || await db.UnreadableMessages.AnyAsync(u => u.ConnectionId == connection.Id && u.ProviderId == providerId, ct))
        {
            return;
        }
        var row = new UnreadableMessage
        {
            ConnectionId = connection.Id,
            UserId = connection.UserId,
            ProviderId = providerId.Length <= 300 ? providerId : providerId[..300],
            Folder = folder is { Length: > 300 } ? folder[..300] : folder,
            Reason = reason.Length <= MaxReason ? reason : reason[..(MaxReason - 1)] + "…",
            Size = size,
            // In UTC, as every time is stored: an IMAP server dates its messages in its own zone, which PostgreSQL
            // refuses (and the watch's checkpoint, saved with the note, with it) and SQLite would order by local clock.
            ReceivedAt = receivedAt?.ToUniversalTime(),
            SeenAt = now,
        };
        db.UnreadableMessages.Add(row);
        if (!save) return;
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Another instance noted it first (the unique index on the mailbox and provider id): nothing is lost.
        }
        finally
        {
            db.Entry(row).State = EntityState.Detached;
        }
    }

    /// <summary>
    /// Whether a failure while handling one message is that message's own (a message the code cannot handle: it is
    /// noted and passed) rather than the database's, the network's or the provider's, which stop the round so that the
    /// checkpoint stays before the message and it is tried again.
    /// </summary>
    public static bool IsPoison(Exception ex, CancellationToken ct) =>
        !(ex is OperationCanceledException && ct.IsCancellationRequested)
        && ex is not DbException && ex is not DbUpdateException && ex is not TimeoutException
        && ex is not InvalidOperationException { InnerException: DbException }
        && ex is not HttpRequestException && ex is not IOException
        && ex is not Microsoft.Kiota.Abstractions.ApiException && ex is not Google.GoogleApiException;

    /// <summary>
    /// Drops what a failed handling left unsaved in the context (an answer half recorded, a copy half updated), keeping
    /// the watch's checkpoints and notes: the next save must not store part of a message that was not handled.
    /// </summary>
    public static void ForgetUnsaved(AppDbContext db)
    {
        foreach (var entry in db.ChangeTracker.Entries()
                     .Where(e => e.Entity is not MailboxCursor and not UnreadableMessage && e.State != EntityState.Unchanged).ToList())
        {
            entry.State = EntityState.Detached;
        }
    }

    /// <summary>The reason shown for a message the parser refused.</summary>
    public static string NotMime(Exception ex) => $"not a readable MIME message: {ex.Message}";

    /// <summary>The reason shown for a message whose handling failed.</summary>
    public static string NotHandled(Exception ex) => $"could not be handled ({ex.GetType().Name}): {ex.Message}";
}
