using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Mailboxes;

/// <summary>What every kind of watch does with a mailbox's state: the back-off between failures and the status row.</summary>
public static class MailboxHealth
{
    /// <summary>5 s after the first failure, doubling, at most <paramref name="max"/>.</summary>
    public static TimeSpan Backoff(int failures, TimeSpan max)
    {
        var seconds = 5 * Math.Pow(2, Math.Min(failures - 1, 20));
        return seconds >= max.TotalSeconds ? max : TimeSpan.FromSeconds(seconds);
    }

    /// <summary>
    /// Writes the status of the mailboxes in <paramref name="mailbox"/> (one row, narrowed by the caller: never a
    /// disabled one, and for a failure only while the credentials that failed are still the stored ones).
    /// <paramref name="synced"/>: a round went through, so failures are reset and the time is kept.
    /// </summary>
    public static Task SetStatusAsync(IQueryable<MailboxConnection> mailbox, MailboxStatus status, string? message, DateTimeOffset now,
        bool synced, int failures, CancellationToken ct)
    {
        var text = message is { Length: > 1000 } ? message[..1000] : message;
        return synced
            ? mailbox.ExecuteUpdateAsync(s => s.SetProperty(m => m.Status, status).SetProperty(m => m.StatusMessage, text)
                .SetProperty(m => m.Failures, 0).SetProperty(m => m.LastSyncAt, now), ct)
            : mailbox.ExecuteUpdateAsync(s => s.SetProperty(m => m.Status, status).SetProperty(m => m.StatusMessage, text)
                .SetProperty(m => m.Failures, failures), ct);
    }
}
