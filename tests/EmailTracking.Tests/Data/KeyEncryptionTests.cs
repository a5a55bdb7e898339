using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Data;

/// <summary>A server told to encrypt its Data Protection keys with a certificate (a PKCS#12 file made for the test).</summary>
public sealed class KeyEncryptionApp : AppFactory
{
    public string CertificatePath { get; }

    public KeyEncryptionApp() : base(DatabaseProvider.Sqlite)
    {
        using var rsa = RSA.Create(2048);
        var request = new CertificateRequest("CN=EmailTracking Data Protection (test)", rsa, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        using var certificate = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddYears(1));
        CertificatePath = Path.Combine(Directory.CreateTempSubdirectory("et-dp-").FullName, "keys.pfx");
        File.WriteAllBytes(CertificatePath, certificate.Export(X509ContentType.Pkcs12, "test-password"));
    }

    protected override void Configure(IWebHostBuilder builder)
    {
        builder.UseSetting("DataProtection:CertificatePath", CertificatePath);
        builder.UseSetting("DataProtection:CertificatePassword", "test-password");
    }
}

/// <summary>A server whose key certificate cannot be loaded.</summary>
public sealed class MissingKeyCertificateApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) =>
        builder.UseSetting("DataProtection:CertificatePath", Path.Combine(Path.GetTempPath(), $"et-no-such-{Guid.NewGuid():N}.pfx"));
}

public sealed class KeyEncryptionTests(KeyEncryptionApp app) : IClassFixture<KeyEncryptionApp>
{
    [Fact]
    public async Task With_a_certificate_the_stored_keys_are_encrypted_and_still_work()
    {
        // Signing in makes the server protect a cookie, which creates the key ring.
        var user = await app.NewUserAsync();
        Assert.Equal(System.Net.HttpStatusCode.OK, (await user.Client.GetAsync("/api/me")).StatusCode);
        using (var scope = app.Services.CreateScope())
        {
            var protector = scope.ServiceProvider.GetRequiredService<IDataProtectionProvider>().CreateProtector("test");
            Assert.Equal("secret", protector.Unprotect(protector.Protect("secret")));
        }

        var keys = app.WithDb(db => db.DataProtectionKeys.Select(k => k.Xml ?? "").ToList());
        Assert.NotEmpty(keys);
        Assert.All(keys, xml =>
        {
            // Encrypted, the key's secret is an <encryptedSecret> (XML encryption to the certificate); in the clear it
            // would be the master key's <value>.
            Assert.Contains("<encryptedSecret", xml);
            Assert.Contains("EncryptedData", xml);
            Assert.DoesNotContain("<value>", xml);
        });
    }

    [Fact]
    public void A_certificate_that_cannot_be_loaded_stops_the_start_naming_the_setting()
    {
        using var broken = new MissingKeyCertificateApp();
        var ex = Assert.ThrowsAny<Exception>(() => broken.CreateClient());
        var all = string.Join(" | ", Flatten(ex).Select(e => e.Message));
        Assert.Contains("DataProtection:CertificatePath", all);
    }

    static IEnumerable<Exception> Flatten(Exception e)
    {
        for (Exception? x = e; x is not null; x = x.InnerException)
        {
            yield return x;
            if (x is AggregateException a) foreach (var inner in a.InnerExceptions.SelectMany(Flatten)) yield return inner;
        }
    }
}
