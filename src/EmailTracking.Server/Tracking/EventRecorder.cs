using System.Threading.Channels;
using EmailTracking.Data;
using EmailTracking.Server.Feed;
using Microsoft.EntityFrameworkCore;
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

    // The recorder is the only writer of events in this process: it keeps one connection open rather than taking a
    // scope, a context and a pooled connection for every batch.
    AsyncServiceScope? writerScope;
    AppDbContext? writer;

    async Task<AppDbContext> WriterAsync()
    {
        if (writer is not null) return writer;
        writerScope = scopes.CreateAsyncScope();
        var db = writerScope.Value.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.OpenConnectionAsync();
        insert ??= new EventInsert(db.Model);
        return writer = db;
    }

    async Task ResetWriterAsync()
    {
        insert?.Reset();
        if (writerScope is { } scope) await scope.DisposeAsync();
        writerScope = null;
        writer = null;
    }

    public override async Task StopAsync(CancellationToken cancellationToken)
    {
        await base.StopAsync(cancellationToken);
        await ResetWriterAsync();
    }

    async Task CommitAsync(List<Pending> batch)
    {
        try
        {
            var db = await WriterAsync();
            var connection = db.Database.GetDbConnection();
            var postgres = db.Database.IsNpgsql();
            await using var tx = await connection.BeginTransactionAsync();
            if (postgres)
            {
                // Several instances insert at once; ids come from one sequence but could commit out of order, and a
                // feed reader resuming after id N would then skip a smaller id committed later. Holding one lock from
                // id allocation to commit makes commit order equal id order. SQLite has a single writer anyway.
                await using var lockCmd = connection.CreateCommand();
                lockCmd.Transaction = tx;
                lockCmd.CommandText = $"SELECT pg_advisory_xact_lock({EventOrderLock})";
                await lockCmd.ExecuteNonQueryAsync();
            }
            await insert!.ExecuteAsync(connection, tx, batch.ConvertAll(p => p.Event), CancellationToken.None);
            if (postgres)
            {
                await using var notify = connection.CreateCommand();
                notify.Transaction = tx;
                notify.CommandText = "NOTIFY " + FeedNotifier.Channel;
                await notify.ExecuteNonQueryAsync();
            }
            await tx.CommitAsync();
        }
        catch (Exception ex)
        {
            log.LogError(ex, "Could not record {Count} tracking events", batch.Count);
            foreach (var p in batch) p.Done.TrySetException(ex);
            // Start from a fresh connection next time: this one may be broken.
            try { await ResetWriterAsync(); } catch (Exception) { }
            return;
        }
        foreach (var p in batch) p.Done.TrySetResult();
        feed.Notify();
    }
}
