using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Data;

public sealed class DatabaseOptions
{
    public const string Section = "Database";
    /// <summary>Sqlite (default) or Postgres.</summary>
    public string Provider { get; set; } = "Sqlite";
    /// <summary>Migrate the schema when the server starts (on by default; several instances may all do it).</summary>
    public bool MigrateOnStart { get; set; } = true;
    /// <summary>SQLite only: Full (fsync at every commit) or Normal (durable across a crash of the server process).</summary>
    public SqliteDurability SqliteDurability { get; set; } = SqliteDurability.Full;
}

public static class DataExtensions
{
    public static IServiceCollection AddAppDatabase(this IServiceCollection services, IConfiguration configuration)
    {
        var options = configuration.GetSection(DatabaseOptions.Section).Get<DatabaseOptions>() ?? new DatabaseOptions();
        var provider = DatabaseSetup.ParseProvider(options.Provider);
        var connectionString = DatabaseSetup.Prepare(provider, configuration.GetConnectionString("Default"));
        services.AddSingleton(new DatabaseInfo(provider));
        services.AddDbContext<AppDbContext>(o => DatabaseSetup.Configure(o, provider, connectionString, options.SqliteDurability));
        return services;
    }

    /// <summary>Creates the database on first run and brings the schema up to date.</summary>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken ct = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        await db.Database.MigrateAsync(ct);
        if (db.Database.IsSqlite())
        {
            // Write-ahead logging lets the web app and the feed read while the recorder writes; it stays set in the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        }
    }
}

public sealed record DatabaseInfo(DatabaseProvider Provider);
