using System.Net.Http.Headers;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.Extensions.DependencyInjection;
using EmailTracking.Tests.Classification;
using Npgsql;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// The server in memory on a real database: a SQLite file of its own (WAL, as in production), or a fresh database
/// on the throwaway PostgreSQL cluster that test.sh starts (ET_TEST_POSTGRES).
/// </summary>
public abstract class AppFactory : WebApplicationFactory<Program>, IAsyncLifetime
{
    readonly string connectionString;
    readonly string provider;
    readonly string? sqliteDir;
    readonly string contentDir = Directory.CreateTempSubdirectory("et-content-").FullName;

    /// <param name="sharedDatabase">Another server's database (as another instance, or the same one restarted), which
    /// that server's factory owns; null for a new one of this factory's own.</param>
    protected AppFactory(DatabaseProvider db, string? sharedDatabase = null)
    {
        if (sharedDatabase is not null)
        {
            connectionString = sharedDatabase;
            provider = db == DatabaseProvider.Sqlite ? "Sqlite" : "Postgres";
        }
        else if (db == DatabaseProvider.Sqlite)
        {
            sqliteDir = Directory.CreateTempSubdirectory("et-test-").FullName;
            connectionString = $"Data Source={Path.Combine(sqliteDir, "et.db")}";
            provider = "Sqlite";
        }
        else
        {
            connectionString = TestPostgres.CreateDatabase();
            provider = "Postgres";
        }
    }

    public string ConnectionString => connectionString;
    public string Provider => provider;

    /// <summary>This server's content store (uploaded files, PDFs, thumbnails, work directories).</summary>
    public string ContentDir => contentDir;

    /// <summary>Settings a test class adds on top (applied last).</summary>
    protected virtual void Configure(IWebHostBuilder builder) { }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        builder.UseEnvironment("Development");
        builder.UseSetting("Database:Provider", provider);
        builder.UseSetting("ConnectionStrings:Default", connectionString);
        builder.UseSetting("Tracking:AppleRelay:Directory", SharedData.Path("apple-relay"));
        builder.UseSetting("Tracking:AppleRelay:CacheFile", Path.Combine(Path.GetTempPath(), $"et-apple-{Guid.NewGuid():N}.csv"));
        builder.UseSetting("Logging:LogLevel:Default", "Warning");
        // EF logs its look for the migrations table in a new database as a failed command; that is its normal path.
        builder.UseSetting("Logging:LogLevel:Microsoft.EntityFrameworkCore.Database.Command", "Critical");
        builder.UseSetting("Tracking:PublicBaseUrl", "http://localhost");
        // The server mail queue's waits are exact here (tests move the clock by them); its spread is tested on its own.
        builder.UseSetting("Mail:RetryJitter", "0");
        // Mailbox watchers: notice new mailboxes at once and retry soon (production waits longer).
        // The test mail servers (Postfix, Dovecot) listen on this machine.
        builder.UseSetting("Mailboxes:AllowPrivateHosts", "true");
        builder.UseSetting("Mailboxes:Rescan", "00:00:01");
        builder.UseSetting("Mailboxes:PollInterval", "00:00:02");
        builder.UseSetting("Mailboxes:MaxBackoff", "00:00:05");
        builder.UseSetting("Mailboxes:Timeout", "00:00:20");
        builder.UseSetting("Content:StorePath", contentDir);
        builder.ConfigureServices(s => s.AddSingleton<IStartupFilter, TestRemoteIp>());
        Configure(builder);
    }

    public Task InitializeAsync()
    {
        _ = Server; // start the host (and migrate) before the first test
        return Task.CompletedTask;
    }

    Task IAsyncLifetime.DisposeAsync()
    {
        Dispose();
        if (sqliteDir is not null)
        {
            try { Directory.Delete(sqliteDir, true); } catch (IOException) { }
        }
        try { Directory.Delete(contentDir, true); } catch (IOException) { }
        return Task.CompletedTask;
    }

    /// <summary>A new user (and team unless given) with an HTTP client that carries their API token.</summary>
    public async Task<TestUser> NewUserAsync(string? team = null, Plan plan = Plan.Team, TeamRole role = TeamRole.Member, string? password = null)
    {
        using var scope = Services.CreateScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var email = $"u{Guid.NewGuid():N}"[..12] + "@sender.test";
        var created = await accounts.CreateUserWithTokenAsync(new NewUser(email, team ?? $"team-{Guid.NewGuid():N}", plan, role, password, null), "default");
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", created.ApiToken);
        return new TestUser(created.User.Id, created.Team.Id, email, created.ApiToken, client);
    }

    public const string MailClientAgent = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)";

    /// <summary>A client with no credentials, as a recipient's mail client is (Outlook's user agent unless told).</summary>
    public HttpClient Anonymous(string? userAgent = MailClientAgent)
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        if (userAgent is not null) client.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        return client;
    }

    public async Task WithDbAsync(Func<AppDbContext, Task> f)
    {
        using var scope = Services.CreateScope();
        await f(scope.ServiceProvider.GetRequiredService<AppDbContext>());
    }

    public T WithDb<T>(Func<AppDbContext, T> f)
    {
        using var scope = Services.CreateScope();
        return f(scope.ServiceProvider.GetRequiredService<AppDbContext>());
    }
}

public sealed record TestUser(Guid Id, Guid TeamId, string Email, string Token, HttpClient Client);

public sealed class SqliteApp() : AppFactory(DatabaseProvider.Sqlite);

public sealed class PostgresApp() : AppFactory(DatabaseProvider.Postgres);

/// <summary>Databases on the cluster test.sh started; its admin connection string is in ET_TEST_POSTGRES.</summary>
public static class TestPostgres
{
    public static string AdminConnectionString =>
        Environment.GetEnvironmentVariable("ET_TEST_POSTGRES")
        ?? throw new InvalidOperationException("ET_TEST_POSTGRES is not set: run the tests through ./test.sh, which starts a throwaway PostgreSQL cluster.");

    public static string CreateDatabase()
    {
        var name = $"et_{Guid.NewGuid():N}"[..20];
        using (var conn = new NpgsqlConnection(AdminConnectionString))
        {
            conn.Open();
            using var cmd = new NpgsqlCommand($"CREATE DATABASE {name}", conn);
            cmd.ExecuteNonQuery();
        }
        return new NpgsqlConnectionStringBuilder(AdminConnectionString) { Database = name }.ConnectionString;
    }
}

/// <summary>
/// The in-memory test server has no socket, so no client address; tests name one in X-Test-Remote-Ip. This lives in
/// tests only: the real server never believes a header about the client's address unless a known proxy sent it.
/// </summary>
sealed class TestRemoteIp : IStartupFilter
{
    public Action<IApplicationBuilder> Configure(Action<IApplicationBuilder> next) => app =>
    {
        app.Use((HttpContext http, Func<Task> n) =>
        {
            if (System.Net.IPAddress.TryParse(http.Request.Headers["X-Test-Remote-Ip"], out var ip)) http.Connection.RemoteIpAddress = ip;
            return n();
        });
        next(app);
    };
}

/// <summary>The server on SQLite with these settings given, and nothing else changed: for what a setting does at start.</summary>
public sealed class ConfiguredApp(params (string Key, string Value)[] settings) : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        foreach (var (key, value) in settings) builder.UseSetting(key, value);
    }
}
