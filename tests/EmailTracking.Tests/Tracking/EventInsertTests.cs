using EmailTracking.Data;
using EmailTracking.Server.Tracking;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Tracking;

/// <summary>
/// The recorder's insert (its own SQL, bound column by column from the EF model) against what EF Core reads back: every
/// column of the events table, set and unset, on both databases. A column added later is covered without touching the
/// test, and one whose type the insert cannot bind fails here rather than in the pixel's recorder.
/// </summary>
public abstract class EventInsertTests(AppFactory app)
{
    static TrackingEvent Full() => new()
    {
        TeamId = Guid.NewGuid(), UserId = Guid.NewGuid(), TrackedMessageId = Guid.NewGuid(), CopyId = Guid.NewGuid(), RecipientId = Guid.NewGuid(),
        LinkId = Guid.NewGuid(), ContentId = Guid.NewGuid(), Kind = EventKind.Click, OccurredAt = new DateTimeOffset(2026, 11, 28, 23, 59, 58, 123, TimeSpan.Zero),
        Ip = "2001:db8::1", UserAgent = "Mozilla/5.0 (Macintosh) ünïcode ✓ 😀", Method = "GET", FromAddress = "flynn@flynnsarcade.test",
        Verdict = Verdict.Scanner, Reason = "a 'quoted' \"reason\"\nover two lines", Page = 7, Url = "https://encom.test/deck?a=1&b=%20", ReaderEmail = "dana@example.com", ReaderVerified = true,
    };

    static TrackingEvent Bare() => new()
    {
        TeamId = Guid.NewGuid(), UserId = Guid.NewGuid(), TrackedMessageId = Guid.NewGuid(), Kind = EventKind.Open,
        OccurredAt = DateTimeOffset.UnixEpoch.AddMilliseconds(1), Verdict = Verdict.Human, Reason = "",
    };

    void Insert(params TrackingEvent[] events) => app.WithDb(db =>
    {
        db.Database.OpenConnection();
        var connection = db.Database.GetDbConnection();
        var insert = new EventInsert(db.Model);
        try
        {
            using var tx = connection.BeginTransaction();
            insert.Execute(connection, tx, events);
            // The same prepared statement again, as the recorder's next batch uses it.
            insert.Execute(connection, tx, [.. events.Select(Clone)]);
            tx.Commit();
        }
        finally
        {
            insert.Reset();
            db.Database.CloseConnection();
        }
        return 0;
    });

    static TrackingEvent Clone(TrackingEvent e) => (TrackingEvent)typeof(TrackingEvent).GetMethod("MemberwiseClone", System.Reflection.BindingFlags.Instance | System.Reflection.BindingFlags.NonPublic)!.Invoke(e, null)!;

