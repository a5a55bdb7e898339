using System.Data.Common;
using EmailTracking.Data;
using EmailTracking.Server.Content;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Migrations;

namespace EmailTracking.Tests.Data;

/// <summary>
/// The events table holds every pixel hit and click ever recorded: a page that reads it without an index reads all of
/// them. Each query a document's page makes over the events is planned by SQLite on the migrated schema and must
/// search an index, never scan the table.
/// </summary>
public sealed class EventQueryPlanTests
{
    [Fact]
    public async Task A_documents_page_reads_its_followed_links_through_an_index_not_every_event()
    {
        var dir = Directory.CreateTempSubdirectory("et-event-plans-");
        try
        {
            var connectionString = DatabaseSetup.Prepare(DatabaseProvider.Sqlite, $"Data Source={Path.Combine(dir.FullName, "t.db")}")!;
            var captured = new CommandCapture();
            var options = new DbContextOptionsBuilder<AppDbContext>();
            DatabaseSetup.Configure(options, DatabaseProvider.Sqlite, connectionString);
            options.AddInterceptors(captured);
            await using (var db = new AppDbContext(options.Options))
            {
                await db.GetService<IMigrator>().MigrateAsync();
                var item = new ContentItem { Name = "Proposal.pdf", OriginalSha256 = "a", PdfSha256 = "a", PageCount = 3 };
                await ContentStats.ForAsync(db, item, machines: false, CancellationToken.None);
                await ContentStats.ForAsync(db, item, machines: true, CancellationToken.None);
            }

            var overEvents = captured.Commands.Where(c => c.Sql.Contains("FROM \"Events\"", StringComparison.Ordinal)).ToList();
            Assert.NotEmpty(overEvents);
            await using var conn = new SqliteConnection(connectionString);
            await conn.OpenAsync();
            foreach (var (sql, parameters) in overEvents)
            {
                await using var explain = conn.CreateCommand();
                explain.CommandText = "EXPLAIN QUERY PLAN " + sql;
                foreach (var (name, value) in parameters) explain.Parameters.AddWithValue(name, value ?? DBNull.Value);
                var plan = new List<string>();
                await using (var reader = await explain.ExecuteReaderAsync())
                {
                    while (await reader.ReadAsync()) plan.Add(reader.GetString(3));
                }
                Assert.DoesNotContain(plan, step => step.StartsWith("SCAN Events", StringComparison.Ordinal) || step.StartsWith("SCAN e", StringComparison.Ordinal));
                Assert.Contains(plan, step => step.Contains("USING INDEX", StringComparison.Ordinal));
            }
        }
        finally
        {
            SqliteConnection.ClearAllPools();
            dir.Delete(true);
        }
    }

    sealed class CommandCapture : DbCommandInterceptor
    {
        public List<(string Sql, List<(string Name, object? Value)> Parameters)> Commands { get; } = [];

        public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
            InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
        {
            Commands.Add((command.CommandText, [.. command.Parameters.Cast<DbParameter>().Select(p => (p.ParameterName, (object?)p.Value))]));
            return ValueTask.FromResult(result);
        }
    }
}
