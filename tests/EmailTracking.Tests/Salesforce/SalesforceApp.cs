using System.Security.Cryptography;
using EmailTracking.Data;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Salesforce;

/// <summary>
/// The server with a Salesforce connected app configured against <see cref="FakeSalesforce"/>: consumer key and
/// secret for the web-server flow, and a private key whose public half the fake holds as the uploaded certificate.
/// </summary>
public abstract class SalesforceApp : AppFactory
{
    public const string JwtUser = "integration@org.test";

    public FakeSalesforce Salesforce { get; } = FakeSalesforce.Start();
    readonly RSA jwtKey = RSA.Create(2048);

    protected SalesforceApp(DatabaseProvider provider) : base(provider)
    {
        var certificate = RSA.Create();
        certificate.ImportParameters(jwtKey.ExportParameters(false));
        Salesforce.CertificateKey = certificate;
        Salesforce.PreAuthorised.Add(JwtUser);
    }

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("Salesforce:LoginUrl", Salesforce.BaseUrl);
        builder.UseSetting("Salesforce:ClientId", FakeSalesforce.ClientId);
        builder.UseSetting("Salesforce:ClientSecret", FakeSalesforce.ClientSecret);
        builder.UseSetting("Salesforce:JwtPrivateKeyPem", jwtKey.ExportPkcs8PrivateKeyPem());
        builder.UseSetting("Salesforce:JwtUsername", JwtUser);
        builder.UseSetting("Salesforce:Timeout", "00:00:05");
        // The outbox worker retries quickly here (production waits 30 s, doubling).
        builder.UseSetting("Outbox:PollInterval", "00:00:00.200");
        builder.UseSetting("Outbox:FirstBackoff", "00:00:00.200");
        builder.UseSetting("Outbox:MaxBackoff", "00:00:00.500");
        builder.UseSetting("Outbox:MaxAttempts", "1000");
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing)
        {
            Salesforce.DisposeAsync().AsTask().GetAwaiter().GetResult();
            jwtKey.Dispose();
        }
    }
}

public sealed class SalesforceSqliteApp() : SalesforceApp(DatabaseProvider.Sqlite);

public sealed class SalesforcePostgresApp() : SalesforceApp(DatabaseProvider.Postgres);
