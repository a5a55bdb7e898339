using System.Threading.Channels;
using EmailTracking.Data;
using EmailTracking.Server.Feed;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Tracking;

/// <summary>
/// Group commit for tracking events. Each hit waits until the transaction holding it is committed, so an answered hit
/// is a durable one; while one batch commits, the next fills, so the cost of a commit is shared by all hits that
/// arrived meanwhile. Nothing is buffered beyond what callers are waiting on: a crash loses only unanswered hits.
/// </summary>
public sealed class EventRecorder(
    IServiceScopeFactory scopes,
    FeedNotifier feed,
    IOptions<TrackingOptions> options,
    ILogger<EventRecorder> log) : BackgroundService
{
    /// <summary>The advisory lock every writer of event rows takes on PostgreSQL (see <see cref="CommitAsync"/>).</summary>
    public const long EventOrderLock = 7_262_001;

    sealed record Pending(TrackingEvent Event, TaskCompletionSource Done);

    EventInsert? insert;

    readonly Channel<Pending> queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(50_000)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    /// <summary>Completes once the event is committed; throws when the commit failed.</summary>
    public async Task RecordAsync(TrackingEvent e, CancellationToken ct = default)
    {
        var pending = new Pending(e, new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously));
        await queue.Writer.WriteAsync(pending, ct);
        await pending.Done.Task.WaitAsync(ct);
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var max = Math.Max(1, options.Value.RecorderMaxBatch);
        var batch = new List<Pending>(max);
        var reader = queue.Reader;
        try
        {
            while (await reader.WaitToReadAsync(stoppingToken))
            {
                while (batch.Count < max && reader.TryRead(out var p)) batch.Add(p);
                await CommitAsync(batch);
                batch.Clear();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        // Shutting down: commit what callers still wait on.
        while (reader.TryRead(out var p)) batch.Add(p);
        if (batch.Count > 0) await CommitAsync(batch);
    }

    async Task CommitAsync(List<Pending> batch)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var postgres = db.Database.IsNpgsql();
            await using var tx = await db.Database.BeginTransactionAsync();
            if (postgres)
            {
                // Several instances insert at once; ids come from one sequence but could commit out of order, and a
                // feed reader resuming after id N would then skip a smaller id committed later. Holding one lock from
                // id allocation to commit makes commit order equal id order. SQLite has a single writer anyway.
                await db.Database.ExecuteSqlAsync($"SELECT pg_advisory_xact_lock({EventOrderLock})");
            }
            insert ??= new EventInsert(db.Model);
            await insert.ExecuteAsync(db.Database.GetDbConnection(), tx.GetDbTransaction(), batch.ConvertAll(p => p.Event), CancellationToken.None);
            if (postgres) await db.Database.ExecuteSqlRawAsync("NOTIFY " + FeedNotifier.Channel);
            await tx.CommitAsync();
        }
        catch (Exception ex)
        {
            log.LogError(ex, "Could not record {Count} tracking events", batch.Count);
            foreach (var p in batch) p.Done.TrySetException(ex);
            return;
        }
        foreach (var p in batch) p.Done.TrySetResult();
        feed.Notify();
    }
}
