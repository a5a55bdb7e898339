using System.Diagnostics;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Infrastructure;

/// <summary>
/// The real server as its own process (`dotnet EmailTracking.Server.dll`) on a free loopback port, for tests that
/// kill it, browse it or load it. Its output goes to a log file that failures print.
/// </summary>
/// <remarks>
/// Unless a test names a port, the server binds port 0 and the test reads the port it got from the server's own
/// "Now listening on" line: a port found free beforehand could be taken (by another test's server, say) before the
/// server binds it, and the test would then talk to the wrong server.
/// </remarks>
public sealed class ServerProcess : IAsyncDisposable
{
    readonly Process process;
    readonly StringBuilder output = new();

    ServerProcess(Process process, string baseUrl)
    {
        this.process = process;
        BaseUrl = baseUrl;
        process.OutputDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { lock (output) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
    }

    public string BaseUrl { get; private set; }
    public bool HasExited => process.HasExited;

    public string Output
    {
        get { lock (output) return output.ToString(); }
    }

    public static string RepoRoot { get; } = FindRepoRoot();

    static string FindRepoRoot()
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            if (File.Exists(Path.Combine(d.FullName, "EmailTracking.sln"))) return d.FullName;
        }
        throw new InvalidOperationException("EmailTracking.sln not found above " + AppContext.BaseDirectory);
    }

    /// <summary>Debug or Release: whatever this test assembly was built as (the server was built alongside).</summary>
#if DEBUG
    public const string Configuration = "Debug";
#else
    public const string Configuration = "Release";
