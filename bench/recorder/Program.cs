using System.Diagnostics;
using System.Globalization;
using EmailTracking.Data;
using EmailTracking.Server.Tracking;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

// bench/recorder: the CPU the pixel's recorder spends per event inserting a batch into the events table (the
// product's schema and its three indexes, through EventInsert), against a baseline in the same run: the same rows
// through a prepared Microsoft.Data.Sqlite command, one per row, into a copy of the table with no index at all.
// See README.md beside this file.

var rounds = Arg("--rounds", 9);
var batches = Arg("--batches", 500);
var batch = Arg("--batch", 100);

var root = Directory.CreateTempSubdirectory("et-bench-recorder-").FullName;
try
{
    var services = new ServiceCollection();
    services.AddDbContext<AppDbContext>(o => DatabaseSetup.Configure(o, DatabaseProvider.Sqlite,
        DatabaseSetup.Prepare(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(root, "bench.db")}"), SqliteDurability.Full));
    await using var provider = services.BuildServiceProvider();
    using var scope = provider.CreateScope();
    var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
    await db.Database.MigrateAsync();
    db.Database.OpenConnection();
    var connection = (SqliteConnection)db.Database.GetDbConnection();
    void Execute(string sql)
    {
        using var cmd = connection.CreateCommand();
        cmd.CommandText = sql;
        cmd.ExecuteNonQuery();
    }
    // As the recorder's connection: no automatic checkpoint inside a commit (the recorder checkpoints between commits,
    // this bench between rounds), so each round starts from an empty log.
    Execute("PRAGMA wal_autocheckpoint=0;");
    // The baseline: the same table without its indexes, one prepared command per row, values converted by the model.
    Execute("CREATE TABLE Floor AS SELECT * FROM Events WHERE 0;");
    var columns = db.Model.FindEntityType(typeof(TrackingEvent))!.GetProperties().Where(p => !p.IsPrimaryKey()).ToList();
    using var floor = connection.CreateCommand();
    floor.CommandText = $"INSERT INTO Floor ({string.Join(", ", columns.Select(c => c.GetColumnName()))}) VALUES ({string.Join(", ", columns.Select((_, i) => "$p" + i))})";
    var parameters = columns.Select((c, i) => floor.Parameters.Add(new SqliteParameter("$p" + i, null))).ToArray();
    floor.Prepare();

    // One team and user, a message to 200 recipients, as bench/pixel's hits: opens by Outlook.
    var team = Guid.NewGuid();
    var user = Guid.NewGuid();
    var message = Guid.NewGuid();
    var copies = Enumerable.Range(0, 200).Select(_ => (Copy: Guid.NewGuid(), Recipient: Guid.NewGuid())).ToArray();
    var rng = new Random(42);
    List<TrackingEvent> Batch() => [.. Enumerable.Range(0, batch).Select(_ =>
    {
        var (copy, recipient) = copies[rng.Next(copies.Length)];
        return new TrackingEvent
        {
            TeamId = team, UserId = user, TrackedMessageId = message, CopyId = copy, RecipientId = recipient, Kind = EventKind.Open,
            OccurredAt = DateTimeOffset.UtcNow, Ip = "203.0.113.7", Method = "GET", Verdict = Verdict.Human, Reason = "no machine signature",
            UserAgent = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)",
        };
    })];

    var insert = new EventInsert(db.Model);
    double Round(Action<SqliteTransaction, List<TrackingEvent>> write)
    {
        var work = Enumerable.Range(0, batches).Select(_ => Batch()).ToList();
        using var process = Process.GetCurrentProcess();
        var before = process.TotalProcessorTime;
        foreach (var events in work)
        {
            using var tx = connection.BeginTransaction();
            write(tx, events);
            tx.Commit();
        }
        process.Refresh();
        var micros = (process.TotalProcessorTime - before).TotalMicroseconds / (batches * batch);
        Execute("PRAGMA wal_checkpoint(TRUNCATE);");
        return micros;
    }
    void Recorder(SqliteTransaction tx, List<TrackingEvent> events) => insert.Execute(connection, tx, events);
    void Floor(SqliteTransaction tx, List<TrackingEvent> events)
    {
        floor.Transaction = tx;
        foreach (var e in events)
        {
            for (var i = 0; i < columns.Count; i++)
            {
                var value = columns[i].GetGetter().GetClrValue(e);
                var converter = columns[i].GetTypeMapping().Converter;
                parameters[i].Value = value is null ? DBNull.Value : converter is null ? value : converter.ConvertToProvider(value);
            }
            floor.ExecuteNonQuery();
        }
    }

    Console.WriteLine($"bench/recorder: {rounds} rounds of {batches} batches of {batch} events, each batch one transaction (synchronous=FULL)");
    Round(Recorder);
    Round(Floor);
    var recorder = new List<double>();
    var floors = new List<double>();
    for (var r = 0; r < rounds; r++)
    {
        recorder.Add(Round(Recorder));
        floors.Add(Round(Floor));
        Console.WriteLine($"round {r + 1}: recorder {recorder[^1]:0.00} µs/event, baseline {floors[^1]:0.00} µs/event, ratio {recorder[^1] / floors[^1]:0.00}");
    }
    static double Median(List<double> v) => v.Order().ElementAt(v.Count / 2);
    var ratios = recorder.Zip(floors, (a, b) => a / b).ToList();
    Console.WriteLine();
    Console.WriteLine("| measure (median of rounds) | value |");
    Console.WriteLine("|---|---:|");
    Console.WriteLine($"| recorder: EventInsert into Events and its three indexes | {Median(recorder):0.00} µs of CPU per event |");
    Console.WriteLine($"| baseline: a prepared SqliteCommand per row, into the table without indexes | {Median(floors):0.00} µs of CPU per event |");
    Console.WriteLine($"| recorder / baseline (lower is better) | {Median(ratios):0.00} |");
    return 0;
}
finally
{
    SqliteConnection.ClearAllPools();
    try { Directory.Delete(root, true); } catch (IOException) { }
}

int Arg(string name, int fallback)
{
    var i = Array.IndexOf(args, name);
    return i >= 0 && i + 1 < args.Length && int.TryParse(args[i + 1], NumberStyles.Integer, CultureInfo.InvariantCulture, out var v) ? v : fallback;
}
