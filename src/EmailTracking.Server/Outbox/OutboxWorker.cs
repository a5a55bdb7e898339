using System.Diagnostics;
using EmailTracking.Data;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Outbox;

/// <summary>
/// Delivers due deliveries, each attempt logged: delivered, retried later (exponential back-off with jitter, or when
/// the target says), dead after <see cref="OutboxOptions.MaxAttempts"/>, waiting while the target needs reconnecting
/// or, for up to <see cref="OutboxOptions.LimitPatience"/>, while it is over a limit.
/// Deliveries are leased (PostgreSQL: FOR UPDATE SKIP LOCKED), so several instances share the work; a crash mid-way
/// leaves the delivery pending, and it goes again with the same idempotency key — at least once.
/// </summary>
public sealed class OutboxWorker(AppDbContext db, IServiceProvider services, TimeProvider clock, IOptions<OutboxOptions> options,
    Data.DatabaseInfo database, ILogger<OutboxWorker> log)
{
    /// <summary>One target's claimed deliveries, in the order they are to go.</summary>
    public sealed record Lane(string Kind, Guid TargetId, List<long> Ids);

    /// <summary>Claims what is due, leaving out targets in <paramref name="busy"/> (their lanes still run), one lane per target.</summary>
    public async Task<List<Lane>> ClaimLanesAsync(string owner, IReadOnlyCollection<Guid> busy, CancellationToken ct)
    {
        var ids = await ClaimAsync(owner, busy, ct);
        if (ids.Count == 0) return [];
        var targets = await db.OutboxDeliveries.Where(d => ids.Contains(d.Id)).Select(d => new { d.Id, d.TargetKind, d.TargetId }).ToListAsync(ct);
        var order = ids.Select((id, i) => (id, i)).ToDictionary(x => x.id, x => x.i);
        return [.. targets.GroupBy(t => (t.TargetKind, t.TargetId))
            .Select(g => new Lane(g.Key.TargetKind, g.Key.TargetId, [.. g.OrderBy(t => order[t.Id]).Select(t => t.Id)]))
            .OrderBy(l => order[l.Ids[0]])];
    }

    /// <summary>A target's deliveries, one after another, on this worker's context.</summary>
    public async Task DeliverLaneAsync(Lane lane, string owner, CancellationToken ct)
    {
        foreach (var id in lane.Ids)
        {
            try
            {
                await DeliverOneAsync(id, owner, ct);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                log.LogError(ex, "Delivery {Delivery} failed unexpectedly; its lease runs out and it goes again", id);
                db.ChangeTracker.Clear();
            }
        }
    }

    async Task<List<long>> ClaimAsync(string owner, IReadOnlyCollection<Guid> busy, CancellationToken ct)
    {
        var o = options.Value;
        var now = clock.GetUtcNow();
        var until = now + o.Lease;
        var skip = busy.ToArray();
        if (database.Provider == DatabaseProvider.Postgres)
        {
            return await db.Database.SqlQuery<long>($"""
                UPDATE "OutboxDeliveries" SET "LeaseOwner" = {owner}, "LeaseUntil" = {until}
                WHERE "Id" IN (
                    SELECT "Id" FROM "OutboxDeliveries"
                    WHERE "State" = 0 AND "NextAttemptAt" <= {now} AND ("LeaseUntil" IS NULL OR "LeaseUntil" < {now})
                      AND NOT ("TargetId" = ANY({skip}))
                    ORDER BY "NextAttemptAt" LIMIT {o.Batch}
                    FOR UPDATE SKIP LOCKED)
                RETURNING "Id" AS "Value"
                """).ToListAsync(ct);
        }
        var candidates = await db.OutboxDeliveries.Where(d => d.State == DeliveryState.Pending && d.NextAttemptAt <= now && (d.LeaseUntil == null || d.LeaseUntil < now)
                && !skip.Contains(d.TargetId))
            .OrderBy(d => d.NextAttemptAt).Select(d => d.Id).Take(o.Batch).ToListAsync(ct);
        var claimed = new List<long>();
        foreach (var id in candidates)
        {
            if (await db.OutboxDeliveries.Where(d => d.Id == id && (d.LeaseUntil == null || d.LeaseUntil < now))
                    .ExecuteUpdateAsync(u => u.SetProperty(d => d.LeaseOwner, owner).SetProperty(d => d.LeaseUntil, until), ct) == 1) claimed.Add(id);
        }
        return claimed;
    }

    async Task DeliverOneAsync(long id, string owner, CancellationToken ct)
    {
        var o = options.Value;
        // The lease is renewed as each attempt starts: a pass through a batch of slow receivers can outlast the lease
        // taken for the whole batch, and another instance may claim a lapsed delivery. Either this renewal comes first
        // (the other instance then finds it leased) or the other claim does (the owner changed: passed over here), so
        // no delivery is attempted by two instances at once.
        var renewed = await db.OutboxDeliveries.Where(x => x.Id == id && x.LeaseOwner == owner && x.State == DeliveryState.Pending)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.LeaseUntil, clock.GetUtcNow() + o.Lease), ct);
        if (renewed == 0) return;
        // The lease was taken by a bulk update: an instance this context tracked before would hide it (and its release).
        db.ChangeTracker.Clear();
        var d = await db.OutboxDeliveries.FirstOrDefaultAsync(x => x.Id == id && x.LeaseOwner == owner && x.State == DeliveryState.Pending, ct);
        if (d is null) return;
        var payload = OutboxDispatcher.Read(d.Payload);
        DeliveryResult result;
        var watch = Stopwatch.StartNew();
        if (payload is null)
        {
            result = new DeliveryResult(DeliveryOutcome.Dead, Detail: "The stored payload cannot be read.");
        }
        else if (services.GetKeyedService<IDeliveryTarget>(d.TargetKind) is not { } target)
        {
            result = new DeliveryResult(DeliveryOutcome.Retry, Detail: $"No '{d.TargetKind}' target is available on this server.");
        }
        else
        {
            // A delivery may take longer than the lease (a Salesforce delivery is several calls, each with its own
            // timeout): the lease is renewed while the target works, and the attempt is called off if another instance
            // took it meanwhile.
            using var attempt = CancellationTokenSource.CreateLinkedTokenSource(ct);
            using var done = new CancellationTokenSource();
            var keeping = KeepLeaseAsync(d.Id, owner, attempt, done.Token);
            try
            {
                result = await target.DeliverAsync(d.TargetId, new OutboxMessage(d.Id, d.IdempotencyKey, d.Attempts + 1, payload), attempt.Token);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                log.LogWarning(ex, "Delivery {Delivery} to {Kind} threw", d.Id, d.TargetKind);
                result = new DeliveryResult(DeliveryOutcome.Retry, Detail: ex.Message);
            }
            finally
            {
                await done.CancelAsync();
                await keeping;
            }
        }
        var now = clock.GetUtcNow();
        if (result.Outcome == DeliveryOutcome.NeedsReconnect && now - d.CreatedAt >= o.ReconnectPatience)
        {
            result = result with
            {
                Outcome = DeliveryOutcome.Dead,
                Detail = $"Waited {Days(o.ReconnectPatience)} for the target to be reconnected (Outbox:ReconnectPatience); replay it once it works. " +
                         $"The target said: {result.Detail}",
            };
        }
        if (!await StillWaitingAsync(d.Id, result, ct))
        {
            db.DeliveryAttempts.Add(new DeliveryAttempt
            {
                DeliveryId = d.Id, At = now, StatusCode = result.StatusCode, Outcome = result.Outcome.ToString(),
                Detail = Cut(result.Detail), DurationMs = (int)Math.Min(int.MaxValue, watch.ElapsedMilliseconds),
            });
        }
        switch (result.Outcome)
        {
            case DeliveryOutcome.Delivered:
                d.Attempts++;
                d.State = DeliveryState.Delivered;
                d.DeliveredAt = now;
                d.ExternalId = result.ExternalId is { Length: > 100 } x ? x[..100] : result.ExternalId;
                d.LastError = null;
                break;
            case DeliveryOutcome.Skipped:
                d.State = DeliveryState.Skipped;
                d.LastError = Cut(result.Detail);
                break;
            case DeliveryOutcome.Dead:
                d.Attempts++;
                d.State = DeliveryState.Dead;
                d.LastError = Cut(result.Detail);
                break;
            case DeliveryOutcome.NeedsReconnect:
                // Not the delivery's fault: it waits for the connection without using up its attempts.
                d.NextAttemptAt = now + o.ReconnectRetry;
                d.LastError = Cut(result.Detail);
                break;
            case DeliveryOutcome.Limited when now - d.CreatedAt < o.LimitPatience:
                // Nor is a limit: a daily API limit lasts hours, and counted as failures it would use up every attempt.
                d.NextAttemptAt = now + LimitBackoff(now - d.CreatedAt, result.RetryAfter, o);
                d.LastError = Cut(result.Detail);
                break;
            default:
                d.Attempts++;
                d.LastError = Cut(result.Detail);
                if (d.Attempts >= o.MaxAttempts)
                {
                    d.State = DeliveryState.Dead;
                }
                else
                {
                    d.NextAttemptAt = now + Backoff(d.Attempts, result.RetryAfter, o);
                }
                break;
        }
        d.LeaseOwner = null;
        d.LeaseUntil = null;
        // Recorded only while the lease is still this instance's: one that stalled past its lease, and whose delivery
        // another instance claimed meanwhile, must not write its outcome over that instance's (a dead letter over a
        // delivery, or a second attempt). The update holds the row until the commit, so no claim comes in between.
        await using var tx = await db.Database.BeginTransactionAsync(CancellationToken.None);
        var ours = await db.OutboxDeliveries.Where(x => x.Id == d.Id && x.LeaseOwner == owner && x.State == DeliveryState.Pending)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.LeaseUntil, now + o.Lease), CancellationToken.None);
        if (ours == 0)
        {
            log.LogWarning("Delivery {Delivery} was claimed by another instance while it was attempted here; that instance records it, not this one ({Outcome})",
                d.Id, result.Outcome);
            db.ChangeTracker.Clear();
            return;
        }
        await db.SaveChangesAsync(CancellationToken.None);
        await tx.CommitAsync(CancellationToken.None);
    }

    /// <summary>
    /// Renews a delivery's lease every third of it until <paramref name="stop"/>, on a context of its own (the target
    /// uses this worker's meanwhile). When the lease is no longer this instance's (it stalled, the lease lapsed and
    /// another instance claimed the delivery), or cannot be renewed before it would lapse (the database does not
    /// answer), the attempt is called off: another instance may be delivering it.
    /// </summary>
    async Task KeepLeaseAsync(long id, string owner, CancellationTokenSource attempt, CancellationToken stop)
    {
        var o = options.Value;
        var renewedAt = clock.GetUtcNow();
        // The same options (provider, connection string) as the worker's context: the lease is kept on another connection.
        await using var leases = new AppDbContext((DbContextOptions<AppDbContext>)db.GetService<IDbContextOptions>());
        while (!stop.IsCancellationRequested)
        {
            try
            {
                await Task.Delay(o.Lease / 3, clock, stop);
                var now = clock.GetUtcNow();
                var kept = await leases.OutboxDeliveries.Where(x => x.Id == id && x.LeaseOwner == owner && x.State == DeliveryState.Pending)
                    .ExecuteUpdateAsync(u => u.SetProperty(x => x.LeaseUntil, now + o.Lease), stop);
                if (kept == 0)
                {
                    log.LogWarning("Delivery {Delivery} was claimed by another instance while it was attempted here; the attempt is called off", id);
                    await attempt.CancelAsync();
                    return;
                }
                renewedAt = now;
            }
            catch (OperationCanceledException) when (stop.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                if (clock.GetUtcNow() - renewedAt < o.Lease * 2 / 3)
                {
                    log.LogWarning(ex, "The lease of delivery {Delivery} could not be renewed; trying again", id);
                    continue;
                }
                log.LogWarning(ex, "The lease of delivery {Delivery} could not be renewed before it lapses; the attempt is called off", id);
                await attempt.CancelAsync();
                return;
            }
        }
    }

    /// <summary>
    /// Whether this answer only says again that the delivery waits for its target's reconnect, as its last logged attempt
    /// did in the same words. Such a delivery is looked at every <see cref="OutboxOptions.ReconnectRetry"/> for as long
    /// as nobody reconnects (weeks, when the admin who connected has left): its log keeps the first of those looks, not a
    /// row for each (96 a day), which the delivery log would load and show. The delivery's next attempt says it still waits.
    /// </summary>
    async Task<bool> StillWaitingAsync(long deliveryId, DeliveryResult result, CancellationToken ct)
    {
        if (result.Outcome != DeliveryOutcome.NeedsReconnect) return false;
        var last = await db.DeliveryAttempts.Where(a => a.DeliveryId == deliveryId).OrderByDescending(a => a.Id)
            .Select(a => new { a.Outcome, a.Detail, a.StatusCode }).FirstOrDefaultAsync(ct);
        return last is not null && last.Outcome == nameof(DeliveryOutcome.NeedsReconnect) && last.Detail == Cut(result.Detail) && last.StatusCode == result.StatusCode;
    }

    static string Days(TimeSpan t) => t.TotalDays >= 1 && t.TotalDays == Math.Floor(t.TotalDays)
        ? $"{t.TotalDays:0} day{(t.TotalDays == 1 ? "" : "s")}"
        : t.ToString();

    /// <summary>The wait after the n-th failure: doubling from the first back-off, half to all of it (jitter), or what the target asked for; capped.</summary>
    public static TimeSpan Backoff(int failures, TimeSpan? retryAfter, OutboxOptions o)
    {
        if (retryAfter is { } asked && asked > TimeSpan.Zero) return asked < o.MaxBackoff ? asked : o.MaxBackoff;
        var full = o.FirstBackoff.TotalSeconds * Math.Pow(2, Math.Min(30, failures - 1));
        var capped = Math.Min(full, o.MaxBackoff.TotalSeconds);
        return TimeSpan.FromSeconds(capped * (0.5 + Random.Shared.NextDouble() * 0.5));
    }

    /// <summary>
    /// The wait after a limit answer that uses up no attempt: what the target asked for, else about as long as the
    /// delivery has waited so far (half to all of it), from the first back-off up to the ceiling. A short limit (a
    /// burst) costs seconds; a long one (a daily limit) is asked about less and less often, some twenty times a day.
    /// </summary>
    public static TimeSpan LimitBackoff(TimeSpan waited, TimeSpan? retryAfter, OutboxOptions o)
    {
        if (retryAfter is { } asked && asked > TimeSpan.Zero) return asked < o.MaxBackoff ? asked : o.MaxBackoff;
        var full = Math.Min(Math.Max(waited.TotalSeconds, o.FirstBackoff.TotalSeconds), o.MaxBackoff.TotalSeconds);
        return TimeSpan.FromSeconds(full * (0.5 + Random.Shared.NextDouble() * 0.5));
    }

    /// <summary>
    /// A delivery's error as stored: one line of plain text (<see cref="PlainText.OneLine"/>), at most 2,000 characters.
    /// It holds outsiders' words (a receiver's HTTP reason phrase, Salesforce's error text, an exception's message), which
    /// may carry ESC (a terminal's escape codes in <c>et outbox list</c>), tabs (false columns in its tab-separated lines)
    /// or line breaks.
    /// </summary>
    internal static string? Cut(string? s) => TextClip.PrefixOrNull(PlainText.OneLineOrNull(s), 2000);
}
