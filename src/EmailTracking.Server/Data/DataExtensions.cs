using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Infrastructure;
using Microsoft.EntityFrameworkCore.Storage;

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

    /// <summary>
    /// Begins a transaction that runs one at a time per key, for a check-then-record that must see the rows of the
    /// requests made at the same moment (limits on mails sent): on SQLite the write transaction already does it
    /// (Microsoft.Data.Sqlite begins with BEGIN IMMEDIATE); on PostgreSQL the transaction takes the advisory lock
    /// (<paramref name="lockClass"/>, the key's first four bytes) until it ends.
    /// </summary>
    public static async Task<IDbContextTransaction> BeginSerializedAsync(this DatabaseFacade database, int lockClass, Guid key, CancellationToken ct)
    {
        var tx = await database.BeginTransactionAsync(ct);
        if (database.IsNpgsql())
        {
            await database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock({0}, {1})",
                [lockClass, System.Buffers.Binary.BinaryPrimitives.ReadInt32BigEndian(key.ToByteArray())], ct);
        }
        return tx;
    }

    /// <summary>The PostgreSQL advisory lock that serialises migrations between instances.</summary>
    public const long MigrationLock = 7_262_002;

    /// <summary>Creates the database on first run and brings the schema up to date.</summary>
    public static async Task MigrateAsync(IServiceProvider services, CancellationToken ct = default)
    {
        await using var scope = services.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        if (db.Database.IsNpgsql())
        {
            // Instances starting together would each apply the same migrations and all but one fail on the history
            // table's key: a session-level advisory lock, held on a connection of its own, lets one migrate at a time
            // (the others then find nothing left to do).
            await using var mutex = new Npgsql.NpgsqlConnection(db.Database.GetConnectionString());
            await mutex.OpenAsync(ct);
            await using (var take = new Npgsql.NpgsqlCommand($"SELECT pg_advisory_lock({MigrationLock})", mutex))
            {
                await take.ExecuteNonQueryAsync(ct);
            }
            try
            {
                await db.Database.MigrateAsync(ct);
            }
            finally
            {
                await using var release = new Npgsql.NpgsqlCommand($"SELECT pg_advisory_unlock({MigrationLock})", mutex);
                await release.ExecuteNonQueryAsync(CancellationToken.None);
            }
        }
        else
        {
            await db.Database.MigrateAsync(ct);
        }
        if (db.Database.IsSqlite())
        {
            // Write-ahead logging lets the web app and the feed read while the recorder writes; it stays set in the file.
            await db.Database.ExecuteSqlRawAsync("PRAGMA journal_mode=WAL;", ct);
        }
    }
}

public sealed record DatabaseInfo(DatabaseProvider Provider);
