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

    /// <summary>The AzureAd:TenantId the server is configured with.</summary>
    protected virtual string Tenant => "common";

    /// <summary>More settings a variant adds.</summary>
    protected virtual IEnumerable<KeyValuePair<string, string>> MoreSettings => [];

    protected override void Configure(IWebHostBuilder builder)
    {
        foreach (var (key, value) in Issuer.Settings(Tenant).Concat(MoreSettings)) builder.UseSetting(key, value);
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

/// <summary>Configured for one organisation: TenantId is that tenant's id.</summary>
public sealed class OutlookSingleTenantApp() : OutlookApp(DatabaseProvider.Sqlite)
{
    protected override string Tenant => TestIssuer.TenantId;
}

/// <summary>Multi-tenant, but only one tenant's users allowed (AzureAd:AllowedTenants).</summary>
public sealed class OutlookAllowedTenantsApp() : OutlookApp(DatabaseProvider.Sqlite)
{
    protected override IEnumerable<KeyValuePair<string, string>> MoreSettings => [new("AzureAd:AllowedTenants:0", TestIssuer.TenantId)];
}
