using System.Net.Http.Headers;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Outlook;

/// <summary>The server with Microsoft sign-in configured against a <see cref="TestIssuer"/> (multi-tenant: common).</summary>
public abstract class OutlookApp(DatabaseProvider provider) : AppFactory(provider)
{
    public TestIssuer Issuer { get; } = TestIssuer.StartAsync().GetAwaiter().GetResult();

    protected override void Configure(IWebHostBuilder builder)
    {
        foreach (var (key, value) in Issuer.Settings()) builder.UseSetting(key, value);
    }

    /// <summary>A client that sends this bearer token (a Microsoft access token, or anything a test makes).</summary>
    public HttpClient WithBearer(string token)
    {
        var client = CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>A client with a valid Microsoft token for this address (as the task pane would have).</summary>
    public HttpClient AsMicrosoftUser(string address, TestIssuer.TokenSpec? spec = null) => WithBearer(Issuer.MintAccessToken(address, spec));

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Issuer.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

public sealed class OutlookSqliteApp() : OutlookApp(DatabaseProvider.Sqlite);

public sealed class OutlookPostgresApp() : OutlookApp(DatabaseProvider.Postgres);
