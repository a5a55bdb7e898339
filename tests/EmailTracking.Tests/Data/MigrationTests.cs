using EmailTracking.Data;
using EmailTracking.Server.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Data;

public sealed class MigrationTests
{
    /// <summary>Several instances starting at once on one new PostgreSQL database all migrate it without failing.</summary>
    [Fact]
    public async Task Instances_starting_together_on_postgres_all_migrate_and_the_schema_is_made_once()
    {
        var connectionString = TestPostgres.CreateDatabase();
        var instances = Enumerable.Range(0, 4).Select(_ =>
        {
            var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
            {
                ["Database:Provider"] = "Postgres",
                ["ConnectionStrings:Default"] = connectionString,
            }).Build();
            var services = new ServiceCollection();
            services.AddLogging();
            services.AddAppDatabase(config);
            return services.BuildServiceProvider();
        }).ToList();
        try
        {
            await Task.WhenAll(instances.Select(sp => Task.Run(() => DataExtensions.MigrateAsync(sp))));

            await using var scope = instances[0].CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            Assert.Empty(await db.Database.GetPendingMigrationsAsync());
            Assert.Equal(db.Database.GetMigrations().Count(), (await db.Database.GetAppliedMigrationsAsync()).Count());
        }
        finally
        {
            foreach (var sp in instances) await sp.DisposeAsync();
        }
    }
}

/// <summary>
/// The model and each provider's migrations agree: a model change without its migration fails here. On SQLite this
/// also guards the events' id strategy of None, which EF Core 10's own snapshot writer leaves out (the SQLite
/// migrations project's DesignTimeServices writes it; see the EventIdsWithoutAutoincrement migration).
/// </summary>
public abstract class ModelMatchesMigrationsTests(AppFactory app)
{
    [Fact]
    public void The_migrations_snapshot_holds_every_change_of_the_model() =>
        Assert.False(app.WithDb(db => db.Database.HasPendingModelChanges()), "the model has changes that no migration makes");
}

public sealed class ModelMatchesMigrationsOnSqlite(SqliteApp app) : ModelMatchesMigrationsTests(app), IClassFixture<SqliteApp>
{
    [Fact]
    public void The_events_table_has_plain_rowids() => Assert.DoesNotContain("AUTOINCREMENT",
        app.WithDb(db => db.Database.SqlQueryRaw<string>("SELECT sql AS \"Value\" FROM sqlite_master WHERE name = 'Events'").Single()),
        StringComparison.OrdinalIgnoreCase);
}

public sealed class ModelMatchesMigrationsOnPostgres(PostgresApp app) : ModelMatchesMigrationsTests(app), IClassFixture<PostgresApp>;