    [Fact]
    public void Every_column_reads_back_as_written_set_or_unset()
    {
        var written = new[] { Full(), Bare() };
        Insert(written);
        var properties = app.WithDb(db => db.Model.FindEntityType(typeof(TrackingEvent))!.GetProperties().Where(p => !p.IsPrimaryKey()).Select(p => p.PropertyInfo!).ToList());
        foreach (var w in written)
        {
            var read = app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TeamId == w.TeamId).OrderBy(e => e.Id).ToList());
            Assert.Equal(2, read.Count);
            Assert.True(read[0].Id < read[1].Id);
            foreach (var r in read)
            {
                foreach (var p in properties) Assert.True(Equals(p.GetValue(w), p.GetValue(r)), $"{p.Name}: wrote {p.GetValue(w)}, read {p.GetValue(r)}");
            }
        }
        // Nothing left unset that the full event sets, so every column was exercised with a value.
        Assert.All(properties, p => Assert.NotNull(p.GetValue(written[0])));
    }

    [Theory]
    [InlineData(EventInsert.SqliteRowsPerStatement)]
    [InlineData(2 * EventInsert.SqliteRowsPerStatement + 5)]
    public void A_batch_of_several_statements_reads_back_whole_in_its_order(int count)
    {
        // Full and bare rows alternating, each with its own values, so that a value bound to the wrong row or column
        // of a multi-row statement shows.
        var team = Guid.NewGuid();
        var written = Enumerable.Range(0, count).Select(i =>
        {
            var e = i % 2 == 0 ? Full() : Bare();
            e.TeamId = team;
            e.Reason = "row " + i;
            e.OccurredAt = e.OccurredAt.AddSeconds(i);
            if (e.Page is not null) e.Page = i;
            return e;
        }).ToArray();
        Insert(written);
        var properties = app.WithDb(db => db.Model.FindEntityType(typeof(TrackingEvent))!.GetProperties().Where(p => !p.IsPrimaryKey()).Select(p => p.PropertyInfo!).ToList());
        var read = app.WithDb(db => db.Events.AsNoTracking().Where(e => e.TeamId == team).OrderBy(e => e.Id).ToList());
        // Insert writes the batch twice (a second time through the statements it prepared).
        Assert.Equal(2 * count, read.Count);
        for (var i = 0; i < read.Count; i++)
        {
            var w = written[i % count];
            foreach (var p in properties) Assert.True(Equals(p.GetValue(w), p.GetValue(read[i])), $"row {i}, {p.Name}: wrote {p.GetValue(w)}, read {p.GetValue(read[i])}");
        }
    }

    [Theory]
    [InlineData(0, "a")]
    [InlineData(1, "€")]
    [InlineData(512, "€")] // the longest text encoded on the stack, three bytes a character
    [InlineData(513, "€")]
    [InlineData(256, "😀")] // 512 UTF-16 units, four bytes each pair
    [InlineData(1000, "é")]
    public void Texts_of_any_length_read_back_whole(int length, string unit)
    {
        var text = string.Concat(Enumerable.Repeat(unit, length));
        var reason = text.Length > 300 ? text[..300] : text; // the column's limit (pairs of surrogates stay whole)
        var e = Bare();
        e.Reason = reason;
        e.UserAgent = text + "!";
        e.Url = "https://encom.test/" + text;
        Insert(e);
        var read = app.WithDb(db => db.Events.AsNoTracking().Where(r => r.TeamId == e.TeamId).ToList());
        Assert.Equal(2, read.Count);
        Assert.All(read, r =>
        {
            Assert.Equal(reason, r.Reason); // empty stays empty, not NULL
            Assert.Equal(text + "!", r.UserAgent);
            Assert.Equal("https://encom.test/" + text, r.Url);
        });
    }

    [Theory]
    [InlineData(2, 1)]
    [InlineData(EventInsert.SqliteRowsPerStatement + 5, 6)] // inside a multi-row statement
    [InlineData(EventInsert.SqliteRowsPerStatement + 5, EventInsert.SqliteRowsPerStatement + 2)] // in a single row after it
    public void A_row_the_database_refuses_fails_the_batch_with_the_databases_reason(int count, int refusedAt)
    {
        var ok = Bare();
        var batch = Enumerable.Range(0, count).Select(_ => { var e = Bare(); e.TeamId = ok.TeamId; return e; }).ToArray();
        batch[refusedAt].Reason = null!; // NOT NULL
        var ex = Assert.ThrowsAny<System.Data.Common.DbException>(() => Insert(batch));
        Assert.Contains("Reason", ex.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Equal(0, app.WithDb(db => db.Events.Count(e => e.TeamId == ok.TeamId)));
        // The connection and a new statement work afterwards.
        var next = Bare();
        Insert(next);
        Assert.Equal(2, app.WithDb(db => db.Events.Count(e => e.TeamId == next.TeamId)));
    }
}

public sealed class EventInsertOnSqlite(SqliteApp app) : EventInsertTests(app), IClassFixture<SqliteApp>;

public sealed class EventInsertOnPostgres(PostgresApp app) : EventInsertTests(app), IClassFixture<PostgresApp>;
