using System.Data;
using EmailTracking.Data;
using Microsoft.Data.Sqlite;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Storage;

namespace EmailTracking.Server.Data;

/// <summary>
/// A read-only transaction in which every query sees the same committed state: on PostgreSQL a repeatable-read
/// transaction, on SQLite a deferred one (in WAL mode its first read fixes the snapshot, and it never takes the write
/// lock the recorder needs). What a page counts and the cursors the live feed continues from are read in one, so that
/// the feed neither repeats nor misses what the page shows.
/// </summary>
public sealed class ReadSnapshot : IAsyncDisposable
{
    readonly AppDbContext db;
    readonly IDbContextTransaction tx;
    /// <summary>SQLite's transaction, which EF Core does not own (it was begun here, deferred) and so does not end.</summary>
    readonly SqliteTransaction? sqlite;

    ReadSnapshot(AppDbContext db, IDbContextTransaction tx, SqliteTransaction? sqlite)
    {
        this.db = db;
        this.tx = tx;
        this.sqlite = sqlite;
    }

    public static async Task<ReadSnapshot> BeginAsync(AppDbContext db, CancellationToken ct)
    {
        if (!db.Database.IsSqlite())
        {
            return new ReadSnapshot(db, await db.Database.BeginTransactionAsync(IsolationLevel.RepeatableRead, ct), sqlite: null);
        }
        await db.Database.OpenConnectionAsync(ct);
        try
        {
            var connection = (SqliteConnection)db.Database.GetDbConnection();
            var tx = connection.BeginTransaction(deferred: true);
            try
            {
                return new ReadSnapshot(db, await db.Database.UseTransactionAsync(tx, ct) ?? throw new InvalidOperationException("No transaction"), tx);
            }
            catch
            {
                await tx.DisposeAsync();
                throw;
            }
        }
        catch
        {
            await db.Database.CloseConnectionAsync();
            throw;
        }
    }

    public async ValueTask DisposeAsync()
    {
        // Nothing was written: ending the transaction either way only releases the snapshot.
        await tx.DisposeAsync();
        if (sqlite is not null)
        {
            await sqlite.DisposeAsync();
            await db.Database.CloseConnectionAsync();
        }
    }
}
