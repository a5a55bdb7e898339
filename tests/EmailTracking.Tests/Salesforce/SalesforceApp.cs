using System.Security.Cryptography;
using EmailTracking.Data;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Tests.Salesforce;

/// <summary>
/// The server with a Salesforce connected app configured against <see cref="FakeSalesforce"/>: consumer key and
/// secret for the web-server flow, and a private key whose public half the fake holds as the uploaded certificate.
/// </summary>
public abstract class SalesforceApp : AppFactory
{
    public const string JwtUser = "integration@org.test";

    /// <summary>The teams <c>Salesforce:JwtTeams</c> names here (by name); <see cref="NewJwtAdminAsync"/> hands each out once.</summary>
    public static readonly string[] JwtTeams = [.. Enumerable.Range(1, 40).Select(n => $"jwt-team-{n:00}")];
    int jwtTeamsUsed;

    public FakeSalesforce Salesforce { get; } = FakeSalesforce.Start();
    /// <summary>What the server logs at Warning and above.</summary>
    public LogCollector Log { get; } = new();
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
        for (var i = 0; i < JwtTeams.Length; i++) builder.UseSetting($"Salesforce:JwtTeams:{i}", JwtTeams[i]);
        builder.UseSetting("Salesforce:Timeout", "00:00:05");
        builder.ConfigureLogging(l => l.AddProvider(Log));
        // The outbox worker retries quickly here (production waits 30 s, doubling).
        builder.UseSetting("Outbox:PollInterval", "00:00:00.200");
        builder.UseSetting("Outbox:FirstBackoff", "00:00:00.200");
        builder.UseSetting("Outbox:MaxBackoff", "00:00:00.500");
        builder.UseSetting("Outbox:MaxAttempts", "1000");
    }

    /// <summary>The admin of a new team that <c>Salesforce:JwtTeams</c> names, so it may connect with the JWT bearer flow.</summary>
    public Task<TestUser> NewJwtAdminAsync(string? password = null)
    {
        var n = Interlocked.Increment(ref jwtTeamsUsed);
        if (n > JwtTeams.Length) throw new InvalidOperationException($"More than {JwtTeams.Length} teams connect with the JWT flow: name more in {nameof(JwtTeams)}.");
        return NewUserAsync(team: JwtTeams[n - 1], role: TeamRole.Admin, password: password);
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
