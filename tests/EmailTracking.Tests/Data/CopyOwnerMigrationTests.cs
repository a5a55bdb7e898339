using System.Data.Common;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace EmailTracking.Tests.Data;

/// <summary>
/// Copies keep their message's owner (the reply lookup checks it there): copies stored before the column existed get
/// it from their message when the database is migrated.
/// </summary>
public sealed class CopyOwnerMigrationTests
{
    [Fact]
    public async Task Existing_copies_get_their_messages_owner_on_sqlite()
    {
        var dir = Directory.CreateTempSubdirectory("et-copy-owner-");
        try
        {
            var connectionString = DatabaseSetup.Prepare(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(dir.FullName, "t.db")}")!;
            // Foreign keys off for the raw rows: the test needs a message and its copies, not a whole account.
            await CheckAsync(DatabaseProvider.Sqlite, connectionString, "20261128150505_Salesforce",
                () => new SqliteConnection(connectionString + ";Foreign Keys=False"), "", "1", "0");
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task Existing_copies_get_their_messages_owner_on_postgres()
    {
        var connectionString = TestPostgres.CreateDatabase();
        await CheckAsync(DatabaseProvider.Postgres, connectionString, "20261128150514_Salesforce",
            () => new Npgsql.NpgsqlConnection(connectionString), "SET session_replication_role = replica; ", "true", "now()");
    }

    static async Task CheckAsync(DatabaseProvider provider, string connectionString, string before, Func<DbConnection> raw,
        string prefix, string trueValue, string now)
    {
        var options = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(options, provider, connectionString);
        await using (var db = new AppDbContext(options.Options))
        {
            await db.GetService<IMigrator>().MigrateAsync(before);
        }

        Guid team = Guid.NewGuid(), user = Guid.NewGuid(), otherTeam = Guid.NewGuid(), otherUser = Guid.NewGuid();
        Guid message = Guid.NewGuid(), other = Guid.NewGuid();
        var copies = new[] { (Id: Guid.NewGuid(), Message: message), (Id: Guid.NewGuid(), Message: message), (Id: Guid.NewGuid(), Message: other) };
        await using (var conn = raw())
        {
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            cmd.CommandText = prefix + string.Join("; ", [
                Message("m1", "t1", "u1"), Message("m2", "t2", "u2"),
                .. copies.Select((_, i) => $"""INSERT INTO "Copies" ("Id", "TrackedMessageId", "MessageIdHeader", "PixelToken") VALUES (@c{i}, @cm{i}, 'id{i}@t.test', 'tok{i}')"""),
            ]);
            void Add(string name, Guid value) => cmd.Parameters.Add(Parameter(cmd, name, value, provider));
            Add("m1", message); Add("t1", team); Add("u1", user);
            Add("m2", other); Add("t2", otherTeam); Add("u2", otherUser);
            for (var i = 0; i < copies.Length; i++) { Add($"c{i}", copies[i].Id); Add($"cm{i}", copies[i].Message); }
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var db = new AppDbContext(options.Options))
        {
            await db.Database.MigrateAsync();
            var rows = await db.Copies.AsNoTracking().ToDictionaryAsync(c => c.Id);
            Assert.Equal((user, team), (rows[copies[0].Id].UserId, rows[copies[0].Id].TeamId));
            Assert.Equal((user, team), (rows[copies[1].Id].UserId, rows[copies[1].Id].TeamId));
            Assert.Equal((otherUser, otherTeam), (rows[copies[2].Id].UserId, rows[copies[2].Id].TeamId));
        }

        string Message(string id, string t, string u) =>
            $"""INSERT INTO "Messages" ("Id", "TeamId", "UserId", "Source", "FromAddress", "Subject", "PerRecipient", "CreatedAt") VALUES (@{id}, @{t}, @{u}, 0, 'me@sender.test', 'Proposal', {trueValue}, {now})""";
    }

    /// <summary>Guids as the model stores them: 16 bytes on SQLite, uuid on PostgreSQL.</summary>
    static DbParameter Parameter(DbCommand cmd, string name, Guid value, DatabaseProvider provider)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = "@" + name;
        p.Value = provider == DatabaseProvider.Sqlite ? value.ToByteArray() : value;
        return p;
    }
}
