using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace EmailTracking.Tests.Outlook;

/// <summary>
/// A local stand-in for the Microsoft identity platform's v2.0 token issuer, on a loopback port (plain HTTP, so the
/// server under test sets <c>AzureAd:RequireHttpsMetadata=false</c> — see <see cref="Settings"/>). It serves what an API
/// validating Microsoft access tokens reads, in Entra's formats: <c>/{tenant}/v2.0/.well-known/openid-configuration</c>
/// (for <c>common</c>, <c>organizations</c> and <c>consumers</c> the issuer is the template
/// <c>{base}/{tenantid}/v2.0</c>, for a tenant id its own issuer) and the JWKS at <c>/{tenant}/discovery/v2.0/keys</c>,
/// whose RSA key names its issuer as Entra's keys do. <see cref="MintAccessToken"/> makes access tokens as Entra issues
/// them for an app's exposed scope (v2.0: <c>aud</c> = the client id, <c>scp</c>, <c>tid</c>, <c>preferred_username</c>).
/// The browser tests of the Outlook task pane may start one beside a server process and hand tokens to the pane.
/// </summary>
public sealed class TestIssuer : IAsyncDisposable
{
    /// <summary>The app registration the server is configured with (AzureAd:ClientId).</summary>
    public const string ClientId = "0c9a4f7e-3b2d-4e8a-9f61-5d7c2b1a0e93";

    /// <summary>The tenant tokens come from unless a test names another.</summary>
    public const string TenantId = "4b1e7c2d-9a3f-4d6e-8b5c-1f2a3e4d5c6b";

    /// <summary>Another organisation's tenant.</summary>
    public const string OtherTenantId = "a7d3e9f1-2c4b-4a8e-b6d5-3e1f9c7a2b40";

    public const string Scope = "access_as_user";

    const string KeyId = "et-test-key-1";

    readonly RSA rsa = RSA.Create(2048);
    WebApplication app = null!;

    public string BaseUrl { get; private set; } = "";

    /// <summary>AzureAd:Instance for the server under test.</summary>
    public string Instance => BaseUrl + "/";

    /// <summary>The key tokens are signed with (its public half is in the JWKS).</summary>
    public RsaSecurityKey SigningKey => new(rsa) { KeyId = KeyId };

    public string IssuerFor(string tenantId) => $"{BaseUrl}/{tenantId}/v2.0";

    TestIssuer() { }

