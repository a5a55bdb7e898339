using System.Diagnostics;
using System.Diagnostics.Metrics;
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
    /// <summary>The advisory lock every writer of event rows takes on PostgreSQL (see <see cref="Commit"/>).</summary>
    public const long EventOrderLock = 7_262_001;

    /// <summary>
    /// Inside a transaction that writes events or their verdict changes through EF Core: on PostgreSQL, takes
    /// <see cref="EventOrderLock"/> until it ends, so that ids commit in id order, which the live feed relies on.
    /// </summary>
    public static async Task LockEventOrderAsync(Microsoft.EntityFrameworkCore.Infrastructure.DatabaseFacade database, CancellationToken ct)
    {
        if (database.IsNpgsql()) await database.ExecuteSqlRawAsync($"SELECT pg_advisory_xact_lock({EventOrderLock})", ct);
    }

    /// <summary>
    /// The meter the recorder reports on: events per group commit, the time each commit takes and how long each hit
    /// waited for the commit that holds it (the figures that split the pixel's latency into the recorder's share and the
    /// rest), and on SQLite its checkpoints' time and what they left in the log
    /// (<c>dotnet-counters monitor -n EmailTracking.Server --counters EmailTracking.Recorder</c>, or any OpenTelemetry
    /// exporter).
    /// </summary>
    public const string MeterName = "EmailTracking.Recorder";

    static readonly Meter Meter = new(MeterName);
    static readonly Histogram<int> BatchSize = Meter.CreateHistogram<int>("et.recorder.batch.size", "{event}", "Events per group commit");
    static readonly Histogram<double> CommitTime = Meter.CreateHistogram<double>("et.recorder.commit.duration", "ms", "Time to insert and commit one batch of events");
    static readonly Histogram<double> HitWait = Meter.CreateHistogram<double>("et.recorder.hit.wait", "ms", "Time from a hit's event reaching the recorder to the end of the commit that holds it: the wait for the commit before it and its own");
    static readonly Histogram<double> CheckpointTime = Meter.CreateHistogram<double>("et.recorder.checkpoint.duration", "ms", "Time of one SQLite checkpoint on the writer's connection");
    static readonly Histogram<int> CheckpointLeft = Meter.CreateHistogram<int>("et.recorder.checkpoint.left", "{page}", "Pages of the SQLite write-ahead log a checkpoint could not copy back (0: the log starts over)");

    /// <summary>A hit's event and what its caller waits on, in one object (one allocation a hit, not two).</summary>
    sealed class Pending(TrackingEvent e) : TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously)
    {
        public TrackingEvent Event { get; } = e;

        /// <summary>When the hit reached the recorder (<see cref="Stopwatch.GetTimestamp"/>), for <see cref="HitWait"/>.</summary>
        public long Queued { get; } = Stopwatch.GetTimestamp();
    }

    EventInsert? insert;

    readonly Channel<Pending> queue = Channel.CreateBounded<Pending>(new BoundedChannelOptions(50_000)
    {
        SingleReader = true,
        FullMode = BoundedChannelFullMode.Wait,
    });

    /// <summary>
    /// Completes once the event is committed; throws when the commit failed. Not an async method: a hit's task is the
    /// one the commit completes, with no state machine of its own around it, unless the queue is full.
    /// </summary>
    public Task RecordAsync(TrackingEvent e, CancellationToken ct = default)
    {
        var pending = new Pending(e);
        if (!queue.Writer.TryWrite(pending)) return WaitForRoomAsync(pending, ct);
        return ct.CanBeCanceled ? pending.Task.WaitAsync(ct) : pending.Task;
    }

    async Task WaitForRoomAsync(Pending pending, CancellationToken ct)
    {
        await queue.Writer.WriteAsync(pending, ct);
        await pending.Task.WaitAsync(ct);
    }

    /// <summary>
    /// The writer runs on a thread of its own with synchronous database calls: SQLite's calls block anyway, and
    /// blocking a thread-pool thread at every commit would starve the requests that the pool serves.
    /// </summary>
    protected override Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var done = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var thread = new Thread(() =>
        {
            try
            {
                Run(stoppingToken);
                done.SetResult();
            }
            catch (Exception ex)
            {
                log.LogCritical(ex, "The event recorder stopped");
                done.SetException(ex);
            }
        })
        {
            IsBackground = true,
            Name = "event-recorder",
        };
        thread.Start();
        return done.Task;
    }

    void Run(CancellationToken stoppingToken)
    {
        var max = Math.Max(1, options.Value.RecorderMaxBatch);
        // Within what a wait takes (a negative interval means after every commit).
        var interval = TimeSpan.FromTicks(Math.Clamp(options.Value.RecorderCheckpointInterval.Ticks, 0, TimeSpan.TicksPerDay));
        var batch = new List<Pending>(max);
        var reader = queue.Reader;
        try
        {
            while (true)
            {
                var ready = reader.WaitToReadAsync(stoppingToken).AsTask();
                // Idle with commits not yet copied back: copied back now rather than when the next hits come.
                if (!ready.IsCompleted && uncheckpointed && !WaitQuietly(ready, interval)) Checkpoint();
                if (!ready.GetAwaiter().GetResult()) break;
                while (batch.Count < max && reader.TryRead(out var p)) batch.Add(p);
                Commit(batch);
                batch.Clear();
                // After the hits of the commit were answered; the hits that arrive meanwhile make the next batch.
                if (uncheckpointed && Stopwatch.GetElapsedTime(lastCheckpoint) >= interval) Checkpoint();
            }
        }
        catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
        {
        }
        // Shutting down: refuse new hits (their callers get an error and answer anyway), commit what callers wait on.
        queue.Writer.TryComplete();
        while (reader.TryRead(out var p)) batch.Add(p);
        if (batch.Count > 0) Commit(batch);
        ResetWriter();
    }

    /// <summary>Whether <paramref name="task"/> ended within <paramref name="timeout"/> (faulted or canceled included).</summary>
    static bool WaitQuietly(Task task, TimeSpan timeout)
    {
        try
        {
            return task.Wait(timeout);
        }
        catch (AggregateException)
        {
            return true;
        }
    }

    // Commits on the writer connection since its last checkpoint, and when that was.
    bool uncheckpointed;
    long lastCheckpoint = Stopwatch.GetTimestamp();

    /// <summary>
    /// Copies the write-ahead log back into the database file (SQLite only), on the writer's own connection between two
    /// commits. A checkpoint run beside the writer, from another connection, as before, never finished under steady
    /// load: the writer appended while it copied, so SQLite never started the log over. The log grew for as long as the
    /// load lasted (from 49 to 403 MB in 15 seconds at half the pixel's peak in bench/pixel), every commit extended the
    /// file, and its flush waited on the checkpoint's own flush of the database file: traced with perf in that run, a
    /// commit's <c>fsync</c> took 0.8 ms at the median, 4.9 ms at the 99th percentile and 55 ms at worst; done this
    /// way, 0.4, 2.7 and 9 ms, and the log stayed at 8 MB. Here nothing is appended while it copies, so the checkpoint
    /// finishes and the next commit writes the log from its start again.
    /// </summary>
    void Checkpoint()
    {
        uncheckpointed = false;
        var started = lastCheckpoint = Stopwatch.GetTimestamp();
        if (writer is null || writerProvider != WriterProvider.Sqlite) return;
        try
        {
            using var cmd = writer.Database.GetDbConnection().CreateCommand();
            cmd.CommandText = "PRAGMA wal_checkpoint(PASSIVE);";
            using var result = cmd.ExecuteReader();
            // Its columns: busy, pages in the log, pages copied back.
            if (result.Read()) CheckpointLeft.Record(result.GetInt32(1) - result.GetInt32(2));
        }
        catch (Exception ex)
        {
            // Nothing waits on a checkpoint: the log is copied back at the next one.
            log.LogWarning(ex, "SQLite checkpoint after recording events failed");
        }
        lastCheckpoint = Stopwatch.GetTimestamp();
        CheckpointTime.Record(Stopwatch.GetElapsedTime(started, lastCheckpoint).TotalMilliseconds);
    }

    // The recorder is the only writer of events in this process: it keeps one connection open rather than taking a
    // scope, a context and a pooled connection for every batch.
    IServiceScope? writerScope;
    AppDbContext? writer;

    enum WriterProvider { Sqlite, Postgres, Other }

    // Which database the writer talks to, settled when its connection opens: IsSqlite and IsNpgsql look the provider's
    // assembly name up by reflection on every call: asked at every commit, that was 2-4 % of the writer thread's time
    // under the pixel's load (perf: about 4 % at 8,000 hits a second, where batches are small).
    WriterProvider writerProvider;

    AppDbContext Writer()
    {
        if (writer is not null) return writer;
        writerScope = scopes.CreateScope();
        var db = writerScope.ServiceProvider.GetRequiredService<AppDbContext>();
        db.Database.OpenConnection();
        writerProvider = db.Database.IsSqlite() ? WriterProvider.Sqlite : db.Database.IsNpgsql() ? WriterProvider.Postgres : WriterProvider.Other;
        if (writerProvider == WriterProvider.Sqlite)
        {
            // Checkpoints happen between commits (see Checkpoint), not inside a commit that hits wait on.
            db.Database.ExecuteSqlRaw("PRAGMA wal_autocheckpoint=0;");
        }
        insert ??= new EventInsert(db.Model);
        return writer = db;
    }

    void ResetWriter()
    {
        insert?.Reset();
        writerScope?.Dispose();
        writerScope = null;
        writer = null;
    }

    void Commit(List<Pending> batch)
    {
        var started = Stopwatch.GetTimestamp();
        List<TrackingEvent> events;
        bool sqlite;
        try
        {
            var db = Writer();
            var connection = db.Database.GetDbConnection();
            var postgres = writerProvider == WriterProvider.Postgres;
            sqlite = writerProvider == WriterProvider.Sqlite;
            using var tx = connection.BeginTransaction();
            if (postgres)
            {
                // Several instances insert at once; ids come from one sequence but could commit out of order, and a
                // feed reader resuming after id N would then skip a smaller id committed later. Holding one lock from
                // id allocation to commit makes commit order equal id order. SQLite has a single writer anyway.
                Execute(connection, tx, $"SELECT pg_advisory_xact_lock({EventOrderLock})");
            }
            events = batch.ConvertAll(p => p.Event);
            insert!.Execute(connection, tx, events);
            if (postgres)
            {
                // Wakes the feeds of other instances when the transaction commits.
                foreach (var payload in FeedNotifier.Payloads(events.Select(e => (e.TeamId, e.UserId))))
                {
                    Execute(connection, tx, "SELECT pg_notify(@channel, @payload)", ("channel", FeedNotifier.Channel), ("payload", payload));
                }
            }
            tx.Commit();
        }
        catch (Exception ex)
        {
            log.LogError(ex, "Could not record {Count} tracking events", batch.Count);
            foreach (var p in batch) p.TrySetException(ex);
            // Start from a fresh connection next time: this one may be broken.
            try { ResetWriter(); } catch (Exception) { }
            return;
        }
        uncheckpointed = sqlite;
        var committed = Stopwatch.GetTimestamp();
        BatchSize.Record(batch.Count);
        CommitTime.Record(Stopwatch.GetElapsedTime(started, committed).TotalMilliseconds);
        if (HitWait.Enabled)
        {
            foreach (var p in batch) HitWait.Record(Stopwatch.GetElapsedTime(p.Queued, committed).TotalMilliseconds);
        }
        foreach (var p in batch) p.TrySetResult();
        feed.Notify(events.Select(e => (e.TeamId, e.UserId)));
    }

    static void Execute(System.Data.Common.DbConnection connection, System.Data.Common.DbTransaction tx, string sql,
        params (string Name, object Value)[] parameters)
    {
        using var cmd = connection.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var parameter = cmd.CreateParameter();
            parameter.ParameterName = name;
            parameter.Value = value;
            cmd.Parameters.Add(parameter);
        }
        cmd.ExecuteNonQuery();
    }
}
