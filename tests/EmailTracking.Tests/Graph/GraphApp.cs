using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Graph;

/// <summary>
/// The server in memory with Microsoft 365 configured against <see cref="FakeMicrosoft"/>: MSAL and the Graph SDK
/// talk to the fake over HTTPS (its certificate trusted by the named HttpClient only), and the fake reaches the
/// server's notification endpoints through the in-memory handler. Notifications are the only prompt: the safety poll
/// is far beyond any test.
/// </summary>
/// <param name="settings">More settings, over the ones below (a test's own limits, or no watching).</param>
public sealed class GraphApp(FakeMicrosoft fake, string? database = null, DatabaseProvider provider = DatabaseProvider.Sqlite,
    IReadOnlyDictionary<string, string>? settings = null) : AppFactory(provider)
{
    public FakeMicrosoft Fake => fake;

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        if (database is not null) builder.UseSetting("ConnectionStrings:Default", database);
        builder.UseSetting("Mailboxes:Graph:ClientId", FakeMicrosoft.ClientId);
        builder.UseSetting("Mailboxes:Graph:ClientSecret", FakeMicrosoft.ClientSecret);
        builder.UseSetting("Mailboxes:Graph:Instance", fake.Instance);
        builder.UseSetting("Mailboxes:Graph:Tenant", "common");
        builder.UseSetting("Mailboxes:Graph:InstanceDiscovery", "false");
        builder.UseSetting("Mailboxes:Graph:GraphBaseUrl", fake.GraphBaseUrl);
        builder.UseSetting("Mailboxes:Graph:NotificationUrl", "https://et.test/hooks/graph/notifications");
        builder.UseSetting("Mailboxes:Graph:SafetyPollInterval", "01:00:00");
        builder.UseSetting("Mailboxes:Graph:SentLookupDelay", "00:00:00.200");
        // Small delta pages, so that every round follows @odata.nextLink before it reaches the @odata.deltaLink.
        builder.UseSetting("Mailboxes:Graph:PageSize", "1");
        foreach (var (key, value) in settings ?? new Dictionary<string, string>()) builder.UseSetting(key, value);
        builder.ConfigureServices(s => s.AddHttpClient(GraphConnector.HttpClientName).ConfigurePrimaryHttpMessageHandler(fake.TrustingHandler));
    }

    /// <summary>
    /// A new user who connects the Microsoft account of their own address through the browser flow, and waits until
    /// the watch has subscribed to both folders and read them once.
    /// </summary>
    /// <param name="account">What the test makes of the fake's account before the watch first reads it.</param>
    public async Task<(TestUser User, string Address, Guid MailboxId)> ConnectedUserAsync(Action<FakeMicrosoft.Account>? account = null)
    {
        var user = await NewUserAsync();
        var added = fake.AddAccount(user.Email);
        account?.Invoke(added);
        var callback = await SignInAsync(user, user.Email);
        var done = await user.Client.GetAsync(callback);
        Assert.Equal(HttpStatusCode.Redirect, done.StatusCode);
        Assert.Equal("/mailboxes", done.Headers.Location?.OriginalString);
        var id = await WaitForMailboxAsync(user, m => m.GetProperty("lastSyncAt").ValueKind != JsonValueKind.Null);
        await Eventually.TrueAsync(() => Task.FromResult(fake.SubscriptionsOf(user.Email).Count == 2), "both folders subscribed");
        return (user, user.Email, id);
    }

    /// <summary>/mailboxes/microsoft/connect, then Microsoft's sign-in page: the callback URL Microsoft sends the browser to.</summary>
    public Task<string> SignInAsync(TestUser user, string loginHint) => SignInAsync(user.Client, loginHint);

    public async Task<string> SignInAsync(HttpClient client, string loginHint)
    {
        var start = await client.GetAsync("/mailboxes/microsoft/connect");
        Assert.Equal(HttpStatusCode.Redirect, start.StatusCode);
        var authorize = start.Headers.Location!.OriginalString.Replace("login_hint=", "ignored=", StringComparison.Ordinal) + "&login_hint=" + Uri.EscapeDataString(loginHint);
        Assert.StartsWith(fake.Instance + "common/oauth2/v2.0/authorize?", authorize);
        using var browser = new HttpClient(fake.TrustingHandler());
        var signedIn = await browser.GetAsync(authorize);
        Assert.Equal(HttpStatusCode.Redirect, signedIn.StatusCode);
        var callback = signedIn.Headers.Location!.OriginalString;
        Assert.StartsWith("http://localhost/mailboxes/microsoft/callback?", callback);
        return TestApi.Path(callback);
    }

    public async Task<Guid> WaitForMailboxAsync(TestUser user, Func<JsonElement, bool> condition)
    {
        Guid id = default;
        var last = "";
        await Eventually.TrueAsync(async () =>
        {
            var list = await user.Client.GetJsonAsync("/api/mailboxes");
            last = list.ToString();
            var graph = list.EnumerateArray().FirstOrDefault(m => m.GetProperty("kind").GetString() == "graph");
            if (graph.ValueKind != JsonValueKind.Object || !condition(graph)) return false;
            id = graph.GetProperty("id").GetGuid();
            return true;
        }, () => "the Microsoft mailbox to reach the expected state; it is " + last);
        return id;
    }

    public MessageCopy Copy(Guid copyId) => WithDb(db => db.Copies.AsNoTracking().First(c => c.Id == copyId));
}

public static class WebSession
{
    /// <summary>A cookie-carrying client signed in through the login page, as a browser is.</summary>
    public static async Task<HttpClient> SignInAsync(AppFactory app, string email, string password)
    {
        var browser = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var login = await browser.GetStringAsync("/login");
        var token = System.Text.RegularExpressions.Regex.Match(login, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = email, ["Password"] = password, ["__RequestVerificationToken"] = token,
        }));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return browser;
    }
}

public abstract class GraphFixture(DatabaseProvider provider) : IAsyncLifetime
{
    public FakeMicrosoft Fake { get; private set; } = null!;
    public GraphApp App { get; private set; } = null!;
    public DatabaseProvider Provider => provider;

    public async Task InitializeAsync()
    {
        Fake = await FakeMicrosoft.StartAsync();
        App = new GraphApp(Fake, provider: provider);
        await App.InitializeAsync();
        Fake.AppHandler = () => App.Server.CreateHandler();
    }

    public async Task DisposeAsync()
    {
        await ((IAsyncLifetime)App).DisposeAsync();
        await Fake.DisposeAsync();
    }
}

public sealed class GraphSqliteFixture() : GraphFixture(DatabaseProvider.Sqlite);

public sealed class GraphPostgresFixture() : GraphFixture(DatabaseProvider.Postgres);

public static class Eventually
{
    public static Task TrueAsync(Func<Task<bool>> condition, string what, TimeSpan? within = null) => TrueAsync(condition, () => what, within);

    public static async Task TrueAsync(Func<Task<bool>> condition, Func<string> what, TimeSpan? within = null)
    {
        var deadline = DateTime.UtcNow + (within ?? TimeSpan.FromSeconds(30));
        while (!await condition())
        {
            Assert.True(DateTime.UtcNow < deadline, $"timed out waiting for {what()}");
            await Task.Delay(100);
        }
    }
}