    public static async Task<TestIssuer> StartAsync()
    {
        var issuer = new TestIssuer();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0));
        var web = builder.Build();
        web.MapGet("/{tenant}/v2.0/.well-known/openid-configuration", (string tenant) => Results.Json(issuer.Metadata(tenant)));
        web.MapGet("/{tenant}/discovery/v2.0/keys", (string tenant) => Results.Json(issuer.Keys()));
        issuer.app = web;
        await web.StartAsync();
        issuer.BaseUrl = web.Urls.First().TrimEnd('/');
        return issuer;
    }

    /// <summary>The server's settings for this issuer (multi-tenant: TenantId common).</summary>
    public IReadOnlyDictionary<string, string> Settings(string tenant = "common") => new Dictionary<string, string>
    {
        ["AzureAd:Instance"] = Instance,
        ["AzureAd:TenantId"] = tenant,
        ["AzureAd:ClientId"] = ClientId,
        // Only because this issuer is plain HTTP on loopback; production keeps the default (HTTPS required).
        ["AzureAd:RequireHttpsMetadata"] = "false",
    };

    JsonObject Metadata(string tenant)
    {
        var multi = tenant is "common" or "organizations" or "consumers";
        return new JsonObject
        {
            ["issuer"] = multi ? $"{BaseUrl}/{{tenantid}}/v2.0" : IssuerFor(tenant),
            ["jwks_uri"] = $"{BaseUrl}/{tenant}/discovery/v2.0/keys",
            ["authorization_endpoint"] = $"{BaseUrl}/{tenant}/oauth2/v2.0/authorize",
            ["token_endpoint"] = $"{BaseUrl}/{tenant}/oauth2/v2.0/token",
            ["id_token_signing_alg_values_supported"] = new JsonArray("RS256"),
            ["response_types_supported"] = new JsonArray("code", "id_token", "code id_token", "id_token token"),
            ["subject_types_supported"] = new JsonArray("pairwise"),
            ["scopes_supported"] = new JsonArray("openid", "profile", "email", "offline_access"),
            ["claims_supported"] = new JsonArray("sub", "iss", "aud", "exp", "iat", "preferred_username", "name", "tid", "ver"),
        };
    }

    JsonObject Keys()
    {
        var p = rsa.ExportParameters(false);
        return new JsonObject
        {
            ["keys"] = new JsonArray(new JsonObject
            {
                ["kty"] = "RSA",
                ["use"] = "sig",
                ["kid"] = KeyId,
                ["n"] = Base64UrlEncoder.Encode(p.Modulus),
                ["e"] = Base64UrlEncoder.Encode(p.Exponent),
                // Entra's keys name the issuer they sign for (template for the multi-tenant endpoints).
                ["issuer"] = $"{BaseUrl}/{{tenantid}}/v2.0",
            }),
        };
    }

    /// <summary>What a token says; every field defaults to a valid token for <see cref="ClientId"/>.</summary>
    public sealed record TokenSpec
    {
        public string? Audience { get; init; }
        public string Tenant { get; init; } = TenantId;
        /// <summary>Overrides the issuer (default: this issuer's URL for <see cref="Tenant"/>).</summary>
        public string? Issuer { get; init; }
        public string? Scope { get; init; } = TestIssuer.Scope;
        public TimeSpan Lifetime { get; init; } = TimeSpan.FromHours(1);
        /// <summary>When the token was issued (default: now).</summary>
        public DateTimeOffset? IssuedAt { get; init; }
        /// <summary>Sign with another key under the same key id (a forger's token).</summary>
        public RSA? ForgedWith { get; init; }
        public string AddressClaim { get; init; } = "preferred_username";
        public Dictionary<string, object> Extra { get; init; } = [];
    }

    /// <summary>The object id of the test account with this sign-in address in this tenant.</summary>
    public static string StableObjectId(string tenant, string address) =>
        new Guid(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(tenant + "|" + address.ToLowerInvariant()))[..16]).ToString();

    /// <summary>A v2.0 access token for the user with this sign-in address.</summary>
    public string MintAccessToken(string address, TokenSpec? spec = null)
    {
        spec ??= new TokenSpec();
        var issued = spec.IssuedAt ?? DateTimeOffset.UtcNow;
        var claims = new Dictionary<string, object>
        {
            ["ver"] = "2.0",
            ["tid"] = spec.Tenant,
            // Entra gives each account one object id for good: the same for every token of the same person.
            ["oid"] = StableObjectId(spec.Tenant, address),
            ["sub"] = Guid.NewGuid().ToString("N"),
            ["azp"] = Guid.NewGuid().ToString(),
            ["name"] = address,
            [spec.AddressClaim] = address,
        };
        if (spec.Scope is not null) claims["scp"] = spec.Scope;
        foreach (var (k, v) in spec.Extra) claims[k] = v;
        var key = spec.ForgedWith is null ? SigningKey : new RsaSecurityKey(spec.ForgedWith) { KeyId = KeyId };
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = spec.Issuer ?? IssuerFor(spec.Tenant),
            Audience = spec.Audience ?? ClientId,
            IssuedAt = issued.UtcDateTime,
            NotBefore = issued.UtcDateTime,
            Expires = (issued + spec.Lifetime).UtcDateTime,
            Claims = claims,
            SigningCredentials = new SigningCredentials(key, SecurityAlgorithms.RsaSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    /// <summary>The same claims with <c>alg: none</c> and no signature.</summary>
    public string MintUnsigned(string address)
    {
        var signed = MintAccessToken(address);
        var payload = signed.Split('.')[1];
        var header = Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes("{\"alg\":\"none\",\"typ\":\"JWT\"}"));
        return $"{header}.{payload}.";
    }

    /// <summary>A signed token whose payload was then changed (to name another address); the signature no longer fits.</summary>
    public string MintTampered(string signedFor, string claimedAddress)
    {
        var parts = MintAccessToken(signedFor).Split('.');
        var json = Encoding.UTF8.GetString(Base64UrlEncoder.DecodeBytes(parts[1])).Replace(signedFor, claimedAddress, StringComparison.Ordinal);
        return $"{parts[0]}.{Base64UrlEncoder.Encode(Encoding.UTF8.GetBytes(json))}.{parts[2]}";
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        rsa.Dispose();
    }
}
