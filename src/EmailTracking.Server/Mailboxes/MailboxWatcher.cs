using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Runs one watch per connected mailbox. Several server instances share the mailboxes through leases in the
/// database: an instance watches a mailbox only while it holds the lease, renews it while it works, and another
/// instance takes over once a lease runs out (the holder crashed).
/// </summary>
public sealed class MailboxWatcher(IServiceScopeFactory scopes, IOptions<MailboxOptions> options, TimeProvider clock, ILogger<MailboxWatcher> log)
    : BackgroundService
{
    readonly string instance = Data.ServerInstance.Name;
    readonly Dictionary<Guid, (Task Task, CancellationTokenSource Stop)> running = [];
    readonly System.Collections.Concurrent.ConcurrentQueue<Guid> restarts = new();
    TaskCompletionSource wake = NewSignal();

    static TaskCompletionSource NewSignal() => new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Look at the list of mailboxes now (one was connected, reconnected or removed).</summary>
    public void Wake() => Interlocked.Exchange(ref wake, NewSignal()).TrySetResult();

    /// <summary>Start this mailbox's watch afresh (it was reconnected: a watch waiting out a failure should not wait on).</summary>
    public void Restart(Guid id)
    {
        restarts.Enqueue(id);
        Wake();
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var o = options.Value;
        if (!o.Watch) return;
        try
        {
            while (!stoppingToken.IsCancellationRequested)
            {
                var signal = Volatile.Read(ref wake).Task;
                try
                {
                    await ReconcileAsync(stoppingToken);
                }
                catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
                {
                    log.LogWarning(ex, "Could not read the list of mailboxes to watch");
                }
                await Task.WhenAny(signal, Task.Delay(o.Rescan, clock, stoppingToken));
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        finally
        {
            foreach (var (_, (_, stop)) in running) stop.Cancel();
            try
            {
                await Task.WhenAll(running.Values.Select(r => r.Task)).WaitAsync(TimeSpan.FromSeconds(10));
            }
            catch (Exception)
            {
                // Each watch logs its own failures; stopping goes on.
            }
            await ReleaseLeasesAsync();
        }
    }

    async Task ReconcileAsync(CancellationToken ct)
    {
        while (restarts.TryDequeue(out var restart))
        {
            if (!running.TryGetValue(restart, out var r)) continue;
            await r.Stop.CancelAsync();
            try
            {
                await r.Task.WaitAsync(TimeSpan.FromSeconds(10), ct);
            }
            catch (TimeoutException)
            {
                log.LogWarning("The watch of mailbox {Id} did not stop in time", restart);
            }
        }
        foreach (var id in running.Where(r => r.Value.Task.IsCompleted).Select(r => r.Key).ToList())
        {
            running[id].Stop.Dispose();
            running.Remove(id);
        }
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.GetUtcNow();
        // A deactivated user's mailboxes are not watched (their running watches stop here); they are again once the user
        // is reactivated, from where their cursors stopped. Compared in memory: SQLite cannot compare the stored times.
        var rows = (await db.Mailboxes.Where(m => m.Status != MailboxStatus.Disabled).Select(m => new { m.Id, m.Kind, m.User!.LockoutEnd }).ToListAsync(ct))
            .Where(r => !Accounts.Auth.IsShut(r.LockoutEnd, now)).ToList();
        // Kinds without a watch in this build are left alone.
        var wanted = rows.Where(r => scope.ServiceProvider.GetKeyedService<IMailboxWatch>(r.Kind) is not null).Select(r => r.Id).ToList();
        var kinds = rows.ToDictionary(r => r.Id, r => r.Kind);
        foreach (var id in running.Keys.Except(wanted).ToList()) running[id].Stop.Cancel();
        foreach (var id in wanted.Where(id => !running.ContainsKey(id)))
        {
            if (!await TryLeaseAsync(db, id, ct)) continue;
            var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
            var kind = kinds[id];
            running[id] = (Task.Run(() => WatchAsync(id, kind, stop), CancellationToken.None), stop);
        }
    }

    async Task<bool> TryLeaseAsync(AppDbContext db, Guid id, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var until = now + options.Value.Lease;
        return await db.Mailboxes
            .Where(m => m.Id == id && (m.LeaseOwner == null || m.LeaseOwner == instance || m.LeaseUntil == null || m.LeaseUntil < now))
            .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseOwner, instance).SetProperty(m => m.LeaseUntil, until), ct) == 1;
    }

    async Task ReleaseLeasesAsync()
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            await db.Mailboxes.Where(m => m.LeaseOwner == instance)
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.LeaseOwner, (string?)null).SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null));
        }
        catch (Exception ex)
        {
            log.LogDebug(ex, "Could not release mailbox leases; they run out by themselves");
        }
    }

    async Task WatchAsync(Guid id, MailboxKind kind, CancellationTokenSource stop)
    {
        var ct = stop.Token;
        // The lease is renewed on its own schedule, independent of how long an IDLE or a sync takes; losing it
        // (another instance took over after a stall) stops this watch.
        var renew = Task.Run(async () =>
        {
            while (!ct.IsCancellationRequested)
            {
                await Task.Delay(options.Value.Lease / 3, clock, ct);
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                bool held;
                try
                {
                    held = await TryLeaseAsync(db, id, ct);
                }
                catch (Exception ex) when (!ct.IsCancellationRequested)
                {
                    log.LogWarning(ex, "Could not renew the lease on mailbox {Id}", id);
                    continue;
                }
                if (!held)
                {
                    log.LogInformation("Mailbox {Id} is now watched by another instance", id);
                    await stop.CancelAsync();
                }
            }
        }, CancellationToken.None);
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var watch = scope.ServiceProvider.GetRequiredKeyedService<IMailboxWatch>(kind);
            await watch.RunAsync(id, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
        }
        catch (Exception ex)
        {
            log.LogError(ex, "Watching mailbox {Id} stopped", id);
        }
        finally
        {
            await stop.CancelAsync();
            try { await renew; } catch (OperationCanceledException) { }
        }
    }
}
