using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// Browser tests of the server's pages: the real server process on its own SQLite database in a fresh folder, and
/// Chromium.
/// </summary>
/// <param name="expectTimeoutMs">How long Playwright's expectations wait: live updates go through a real server and a
/// real browser on a small shared machine.</param>
public abstract class ServerBrowserTest(string folderPrefix, int expectTimeoutMs = 15_000) : IAsyncLifetime
{
    protected readonly string dir = Directory.CreateTempSubdirectory(folderPrefix).FullName;
    protected ServerProcess server = null!;
    protected IBrowser browser = null!;
    protected string Db => Path.Combine(dir, "web.db");
    protected virtual Dictionary<string, string> Settings => new() { ["Database__Provider"] = "Sqlite", ["ConnectionStrings__Default"] = $"Data Source={Db}" };

    public async Task InitializeAsync()
    {
        Assertions.SetDefaultExpectTimeout(expectTimeoutMs);
        server = await ServerProcess.StartAsync(dir, Settings, migrated: true);
        browser = await Chromium.SharedAsync();
    }

    /// <remarks>
    /// Whatever did not start (Chromium missing, say), the server process is stopped: left running, it keeps the files
    /// it inherited open, the lock a test run was started under (flock) among them, and every run waiting on it waits.
    /// </remarks>
    public virtual async Task DisposeAsync()
    {
        try
        {
            await Chromium.ReleaseAsync(browser);
        }
        finally
        {
            if (server is not null) await server.DisposeAsync();
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }

    /// <summary>A team-plan user made as `et users add` makes one (signing in with <paramref name="password"/>), and an API client with their token.</summary>
    protected async Task<HttpClient> NewTeamUserAsync(string email, string password, string team = "Encom")
    {
        var token = await ServerProcess.AddUserAsync(Settings, email, team, "team", password, ownPassword: true);
        var api = new HttpClient { BaseAddress = new Uri(server.BaseUrl) };
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token);
        return api;
    }

    /// <summary>A new page in a context of <paramref name="options"/>, signed in through the sign-in form; <paramref name="watch"/>
    /// is attached to the page first (a test's console and error listeners).</summary>
    protected async Task<IPage> SignedInPageAsync(BrowserNewContextOptions options, string email, string password, Action<IPage>? watch = null)
    {
        var context = await browser.NewContextAsync(options);
        var page = await context.NewPageAsync();
        watch?.Invoke(page);
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        return page;
    }

    protected AppDbContext OpenDb()
    {
        var b = new DbContextOptionsBuilder<AppDbContext>();
        DatabaseSetup.Configure(b, DatabaseProvider.Sqlite, $"Data Source={Db}");
        return new AppDbContext(b.Options);
    }
}
