using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Data.Sqlite;

namespace EmailTracking.Tests.Tracking;

/// <summary>The recorder copies the log back after every commit.</summary>
public sealed class CheckpointEveryCommitApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Tracking:RecorderCheckpointInterval", "00:00:00");
}

/// <summary>The recorder copies the log back at most every 300 ms, and when it has been idle that long.</summary>
public sealed class CheckpointWhenIdleApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Tracking:RecorderCheckpointInterval", "00:00:00.300");
}

/// <summary>
/// SQLite's write-ahead log must not grow for as long as hits keep coming. The recorder copies it back into the
/// database file itself, between two commits; SQLite then writes the log from its start again at the next commit. What
/// SQLite has done is read from its WAL index (the -shm file; sqlite.org/walformat.html): the frames in the log since it
/// last started over (mxFrame, at byte 16) and how many of them are copied back (nBackfill, at byte 96).
/// </summary>
public sealed class RecorderCheckpointTests(CheckpointEveryCommitApp every, CheckpointWhenIdleApp idle)
    : IClassFixture<CheckpointEveryCommitApp>, IClassFixture<CheckpointWhenIdleApp>
{
    static (uint Frames, uint Backfilled) WalIndex(AppFactory app)
    {
        var db = new SqliteConnectionStringBuilder(app.ConnectionString).DataSource;
        using var shm = new FileStream(db + "-shm", FileMode.Open, FileAccess.Read, FileShare.ReadWrite | FileShare.Delete);
        var header = new byte[136];
        shm.ReadExactly(header);
        // Native byte order, as SQLite writes it.
        return (BitConverter.ToUInt32(header, 16), BitConverter.ToUInt32(header, 96));
    }

    static async Task HitSequentiallyAsync(AppFactory app, JsonElement reg, int count)
    {
        var client = app.Anonymous();
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        for (var i = 0; i < count; i++)
        {
            // Answered after the commit that holds it: one commit per hit.
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(pixel)).StatusCode);
        }
    }

    [Fact]
    public async Task The_log_starts_over_instead_of_growing_while_hits_keep_coming()
    {
        var user = await every.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var id = Guid.Parse(reg.GetProperty("id").GetString()!);

        await HitSequentiallyAsync(every, reg, 200);

        Assert.Equal(200, every.WithDb(db => db.Events.Count(e => e.TrackedMessageId == id)));
        // 200 commits wrote at least 400 pages to the log (each adds a row and index entries). Copied back after each,
        // the log holds only what the last commit wrote.
        var (frames, _) = WalIndex(every);
        Assert.InRange(frames, 1u, 30u);
    }

    [Fact]
    public async Task What_the_last_commits_left_in_the_log_is_copied_back_once_the_recorder_is_idle()
    {
        var user = await idle.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        await HitSequentiallyAsync(idle, reg, 5);

        // No more hits come: within the interval (300 ms) the recorder copies the log back, with nothing to commit.
        var deadline = DateTime.UtcNow.AddSeconds(10);
        var (frames, backfilled) = WalIndex(idle);
        while ((backfilled < frames || frames == 0) && DateTime.UtcNow < deadline)
        {
            await Task.Delay(50);
            (frames, backfilled) = WalIndex(idle);
        }
        Assert.True(frames > 0, "the hits were written to the log");
        Assert.Equal(frames, backfilled);
    }
}