#endif

    public static string BuiltDll(string project, string assembly) =>
        Path.Combine(RepoRoot, "src", project, "bin", Configuration, "net10.0", assembly + ".dll");

    /// <param name="workDir">The server's current directory (its data/ folder lives there).</param>
    /// <param name="migrated">
    /// Start on a SQLite database that already has the schema (a copy of one migrated once per run), where the test is
    /// about what the server does, not about its first start: migrating an empty file costs a second of a core, and
    /// browser tests start a server for each test.
    /// </param>
    public static async Task<ServerProcess> StartAsync(string workDir, IDictionary<string, string> settings, int? port = null, bool migrated = false)
    {
        if (migrated) await CopyMigratedAsync(settings);
        var url = $"http://127.0.0.1:{port ?? 0}";
        var dll = BuiltDll("EmailTracking.Server", "EmailTracking.Server");
        var psi = new ProcessStartInfo("dotnet", [dll, "--urls", url])
        {
            WorkingDirectory = workDir,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        psi.Environment["ASPNETCORE_ENVIRONMENT"] = "Production";
        psi.Environment["DOTNET_CLI_TELEMETRY_OPTOUT"] = "1";
        psi.Environment["Tracking__AppleRelay__Directory"] = Classification.SharedData.Path("apple-relay");
        psi.Environment["Logging__LogLevel__Default"] = "Warning";
        // Its "Now listening on" line tells the port it bound.
        psi.Environment["Logging__LogLevel__Microsoft.Hosting.Lifetime"] = "Information";
        psi.Environment["Logging__LogLevel__Microsoft.EntityFrameworkCore.Database.Command"] = "Critical";
        foreach (var (k, v) in settings) psi.Environment[k] = v;
        var server = new ServerProcess(Process.Start(psi)!, url);
        try
        {
            var until = DateTime.UtcNow + TimeSpan.FromSeconds(60);
            if (port is null) await server.WaitListeningAsync(until);
            await server.WaitHealthyAsync(until);
        }
        catch
        {
            await server.DisposeAsync();
            throw;
        }
        return server;
    }

    static readonly Lazy<Task<string>> MigratedTemplate = new(async () =>
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("et-migrated-").FullName, "template.db");
        await using var provider = ServerServices(new Dictionary<string, string>
        {
            ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={file};Pooling=False",
        });
        // The server's own first-run step: the migrations, then write-ahead logging (kept in the file).
        await DataExtensions.MigrateAsync(provider);
        AppDomain.CurrentDomain.ProcessExit += (_, _) =>
        {
            try { Directory.Delete(Path.GetDirectoryName(file)!, true); } catch (IOException) { }
        };
        return file;
    });

    /// <summary>Puts a copy of the migrated template where the settings' SQLite database is, if there is none yet.</summary>
    static async Task CopyMigratedAsync(IDictionary<string, string> settings)
    {
        if (settings.TryGetValue("Database__Provider", out var provider) && !provider.Equals("Sqlite", StringComparison.OrdinalIgnoreCase))
            throw new ArgumentException("Only a SQLite database starts from the migrated template.", nameof(settings));
        var target = new Microsoft.Data.Sqlite.SqliteConnectionStringBuilder(settings["ConnectionStrings__Default"]).DataSource;
        if (File.Exists(target)) return;
        File.Copy(await MigratedTemplate.Value, target);
    }

    static readonly System.Text.RegularExpressions.Regex Listening = new(@"Now listening on: (http://127\.0\.0\.1:[0-9]+)");

    async Task WaitListeningAsync(DateTime until)
    {
        while (DateTime.UtcNow < until)
        {
            if (Listening.Match(Output) is { Success: true } m)
            {
                BaseUrl = m.Groups[1].Value;
                return;
            }
            if (process.HasExited) throw new InvalidOperationException("The server exited at start:\n" + Output);
            await Task.Delay(50);
        }
        throw new TimeoutException("The server did not say where it listens:\n" + Output);
    }

    async Task WaitHealthyAsync(DateTime until)
    {
        using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(2) };
        while (DateTime.UtcNow < until)
        {
            if (process.HasExited) throw new InvalidOperationException("The server exited at start:\n" + Output);
            try
            {
                if ((await http.GetAsync(BaseUrl + "/healthz")).IsSuccessStatusCode) return;
            }
            catch (HttpRequestException) { }
            catch (TaskCanceledException) { }
            await Task.Delay(200);
        }
        throw new TimeoutException("The server did not become healthy:\n" + Output);
    }

    /// <summary>A client of this server's API with a personal API token.</summary>
    public HttpClient Api(string token)
    {
        var api = new HttpClient { BaseAddress = new Uri(BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return api;
    }

    /// <summary>One value from a SQLite database file (beside a server, not through it).</summary>
    public static object? SqliteScalar(string dbFile, string sql)
    {
        using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={dbFile};Pooling=False");
        c.Open();
        using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return cmd.ExecuteScalar();
    }

    /// <summary>SIGKILL: no shutdown code runs.</summary>
    public void Kill()
    {
        process.Kill(entireProcessTree: true);
        process.WaitForExit(10_000);
    }

    public async ValueTask DisposeAsync()
    {
        if (!process.HasExited)
        {
            process.Kill(entireProcessTree: true);
            await process.WaitForExitAsync();
        }
        process.Dispose();
    }

    /// <summary>
    /// What `et users add` does (the same <see cref="AccountService"/> call on the same
    /// database), in this process: a test that needs a user beside its server skips starting .NET afresh for it, a
    /// second or more of a core each time. `et` itself is tested by the CLI tests. Returns the new user's API token.
    /// </summary>
    /// <param name="settings">The server's settings (Database__Provider, ConnectionStrings__Default), as the server got them.</param>
    public static async Task<string> AddUserAsync(IDictionary<string, string> settings, string email, string team, string plan, string? password,
        bool ownPassword = false)
    {
        await using var provider = ServerServices(settings);
        await using var scope = provider.CreateAsyncScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var created = await accounts.CreateUserWithTokenAsync(new NewUser(email, team,
            Enum.Parse<Plan>(plan, ignoreCase: true), TeamRole.Member, password, null,
            PasswordSetByOther: !ownPassword), "default", CancellationToken.None);
        // As `et` ends, so the database file is left to the server alone (a pooled SQLite connection would keep it open).
        if (scope.ServiceProvider.GetRequiredService<AppDbContext>().Database.GetDbConnection() is Microsoft.Data.Sqlite.SqliteConnection sqlite)
            Microsoft.Data.Sqlite.SqliteConnection.ClearPool(sqlite);
        return created.ApiToken;
    }

    /// <summary>The server's database and account services, configured as `et` configures them, from the server's settings.</summary>
    static ServiceProvider ServerServices(IDictionary<string, string> settings)
    {
        var config = new ConfigurationBuilder()
            .AddInMemoryCollection(settings.Select(s => KeyValuePair.Create(s.Key.Replace("__", ":", StringComparison.Ordinal), (string?)s.Value)))
            .Build();
        var services = new ServiceCollection();
        services.AddSingleton<IConfiguration>(config);
        services.AddLogging();
        services.AddSingleton(TimeProvider.System);
        services.AddAppDatabase(config);
        services.AddDataProtection();
        services.AddAccounts();
        return services.BuildServiceProvider();
    }

    /// <summary>Runs `et` with the given settings and returns (exit code, stdout, stderr).</summary>
    public static Task<(int Code, string Out, string Err)> RunCliAsync(string workDir, IDictionary<string, string> settings, params string[] args) =>
        RunCliWithInputAsync(workDir, settings, null, args);

    /// <summary>Runs et with <paramref name="input"/> on its standard input (none: an empty one).</summary>
    public static async Task<(int Code, string Out, string Err)> RunCliWithInputAsync(string workDir, IDictionary<string, string> settings, string? input,
        params string[] args)
    {
        var psi = new ProcessStartInfo("dotnet", [BuiltDll("EmailTracking.Cli", "et"), .. args])
        {
            WorkingDirectory = workDir,
            RedirectStandardInput = true,
            RedirectStandardOutput = true,
            RedirectStandardError = true,
            UseShellExecute = false,
        };
        foreach (var (k, v) in settings) psi.Environment[k] = v;
        using var p = Process.Start(psi)!;
        if (input is not null) await p.StandardInput.WriteAsync(input);
        p.StandardInput.Close();
        var stdout = p.StandardOutput.ReadToEndAsync();
        var stderr = p.StandardError.ReadToEndAsync();
        await p.WaitForExitAsync();
        return (p.ExitCode, await stdout, await stderr);
    }
}
