using EmailTracking.Server.Data;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace EmailTracking.Server.Feed;

/// <summary>
/// Wakes live-feed streams when new events are committed. Within one process the recorder calls <see cref="Notify"/>;
/// across instances on PostgreSQL each commit sends NOTIFY and every instance LISTENs. Streams also wake on a timer,
/// so a lost notification delays an event, never loses it: the database, not this signal, is the feed.
/// </summary>
public sealed class FeedNotifier
{
    public const string Channel = "et_events";
    TaskCompletionSource signal = NewSignal();

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    public void Notify() => Interlocked.Exchange(ref signal, NewSignal()).TrySetResult();

    /// <summary>
    /// A task that completes at the next notification. Take it before reading the database, then wait on it, so
    /// a commit between the read and the wait is not slept through.
    /// </summary>
    public Task Next => Volatile.Read(ref signal).Task;
}

/// <summary>LISTENs on PostgreSQL so that events committed by other instances reach this instance's streams.</summary>
/// <remarks>It also relays mailbox wake-ups (<see cref="Mailboxes.MailboxSignals"/>) between instances.</remarks>
public sealed class PostgresFeedListener(DatabaseInfo database, IConfiguration configuration, FeedNotifier notifier,
    Mailboxes.MailboxSignals mailboxes, Tracking.TrackingTargets targets, ILogger<PostgresFeedListener> log)
    : BackgroundService
{
    async Task ForgetAsync(Guid message, CancellationToken ct)
    {
        try
        {
            await targets.ForgetMessageLocalAsync(message, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning(ex, "Could not forget the cached targets of message {Message}", message);
        }
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (database.Provider != EmailTracking.Data.DatabaseProvider.Postgres) return;
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var conn = new NpgsqlConnection(configuration.GetConnectionString("Default"));
                await conn.OpenAsync(stoppingToken);
                conn.Notification += (_, e) =>
                {
                    if (e.Channel == Mailboxes.MailboxSignals.Channel)
                    {
                        if (Guid.TryParseExact(e.Payload, "N", out var mailbox)) mailboxes.PokeLocal(mailbox);
                    }
                    else if (e.Channel == Tracking.TrackingTargets.Channel)
                    {
                        if (Guid.TryParseExact(e.Payload, "N", out var message)) _ = ForgetAsync(message, stoppingToken);
                    }
                    else notifier.Notify();
                };
                await using (var cmd = new NpgsqlCommand($"LISTEN {FeedNotifier.Channel}; LISTEN {Mailboxes.MailboxSignals.Channel}; LISTEN {Tracking.TrackingTargets.Channel}", conn))
                {
                    await cmd.ExecuteNonQueryAsync(stoppingToken);
                }
                // Something may have been committed while we were not listening.
                notifier.Notify();
                while (!stoppingToken.IsCancellationRequested) await conn.WaitAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                log.LogWarning(ex, "Live-feed LISTEN connection lost; retrying");
                await Task.Delay(TimeSpan.FromSeconds(2), stoppingToken).ContinueWith(_ => { }, TaskScheduler.Default);
            }
        }
    }
}
