using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace EmailTracking.Tests.Data;

/// <summary>
/// The ShareLinkEvents migration lets an event name no message (a share link's read outside any message). On SQLite it
/// rebuilds the events table by hand: the events stored before keep their ids and values, ids stay plain rowids, and a
/// new event may have no message.
/// </summary>
public sealed class ShareLinkEventsMigrationTests
{
    [Fact]
    public async Task Existing_events_keep_their_ids_and_values_and_a_new_one_may_name_no_message_on_sqlite()
    {
        var dir = Directory.CreateTempSubdirectory("et-share-events-");
        try
        {
            var connectionString = DatabaseSetup.Prepare(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(dir.FullName, "t.db")}")!;
            await CheckAsync(DatabaseProvider.Sqlite, connectionString, "20261129223157_AddressClaims");
            await using var conn = new SqliteConnection(connectionString);
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = "SELECT group_concat(sql, ';') FROM sqlite_master WHERE tbl_name = 'Events'";
            var schema = (string)(await cmd.ExecuteScalarAsync())!;
            Assert.DoesNotContain("AUTOINCREMENT", schema, StringComparison.OrdinalIgnoreCase);
            Assert.Contains("\"TrackedMessageId\" BLOB NULL", schema);
            foreach (var index in new[] { "IX_Events_TeamId_Id", "IX_Events_TrackedMessageId_Id", "IX_Events_UserId_Id", "IX_Events_DocumentReads" }) Assert.Contains(index, schema);
            Assert.Contains("WHERE \"ContentId\" IS NOT NULL", schema);
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task Existing_events_keep_their_ids_and_values_and_a_new_one_may_name_no_message_on_postgres()
    {
        var connectionString = TestPostgres.CreateDatabase();
        await CheckAsync(DatabaseProvider.Postgres, connectionString, "20261129223243_AddressClaims");
    }

    static async Task CheckAsync(DatabaseProvider provider, string connectionString, string before)
    {
        var options = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(options, provider, connectionString);
        await using (var db = new AppDbContext(options.Options))
        {
            await db.GetService<IMigrator>().MigrateAsync(before);
        }

        Guid team = Guid.NewGuid(), user = Guid.NewGuid(), message = Guid.NewGuid(), content = Guid.NewGuid();
        var at = new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero);
        List<long> ids;
        await using (var db = new AppDbContext(options.Options))
        {
            // Written as the schema before the migration had them: every event of a message. In SQL, with that schema's
            // columns: the model of today has columns that later migrations add.
            var conn = db.Database.GetDbConnection();
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText =
                "INSERT INTO \"Events\" (\"TeamId\", \"UserId\", \"TrackedMessageId\", \"Kind\", \"OccurredAt\", \"Verdict\", \"Reason\") VALUES (@t, @u, @m, @open, @at, 0, 'no machine signal'); " +
                "INSERT INTO \"Events\" (\"TeamId\", \"UserId\", \"TrackedMessageId\", \"Kind\", \"OccurredAt\", \"Verdict\", \"Reason\", \"ContentId\", \"Page\") VALUES (@t, @u, @m, @page, @at, 0, 'r', @c, 3)";
            void Add(string name, object value)
            {
                var p = cmd.CreateParameter();
                p.ParameterName = "@" + name;
                p.Value = value;
                cmd.Parameters.Add(p);
            }
            object Id(Guid g) => provider == DatabaseProvider.Sqlite ? g.ToByteArray() : g;
            Add("t", Id(team)); Add("u", Id(user)); Add("m", Id(message)); Add("c", Id(content));
            Add("open", (int)EventKind.Open); Add("page", (int)EventKind.DocumentPage);
            Add("at", provider == DatabaseProvider.Sqlite ? new Microsoft.EntityFrameworkCore.Storage.ValueConversion.DateTimeOffsetToBinaryConverter().ConvertToProvider(at)! : at);
            await cmd.ExecuteNonQueryAsync();
            cmd.CommandText = "SELECT \"Id\" FROM \"Events\" ORDER BY \"Id\"";
            cmd.Parameters.Clear();
            ids = [];
            await using var reader = await cmd.ExecuteReaderAsync();
            while (await reader.ReadAsync()) ids.Add(reader.GetInt64(0));
        }

        await using (var db = new AppDbContext(options.Options))
        {
            await db.Database.MigrateAsync();
            var kept = await db.Events.AsNoTracking().OrderBy(e => e.Id).ToListAsync();
            Assert.Equal(ids, kept.Select(e => e.Id));
            Assert.All(kept, e => Assert.Equal((team, user, (Guid?)message, at), (e.TeamId, e.UserId, e.TrackedMessageId, e.OccurredAt)));
            Assert.Equal((content, 3), (kept[1].ContentId!.Value, kept[1].Page!.Value));

            db.Events.Add(new TrackingEvent { TeamId = team, UserId = user, Kind = EventKind.DocumentView, OccurredAt = at, Reason = "r", ContentId = content });
            await db.SaveChangesAsync();
            var share = await db.Events.AsNoTracking().SingleAsync(e => e.TrackedMessageId == null);
            Assert.True(share.Id > ids[^1], "ids still only grow");
        }
    }
}
