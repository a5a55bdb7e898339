using System.Collections.Concurrent;
using System.Text;
using EmailTracking.Server.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Configuration;
using Npgsql;

namespace EmailTracking.Server.Feed;

/// <summary>
/// Wakes live-feed streams when new events are committed: only the streams that can show them, those of the user the
/// events belong to and of their team (admins following the team). Within one process the writers of events call
/// <see cref="Notify(IEnumerable{ValueTuple{Guid, Guid}})"/> after their commit; across instances on PostgreSQL each
/// commit also sends NOTIFY naming the same teams and users (<see cref="Payloads"/>), and every instance LISTENs.
/// Streams also wake on a timer, so a lost notification delays an event, never loses it: the database, not this
/// signal, is the feed.
/// </summary>
/// <remarks>
/// Waking every stream at every commit made each open stream query the database for every batch of hits anywhere:
/// fine for tens of streams, not for a team of hundreds with the web app open while the pixel takes hundreds of
/// commits a second. A signal is made when a stream first waits for its user or team and dropped when it fires, so
/// the signals kept are at most one per user and team with a stream waiting (or that had one since their last event).
/// </remarks>
public sealed class FeedNotifier
{
    public const string Channel = "et_events";

    /// <summary>PostgreSQL takes NOTIFY payloads of up to 8000 bytes: a payload names at most about 120 owners.</summary>
    const int MaxPayload = 7900;

    readonly ConcurrentDictionary<Guid, TaskCompletionSource> users = new();
    readonly ConcurrentDictionary<Guid, TaskCompletionSource> teams = new();

    static TaskCompletionSource NewSignal(Guid _) => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>
    /// A task that completes at the next commit of an event of this user. Take it before reading the database, then
    /// wait on it, so a commit between the read and the wait is not slept through.
    /// </summary>
    public Task NextForUser(Guid userId) => users.GetOrAdd(userId, NewSignal).Task;

    /// <summary>The same for any event of the team (what an admin following the team's feed waits on).</summary>
    public Task NextForTeam(Guid teamId) => teams.GetOrAdd(teamId, NewSignal).Task;

    /// <summary>Wakes the streams of these (team, user) pairs: the owners of events just committed.</summary>
    public void Notify(IEnumerable<(Guid TeamId, Guid UserId)> owners)
    {
        foreach (var (team, user) in owners)
        {
            Wake(users, user);
            Wake(teams, team);
        }
    }

    /// <summary>Wakes every stream: for a notification that does not say whose events were committed.</summary>
    public void NotifyAll()
    {
        foreach (var key in users.Keys) Wake(users, key);
        foreach (var key in teams.Keys) Wake(teams, key);
    }

    static void Wake(ConcurrentDictionary<Guid, TaskCompletionSource> signals, Guid key)
    {
        if (signals.TryRemove(key, out var signal)) signal.TrySetResult();
    }

    /// <summary>
    /// The NOTIFY payloads naming these owners, each once (<c>team:user</c> pairs of 32 hex digits, comma-separated):
    /// as many as it takes to stay within PostgreSQL's limit, one for a batch of a few senders' hits.
    /// </summary>
    public static List<string> Payloads(IEnumerable<(Guid TeamId, Guid UserId)> owners)
    {
        var payloads = new List<string>();
        var text = new StringBuilder();
        foreach (var (team, user) in owners.Distinct())
        {
            if (text.Length > MaxPayload)
            {
                payloads.Add(text.ToString());
                text.Clear();
            }
            if (text.Length > 0) text.Append(',');
            text.Append(team.ToString("N")).Append(':').Append(user.ToString("N"));
        }
        if (text.Length > 0) payloads.Add(text.ToString());
        return payloads;
    }

    /// <summary>
    /// Inside a transaction that writes events or their verdict changes through EF Core: on PostgreSQL, the NOTIFYs that
    /// wake these owners' streams on every instance once it commits (the recorder, on its own connection, sends the same).
    /// </summary>
    public static async Task NotifyOnCommitAsync(DatabaseFacade database, IEnumerable<(Guid TeamId, Guid UserId)> owners, CancellationToken ct)
    {
        if (!database.IsNpgsql()) return;
        foreach (var payload in Payloads(owners))
        {
            await database.ExecuteSqlRawAsync("SELECT pg_notify({0}, {1})", [Channel, payload], ct);
        }
    }

    /// <summary>Reads one of <see cref="Payloads"/>; null when it names nobody or is not one (then every stream is woken).</summary>
    public static List<(Guid TeamId, Guid UserId)>? ParsePayload(string? payload)
    {
        if (string.IsNullOrEmpty(payload)) return null;
        var owners = new List<(Guid, Guid)>();
        foreach (var pair in payload.Split(','))
        {
            var colon = pair.IndexOf(':');
            if (colon < 0 || !Guid.TryParseExact(pair.AsSpan(0, colon), "N", out var team)
                || !Guid.TryParseExact(pair.AsSpan(colon + 1), "N", out var user))
            {
                return null;
            }
            owners.Add((team, user));
        }
        return owners;
    }
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
                    else if (FeedNotifier.ParsePayload(e.Payload) is { } owners) notifier.Notify(owners);
                    else notifier.NotifyAll();
                };
                await using (var cmd = new NpgsqlCommand($"LISTEN {FeedNotifier.Channel}; LISTEN {Mailboxes.MailboxSignals.Channel}; LISTEN {Tracking.TrackingTargets.Channel}", conn))
                {
                    await cmd.ExecuteNonQueryAsync(stoppingToken);
                }
                // Something may have been committed while we were not listening.
                notifier.NotifyAll();
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
