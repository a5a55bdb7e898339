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
    /// The wait after a failure: the back-off, or what the server asked for (a Retry-After) when that is longer, at
    /// most <paramref name="max"/>.
    /// </summary>
    public static TimeSpan Wait(int failures, TimeSpan max, TimeSpan? retryAfter)
    {
        var backoff = Backoff(failures, max);
        if (retryAfter is not { } asked) return backoff;
        var capped = asked < max ? asked : max;
        return capped > backoff ? capped : backoff;
    }

    /// <summary>
    /// What every watch does after a failed round: a refusal that only the user can fix (<see cref="MailboxException.NeedsReconnect"/>)
    /// marks the mailbox and is tried again after the longest wait (a refusal may be lifted; a reconnect restarts the
    /// watch at once); anything else is noted on the mailbox and retried with a growing wait.
    /// </summary>
    /// <param name="problem">The failure in the user's words (the kind's own translation of <paramref name="cause"/>).</param>
    /// <param name="record">Writes the status and its message on the mailbox.</param>
    /// <param name="retryAfter">How long the server asked to be left alone (a throttling answer's Retry-After).</param>
    /// <param name="reconnected">Whether the mailbox was connected again (or removed) since the login that failed;
    /// asked every <paramref name="checkEvery"/> while a refusal is waited out.</param>
    public static async Task AfterFailureAsync(Exception problem, Exception cause, int failures, MailboxStatus current, string address,
        Func<MailboxStatus, string, Task> record, TimeSpan maxBackoff, TimeProvider clock, ILogger log, CancellationToken ct,
        TimeSpan? retryAfter = null, Func<Task<bool>>? reconnected = null, TimeSpan? checkEvery = null)
    {
        if (problem is MailboxException { NeedsReconnect: true })
        {
            log.LogWarning("Mailbox {Address} needs to be reconnected: {Problem}", address, problem.Message);
            await record(MailboxStatus.NeedsReconnect, problem.Message);
            await UntilReconnectedAsync(maxBackoff, reconnected, checkEvery, clock, log, ct);
            return;
        }
        if (problem is not MailboxException) log.LogError(cause, "Watching {Address} failed", address);
        else log.LogInformation("Watching {Address}: {Problem}", address, problem.Message);
        await record(current, "Last attempt failed: " + problem.Message);
        await Task.Delay(Wait(failures, maxBackoff, retryAfter), clock, ct);
    }

    /// <summary>
    /// Waits <paramref name="wait"/>, or until <paramref name="reconnected"/> says so. A reconnect restarts at once only
    /// the watches of the instance that took it (MailboxWatcher.Restart); a watch on another instance would otherwise go
    /// on waiting out the longest back-off, while the mailbox shows active, nothing of it is read, and sequences send
    /// through it again without having seen the replies that came meanwhile.
    /// </summary>
    static async Task UntilReconnectedAsync(TimeSpan wait, Func<Task<bool>>? reconnected, TimeSpan? every, TimeProvider clock, ILogger log,
        CancellationToken ct)
    {
        if (reconnected is null || every is not { } step || step <= TimeSpan.Zero || step >= wait)
        {
            await Task.Delay(wait, clock, ct);
            return;
        }
        var until = clock.GetUtcNow() + wait;
        while (until - clock.GetUtcNow() is var left && left > TimeSpan.Zero)
        {
            await Task.Delay(left < step ? left : step, clock, ct);
            try
            {
                if (await reconnected()) return;
            }
            catch (Exception ex) when (!ct.IsCancellationRequested)
            {
                // The database may be down for now: the wait goes on, and the next look may tell.
                log.LogDebug(ex, "Could not look whether a mailbox was connected again");
            }
        }
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
