using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Data;

/// <summary>
/// SQLite copies its write-ahead log back into the database file at checkpoints. Left to itself it does that inside
/// the commit that crosses 1000 log pages, and the hits waiting on that commit wait milliseconds longer. The recorder
/// turns that off for its connection; this copies the log back every second from a connection of its own, in
/// PASSIVE mode, which never blocks the writer.
/// </summary>
public sealed class SqliteCheckpointer(DatabaseInfo database, IServiceScopeFactory scopes, ILogger<SqliteCheckpointer> log) : BackgroundService
{
    static readonly TimeSpan Interval = TimeSpan.FromSeconds(1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (database.Provider != DatabaseProvider.Sqlite) return;
        using var timer = new PeriodicTimer(Interval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await timer.WaitForNextTickAsync(stoppingToken);
                await using var scope = scopes.CreateAsyncScope();
                var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                await db.Database.ExecuteSqlRawAsync("PRAGMA wal_checkpoint(PASSIVE);", stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                log.LogWarning(ex, "SQLite checkpoint failed; retrying in {Interval}", Interval);
            }
        }
    }
}
