using System.Collections.Concurrent;
using System.Data.Common;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes.Gmail;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.EntityFrameworkCore.Diagnostics;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Gmail;

/// <summary>The server with Gmail configured against <see cref="FakeGoogle"/>: OAuth, the Gmail API and push-token keys.</summary>
public abstract class GmailApp(DatabaseProvider provider) : AppFactory(provider)
{
    public const string Topic = "projects/et-test/topics/gmail";
    public const string PushAudience = "https://et.test/hooks/gmail/push";
    public const string PushServiceAccount = "gmail-push@et-test.iam.gserviceaccount.com";

    public FakeGoogle Google { get; } = FakeGoogle.Start();

    /// <summary>Fails the next save that would store a mailbox's first history checkpoint, as a database that went
    /// away for a moment would (the row is not written).</summary>
    public CursorSaveFailure FailFirstCheckpoint { get; } = new();

    /// <summary>Counts the commands that write a mailbox's checkpoint row (an insert or an update).</summary>
    public CheckpointWrites CheckpointWrites { get; } = new();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Mailboxes:Gmail:ClientId", FakeGoogle.ClientId);
        builder.UseSetting("Mailboxes:Gmail:ClientSecret", FakeGoogle.ClientSecret);
        builder.UseSetting("Mailboxes:Gmail:AuthUri", Google.AuthUri);
        builder.UseSetting("Mailboxes:Gmail:TokenUri", Google.TokenUri);
        builder.UseSetting("Mailboxes:Gmail:RevokeUri", Google.RevokeUri);
        builder.UseSetting("Mailboxes:Gmail:ApiBaseUri", Google.ApiBaseUri);
        builder.UseSetting("Mailboxes:Gmail:PubSubTopic", Topic);
        builder.UseSetting("Mailboxes:Gmail:PushAudience", PushAudience);
        builder.UseSetting("Mailboxes:Gmail:PushServiceAccount", PushServiceAccount);
        builder.UseSetting("Mailboxes:Gmail:PushCertsUrl", Google.CertsUrl);
        // Polling only as a slow fallback: within a test, new mail is seen because a push (or a restart) said so.
        builder.UseSetting("Mailboxes:Gmail:PollInterval", "00:05:00");
        builder.UseSetting("Mailboxes:Gmail:RetryDelay", "00:00:00.050");
        builder.UseSetting("Mailboxes:MaxMessageBytes", "200000");
        // Small pages, so that every test with a few messages goes through history and search page by page.
        builder.UseSetting("Mailboxes:Gmail:PageSize", "2");
        builder.ConfigureServices(services =>
            services.ConfigureDbContext<AppDbContext>((_, o) => o.AddInterceptors(FailFirstCheckpoint, CheckpointWrites)));
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Google.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

public sealed class GmailSqliteApp() : GmailApp(DatabaseProvider.Sqlite);

public sealed class GmailPostgresApp() : GmailApp(DatabaseProvider.Postgres);

/// <summary>See <see cref="GmailApp.FailFirstCheckpoint"/>: armed by a test, it fails one save holding a new Gmail history
/// checkpoint.</summary>
public sealed class CursorSaveFailure : SaveChangesInterceptor
{
    int armed;

    public void Arm() => Volatile.Write(ref armed, 1);

    public override ValueTask<InterceptionResult<int>> SavingChangesAsync(DbContextEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        if (Volatile.Read(ref armed) == 1 && eventData.Context is { } db
            && db.ChangeTracker.Entries<MailboxCursor>().Any(e => e.State == EntityState.Added && e.Entity.Name == GmailWatch.HistoryCursor)
            && Interlocked.Exchange(ref armed, 0) == 1)
        {
            throw new DbUpdateException("test: the database went away while the checkpoint was saved");
        }
        return ValueTask.FromResult(result);
    }
}

/// <summary>See <see cref="GmailApp.CheckpointWrites"/>: each INSERT or UPDATE of the MailboxCursors table, by the mailbox
/// it names (the connection id is one of the command's parameters).</summary>
public sealed class CheckpointWrites : DbCommandInterceptor
{
    readonly ConcurrentDictionary<Guid, int> counts = new();

    public int Of(Guid connectionId) => counts.GetValueOrDefault(connectionId);

    void Count(DbCommand command)
    {
        // A statement that writes the table (reads name its UpdatedAt column, so the verb is what tells).
        var sql = command.CommandText.TrimStart();
        if (!(sql.StartsWith("UPDATE \"MailboxCursors\"", StringComparison.Ordinal) || sql.StartsWith("INSERT INTO \"MailboxCursors\"", StringComparison.Ordinal))) return;
        foreach (var id in command.Parameters.Cast<DbParameter>().Select(p => AsId(p.Value)).OfType<Guid>().Distinct())
            counts.AddOrUpdate(id, 1, (_, n) => n + 1);
    }

    /// <summary>SQLite binds the id as its 16 bytes (Guid.ToByteArray), PostgreSQL as a uuid.</summary>
    static Guid? AsId(object? value) => value switch
    {
        Guid g => g,
        byte[] { Length: 16 } b => new Guid(b),
        _ => null,
    };

    public override InterceptionResult<int> NonQueryExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<int> result)
    {
        Count(command);
        return result;
    }

    public override ValueTask<InterceptionResult<int>> NonQueryExecutingAsync(DbCommand command, CommandEventData eventData, InterceptionResult<int> result,
        CancellationToken cancellationToken = default)
    {
        Count(command);
        return ValueTask.FromResult(result);
    }

    public override InterceptionResult<DbDataReader> ReaderExecuting(DbCommand command, CommandEventData eventData, InterceptionResult<DbDataReader> result)
    {
        Count(command);
        return result;
    }

    public override ValueTask<InterceptionResult<DbDataReader>> ReaderExecutingAsync(DbCommand command, CommandEventData eventData,
        InterceptionResult<DbDataReader> result, CancellationToken cancellationToken = default)
    {
        Count(command);
        return ValueTask.FromResult(result);
    }
}
