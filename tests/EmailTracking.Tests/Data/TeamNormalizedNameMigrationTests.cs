using System.Data.Common;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace EmailTracking.Tests.Data;

/// <summary>
/// Team names are unique whatever their case, and a database made before that may hold teams whose names differ only
/// in case: the migration keeps them all (none merged, none renamed), the earliest gets the plain normalised name, and
/// each is still found by its own exact name.
/// </summary>
public sealed class TeamNormalizedNameMigrationTests
{
    [Fact]
    public async Task Teams_differing_only_in_case_are_kept_and_still_found_on_sqlite()
    {
        var dir = Directory.CreateTempSubdirectory("et-team-names-");
        try
        {
            var connectionString = DatabaseSetup.Prepare(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(dir.FullName, "t.db")}")!;
            await CheckAsync(DatabaseProvider.Sqlite, connectionString, "20261202035716_InboundAuthorIndex", () => new SqliteConnection(connectionString));
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(true);
        }
    }

    [Fact]
    public async Task Teams_differing_only_in_case_are_kept_and_still_found_on_postgres()
    {
        var connectionString = TestPostgres.CreateDatabase();
        await CheckAsync(DatabaseProvider.Postgres, connectionString, "20261202035745_InboundAuthorIndex", () => new Npgsql.NpgsqlConnection(connectionString));
    }

    static async Task CheckAsync(DatabaseProvider provider, string connectionString, string before, Func<DbConnection> raw)
    {
        var options = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(options, provider, connectionString);
        await using (var db = new AppDbContext(options.Options))
        {
            await db.GetService<IMigrator>().MigrateAsync(before);
        }

        // The lower-case one came first; the other two, made later, differ from it only in case.
        var teams = new[]
        {
            (Id: Guid.NewGuid(), Name: "encom", CreatedAt: "2026-01-01 09:00:00+00:00"),
            (Id: Guid.NewGuid(), Name: "Encom", CreatedAt: "2026-02-01 09:00:00+00:00"),
            (Id: Guid.NewGuid(), Name: "ENCOM", CreatedAt: "2026-03-01 09:00:00+00:00"),
            (Id: Guid.NewGuid(), Name: "Dillinger Corp", CreatedAt: "2026-01-15 09:00:00+00:00"),
        };
        await using (var conn = raw())
        {
            await conn.OpenAsync();
            await using var cmd = conn.CreateCommand();
            var cast = provider == DatabaseProvider.Postgres ? "::timestamptz" : "";
            cmd.CommandText = string.Join("; ", teams.Select((_, i) =>
                $"""INSERT INTO "Teams" ("Id", "Name", "Plan", "CreatedAt") VALUES (@id{i}, @name{i}, 1, @at{i}{cast})"""));
            for (var i = 0; i < teams.Length; i++)
            {
                cmd.Parameters.Add(Parameter(cmd, $"id{i}", provider == DatabaseProvider.Sqlite ? teams[i].Id.ToByteArray() : teams[i].Id));
                cmd.Parameters.Add(Parameter(cmd, $"name{i}", teams[i].Name));
                cmd.Parameters.Add(Parameter(cmd, $"at{i}", teams[i].CreatedAt));
            }
            await cmd.ExecuteNonQueryAsync();
        }

        await using (var db = new AppDbContext(options.Options))
        {
            await db.Database.MigrateAsync();
            var rows = await db.Teams.AsNoTracking().ToDictionaryAsync(t => t.Id);
            Assert.Equal(teams.Length, rows.Count);
            Assert.Equal(teams.Select(t => t.Name), teams.Select(t => rows[t.Id].Name));
            Assert.Equal("ENCOM", rows[teams[0].Id].NormalizedName);
            Assert.Equal("DILLINGER CORP", rows[teams[3].Id].NormalizedName);
            // The later near-duplicates are marked apart, each differently, by something no typed name normalises to.
            Assert.StartsWith("ENCOM #", rows[teams[1].Id].NormalizedName);
            Assert.StartsWith("ENCOM #", rows[teams[2].Id].NormalizedName);
            Assert.NotEqual(rows[teams[1].Id].NormalizedName, rows[teams[2].Id].NormalizedName);

            // Each is found by its own name; a case none of them has finds the earliest.
            foreach (var t in teams) Assert.Equal(t.Id, (await AccountService.FindTeamAsync(db, t.Name))?.Id);
            Assert.Equal(teams[0].Id, (await AccountService.FindTeamAsync(db, " eNcOm "))?.Id);
            Assert.Equal(teams[3].Id, (await AccountService.FindTeamAsync(db, "dillinger corp"))?.Id);

            // And a new team in yet another case is refused by the database itself.
            db.Teams.Add(new Team { Name = "EnCoM", NormalizedName = Team.Normalize("EnCoM"), Plan = Plan.Team, CreatedAt = DateTimeOffset.UtcNow });
            await Assert.ThrowsAsync<DbUpdateException>(() => db.SaveChangesAsync());
        }
    }

    static DbParameter Parameter(DbCommand cmd, string name, object value)
    {
        var p = cmd.CreateParameter();
        p.ParameterName = "@" + name;
        p.Value = value;
        return p;
    }
}
