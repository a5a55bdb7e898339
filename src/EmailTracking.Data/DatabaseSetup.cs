using System.Data.Common;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;

namespace EmailTracking.Data;

public enum DatabaseProvider { Sqlite, Postgres }

/// <summary>
/// How far a SQLite commit is durable before it returns. Full: fsync of the write-ahead log at every commit, so a
/// commit survives a power cut. Normal: the commit survives a crash or kill of the server process (the log is in the
/// operating system's hands) and is synced at checkpoints; the last commits can be lost if the machine itself fails.
/// </summary>
public enum SqliteDurability { Full, Normal }

/// <summary>Chooses the provider once, in code, with the migrations assembly that belongs to it.</summary>
public static class DatabaseSetup
{
    public const string DefaultSqlite = "Data Source=data/emailtracking.db";

    public static DatabaseProvider ParseProvider(string? name) => name?.Trim().ToLowerInvariant() switch
    {
        null or "" or "sqlite" => DatabaseProvider.Sqlite,
        "postgres" or "postgresql" or "npgsql" => DatabaseProvider.Postgres,
        _ => throw new InvalidOperationException($"Database:Provider '{name}' is not known; use Sqlite or Postgres."),
    };

    /// <summary>
    /// The connection string as the provider will use it: for SQLite the default when none is given, the path made
    /// absolute and its directory created. Call once at start, not per context.
    /// </summary>
    public static string? Prepare(DatabaseProvider provider, string? connectionString) =>
        provider == DatabaseProvider.Sqlite
            ? PrepareSqlite(string.IsNullOrWhiteSpace(connectionString) ? DefaultSqlite : connectionString)
            : connectionString;

    /// <param name="connectionString">As returned by <see cref="Prepare"/>.</param>
    public static void Configure(DbContextOptionsBuilder options, DatabaseProvider provider, string? connectionString,
        SqliteDurability durability = SqliteDurability.Full)
    {
        switch (provider)
        {
            case DatabaseProvider.Sqlite:
                var cs = string.IsNullOrWhiteSpace(connectionString) ? DefaultSqlite : connectionString;
                options.UseSqlite(cs, o => o.MigrationsAssembly("EmailTracking.Migrations.Sqlite"))
                    .AddInterceptors(durability == SqliteDurability.Full ? SqlitePragmas.Full : SqlitePragmas.Normal);
                break;
            case DatabaseProvider.Postgres:
                if (string.IsNullOrWhiteSpace(connectionString))
                {
                    throw new InvalidOperationException("Database:Provider is Postgres but ConnectionStrings:Default is empty.");
                }
                options.UseNpgsql(connectionString, o => o.MigrationsAssembly("EmailTracking.Migrations.Postgres"));
                break;
        }
    }

    /// <summary>
    /// The full path of the SQLite file a connection string names (the default when none is given), relative paths
    /// taken from the current directory; null for an in-memory database.
    /// </summary>
    public static string? SqliteFile(string? connectionString)
    {
        var b = new SqliteConnectionStringBuilder(string.IsNullOrWhiteSpace(connectionString) ? DefaultSqlite : connectionString);
        return string.IsNullOrEmpty(b.DataSource) || b.DataSource == ":memory:" || b.Mode == SqliteOpenMode.Memory ? null : Path.GetFullPath(b.DataSource);
    }

    /// <summary>Makes the directory of a SQLite file exist, so that the first run creates the database.</summary>
    static string PrepareSqlite(string connectionString)
    {
        var b = new SqliteConnectionStringBuilder(connectionString);
        if (SqliteFile(connectionString) is { } full)
        {
            Directory.CreateDirectory(Path.GetDirectoryName(full)!);
            b.DataSource = full;
        }
        b.Pooling = true;
        b.DefaultTimeout = 30;
        return b.ToString();
    }

    /// <summary>
    /// Per connection: how commits are synced, and waiting rather than failing while another connection writes.
    /// WAL (readers beside the one writer) is a property of the database file, set once when it is migrated.
    /// </summary>
    sealed class SqlitePragmas(string sql) : DbConnectionInterceptor
    {
        const string Common = "PRAGMA busy_timeout=30000;";
        public static readonly SqlitePragmas Full = new("PRAGMA synchronous=FULL; " + Common);
        public static readonly SqlitePragmas Normal = new("PRAGMA synchronous=NORMAL; " + Common);

        public override void ConnectionOpened(DbConnection connection, ConnectionEndEventData eventData)
        {
            using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            cmd.ExecuteNonQuery();
        }

        public override async Task ConnectionOpenedAsync(DbConnection connection, ConnectionEndEventData eventData, CancellationToken cancellationToken = default)
        {
            await using var cmd = connection.CreateCommand();
            cmd.CommandText = sql;
            await cmd.ExecuteNonQueryAsync(cancellationToken);
        }
    }
}
