using System.Collections.Concurrent;
using System.Net;
using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Serialization;
using EmailTracking.Data;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace EmailTracking.Server.Salesforce;

/// <summary>What a connection keeps encrypted: the refresh token (web-server flow) or the user it signs JWTs for.</summary>
/// <param name="Grant">
/// Which connect made these credentials: a new one at each connect, kept when Salesforce rotates the refresh token. An
/// instance whose cached access token came from another grant knows the team connected again (perhaps as another user
/// or to another org) on some instance. Null for credentials stored before it existed.
/// </param>
public sealed record SalesforceSecret(string? RefreshToken, string? Username, Guid? Grant = null);

/// <summary>The token endpoint's answer (<c>/services/oauth2/token</c>): documented fields only.</summary>
public sealed record SalesforceTokenResponse(
    [property: JsonPropertyName("access_token")] string? AccessToken,
    [property: JsonPropertyName("refresh_token")] string? RefreshToken,
    [property: JsonPropertyName("instance_url")] string? InstanceUrl,
    [property: JsonPropertyName("id")] string? Id,
    [property: JsonPropertyName("scope")] string? Scope,
    [property: JsonPropertyName("token_type")] string? TokenType);

/// <summary>
/// The token endpoint refused (<c>{"error","error_description"}</c>) or could not be reached. <see cref="Transient"/>
/// failures (network, 5xx, unreadable answers) are tried again later; <see cref="ServerConfiguration"/> ones are the
/// operator's to fix; the others (invalid_grant: a refresh token revoked or expired, a user no longer pre-authorised)
/// need an admin to reconnect.
/// </summary>
public sealed class SalesforceAuthException(string error, string? description, bool transient, Exception? inner = null)
    : Exception($"Salesforce sign-in failed: {error}{(string.IsNullOrEmpty(description) ? "" : " (" + description + ")")}", inner)
{
    public string Error { get; } = error;
    public string? Description { get; } = description;
    public bool Transient { get; } = transient;

    /// <summary>
    /// Salesforce refused the server's own credentials, the same for every team: the connected app's consumer key or
    /// secret (invalid_client, invalid_client_id; a secret renewed on the connected app and not in the settings), or the
    /// JWT key cannot be read. No team's grant is at fault, and reconnecting would not help.
    /// </summary>
    public bool ServerConfiguration => Error is "invalid_client" or "invalid_client_id" or "invalid_key";
}

/// <summary>
/// OAuth 2.0 with Salesforce: the authorize URL and code exchange of the web-server flow, refresh-token grants, the JWT
/// bearer grant signed with the connected app's key, revocation; and an in-memory cache of each connection's access
/// token, dropped when Salesforce says the session is no longer valid.
/// </summary>
public sealed class SalesforceAuth(IHttpClientFactory httpFactory, IOptions<SalesforceOptions> options, IDataProtectionProvider dp, TimeProvider clock)
{
    public const string HttpClientName = "salesforce";
    public const string JwtBearerGrant = "urn:ietf:params:oauth:grant-type:jwt-bearer";

    readonly IDataProtector protector = dp.CreateProtector("EmailTracking.Salesforce.Secret.v1");
    readonly ConcurrentDictionary<Guid, SalesforceAccess> tokens = new();
    readonly ConcurrentDictionary<Guid, (bool On, DateTimeOffset Until)> sharedActivities = new();
    /// <summary>The stored credentials the two caches above were last checked against, and their grant.</summary>
    readonly ConcurrentDictionary<Guid, (string ProtectedSecret, Guid? Grant)> grants = new();

    long serverErrorReportedAt = long.MinValue;

    /// <summary>
    /// Whether to log (again) that Salesforce refuses the server's own credentials: at most once an hour on an instance,
    /// not once for each delivery that waits for the setting to be fixed.
    /// </summary>
    public bool ReportServerError()
    {
        var now = clock.GetUtcNow().ToUnixTimeSeconds();
        var last = Interlocked.Read(ref serverErrorReportedAt);
        return (last == long.MinValue || now - last >= 3600) && Interlocked.CompareExchange(ref serverErrorReportedAt, now, last) == last;
    }

    /// <summary>How long what a describe said about an org's Shared Activities is trusted (an admin may turn it on meanwhile).</summary>
    public static readonly TimeSpan OrgFeaturesLifetime = TimeSpan.FromHours(1);

    public SalesforceOptions Options => options.Value;

    public string Protect(SalesforceSecret secret) => protector.Protect(JsonSerializer.Serialize(secret));

    /// <summary>Null when the secret cannot be decrypted (keys lost): the connection must be made again.</summary>
    public SalesforceSecret? Unprotect(string protectedSecret)
    {
        try
        {
            return JsonSerializer.Deserialize<SalesforceSecret>(protector.Unprotect(protectedSecret));
        }
        catch (Exception ex) when (ex is CryptographicException or JsonException)
        {
            return null;
        }
    }

    public Uri AuthorizationUrl(string redirectUri, string state) => new(
        $"{Options.LoginBase}/services/oauth2/authorize?response_type=code"
        + $"&client_id={Uri.EscapeDataString(Options.ClientId ?? "")}"
        + $"&redirect_uri={Uri.EscapeDataString(redirectUri)}"
        + $"&scope={Uri.EscapeDataString(SalesforceOptions.Scopes)}"
        + $"&state={Uri.EscapeDataString(state)}"
        + "&prompt=login%20consent");

    public Task<SalesforceTokenResponse> ExchangeCodeAsync(string code, string redirectUri, CancellationToken ct) => TokenAsync(
    [
        new("grant_type", "authorization_code"), new("code", code), new("client_id", Options.ClientId ?? ""),
        new("client_secret", Options.ClientSecret ?? ""), new("redirect_uri", redirectUri),
    ], ct);

    public Task<SalesforceTokenResponse> RefreshAsync(string refreshToken, CancellationToken ct) => TokenAsync(
    [
        new("grant_type", "refresh_token"), new("refresh_token", refreshToken), new("client_id", Options.ClientId ?? ""),
        new("client_secret", Options.ClientSecret ?? ""),
    ], ct);

    /// <summary>The JWT bearer flow: an assertion for <paramref name="username"/>, signed RS256 with the configured key.</summary>
    public Task<SalesforceTokenResponse> JwtBearerAsync(string username, CancellationToken ct) =>
        TokenAsync([new("grant_type", JwtBearerGrant), new("assertion", SignAssertion(username))], ct);

    internal string SignAssertion(string username)
    {
        var o = Options;
        using var rsa = RSA.Create();
        try
        {
            var pem = !string.IsNullOrWhiteSpace(o.JwtPrivateKeyPem) ? o.JwtPrivateKeyPem : File.ReadAllText(o.JwtPrivateKeyPath!);
            rsa.ImportFromPem(pem);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException or ArgumentException or CryptographicException)
        {
            throw new SalesforceAuthException("invalid_key", "The JWT private key (Salesforce:JwtPrivateKeyPath or JwtPrivateKeyPem) cannot be read as an RSA key in PEM: " + ex.Message, transient: false, ex);
        }
        var now = clock.GetUtcNow().UtcDateTime;
        var descriptor = new SecurityTokenDescriptor
        {
            Issuer = o.ClientId,
            Audience = string.IsNullOrWhiteSpace(o.JwtAudience) ? o.LoginBase : o.JwtAudience,
            Claims = new Dictionary<string, object> { ["sub"] = username },
            IssuedAt = now,
            NotBefore = now.AddSeconds(-30),
            // Salesforce accepts an assertion for at most three minutes after it is made.
            Expires = now.AddMinutes(3),
            SigningCredentials = new SigningCredentials(new RsaSecurityKey(rsa.ExportParameters(true)), SecurityAlgorithms.RsaSha256),
        };
        return new JsonWebTokenHandler { SetDefaultTimesOnTokenCreation = false }.CreateToken(descriptor);
    }

    /// <summary>
    /// The username of the Salesforce user a token acts for, from the identity URL the token endpoint names
    /// (<c>GET {id}</c> with the access token: <c>{"username",…}</c>); null when it cannot be read, which changes nothing else.
    /// </summary>
    public async Task<string?> UsernameAsync(SalesforceTokenResponse token, CancellationToken ct)
    {
        if (!Uri.TryCreate(token.Id, UriKind.Absolute, out var id) || !IsSafeUrl(id)) return null;
        try
        {
            using var http = Client();
            using var request = new HttpRequestMessage(HttpMethod.Get, id);
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", token.AccessToken);
            using var res = await http.SendAsync(request, ct);
            if (!res.IsSuccessStatusCode) return null;
            using var doc = await JsonDocument.ParseAsync(await res.Content.ReadAsStreamAsync(ct), default, ct);
            return doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("username", out var u) && u.ValueKind == JsonValueKind.String
                && u.GetString() is { Length: > 0 and <= 320 } name ? name : null;
        }
        catch (Exception ex) when (ex is HttpRequestException or JsonException || (ex is TaskCanceledException && !ct.IsCancellationRequested))
        {
            return null;
        }
    }

    /// <summary>Revokes a refresh token (and the access tokens made from it). Best effort: an error is only reported.</summary>
    public async Task<bool> RevokeAsync(string token, CancellationToken ct)
    {
        try
        {
            using var http = Client();
            using var res = await http.PostAsync($"{Options.LoginBase}/services/oauth2/revoke",
                new FormUrlEncodedContent([new KeyValuePair<string, string>("token", token)]), ct);
            return res.IsSuccessStatusCode;
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !ct.IsCancellationRequested))
        {
            return false;
        }
    }

    /// <summary>
    /// Where an access token may be sent (the instance URL and the identity URL the token endpoint names): https, no user
    /// info, and not a loopback, private, link-local or unspecified address. A login URL on loopback (a local stand-in
    /// for Salesforce) may name loopback URLs, http included.
    /// </summary>
    internal bool IsSafeUrl(Uri url)
    {
        if (!url.IsAbsoluteUri || !string.IsNullOrEmpty(url.UserInfo)) return false;
        if (Options.LoginIsLoopback && url.IsLoopback
            && (url.Scheme == Uri.UriSchemeHttps || url.Scheme == Uri.UriSchemeHttp)) return true;
        if (url.Scheme != Uri.UriSchemeHttps || url.IsLoopback || url.HostNameType is not (UriHostNameType.Dns or UriHostNameType.IPv4 or UriHostNameType.IPv6))
            return false;
        return !IPAddress.TryParse(url.DnsSafeHost, out var ip) || Web.PublicAddress.IsPublic(ip);
    }

    /// <summary>
    /// Whether the Salesforce HTTP client may connect to an address: a public one, or loopback when the login URL is
    /// on loopback (a local stand-in for Salesforce), as <see cref="IsSafeUrl"/> allows for URLs. Checked on the address
    /// actually connected to, so an instance URL whose name resolves to a private address is refused too.
    /// </summary>
    public static bool MayConnectTo(IPAddress ip, bool loginIsLoopback) =>
        Web.PublicAddress.IsPublic(ip) || (loginIsLoopback && IPAddress.IsLoopback(ip));

    /// <summary>The connection step of the Salesforce HTTP client (see <see cref="MayConnectTo"/>).</summary>
    public static ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, bool loginIsLoopback, Web.PublicAddress.Resolver resolve,
        CancellationToken ct) =>
        Web.PublicAddress.ConnectAsync(context, ip => MayConnectTo(ip, loginIsLoopback), resolve, ct);

    HttpClient Client()
    {
        var http = httpFactory.CreateClient(HttpClientName);
        http.Timeout = Options.Timeout;
        return http;
    }

    async Task<SalesforceTokenResponse> TokenAsync(KeyValuePair<string, string>[] form, CancellationToken ct)
    {
        using var http = Client();
        HttpResponseMessage res;
        try
        {
            res = await http.PostAsync($"{Options.LoginBase}/services/oauth2/token", new FormUrlEncodedContent(form), ct);
        }
        catch (Exception ex) when (ex is HttpRequestException || (ex is TaskCanceledException && !ct.IsCancellationRequested))
        {
            throw new SalesforceAuthException("unreachable", ex.Message, transient: true, ex);
        }
        using (res)
        {
            var text = await res.Content.ReadAsStringAsync(ct);
            if (res.IsSuccessStatusCode)
            {
                SalesforceTokenResponse? token = null;
                try { token = JsonSerializer.Deserialize<SalesforceTokenResponse>(text); } catch (JsonException) { }
                if (token is null || string.IsNullOrEmpty(token.AccessToken) || !Uri.TryCreate(token.InstanceUrl, UriKind.Absolute, out var instance))
                {
                    throw new SalesforceAuthException("bad_response", "The token endpoint's answer has no access token or instance URL.", transient: true);
                }
                if (!IsSafeUrl(instance))
                {
                    // Every REST call sends the access token there: never in clear text, never to our own network.
                    throw new SalesforceAuthException("unsafe_instance_url",
                        $"The token endpoint named {instance.Scheme}://{instance.Authority} as the instance; only https on a public host is used.", transient: false);
                }
                return token;
            }
            string error = "http_" + (int)res.StatusCode;
            string? description = null;
            try
            {
                using var doc = JsonDocument.Parse(text);
                if (doc.RootElement.ValueKind == JsonValueKind.Object)
                {
                    if (doc.RootElement.TryGetProperty("error", out var e) && e.ValueKind == JsonValueKind.String) error = e.GetString()!;
                    if (doc.RootElement.TryGetProperty("error_description", out var d) && d.ValueKind == JsonValueKind.String) description = d.GetString();
                }
            }
            catch (JsonException) { }
            // 4xx with an OAuth error is an answer about the grant or the app; 5xx, 429 and anything else, a bad moment.
            var transient = (int)res.StatusCode >= 500 || res.StatusCode == HttpStatusCode.TooManyRequests || (int)res.StatusCode < 400;
            throw new SalesforceAuthException(error, description, transient);
        }
    }

    /// <summary>
    /// An access token for the connection: the cached one unless <paramref name="renew"/> (Salesforce said
    /// INVALID_SESSION_ID), else a new one from the refresh token or a newly signed assertion. When the refresh answered
    /// a new refresh token (the connected app rotates them: the one used stops working), <c>RotatedSecret</c> holds the
    /// credentials to store in its place; <see cref="SalesforceClient"/> stores them.
    /// </summary>
    public async Task<(SalesforceAccess Access, string? RotatedSecret)> AccessAsync(SalesforceConnection c, bool renew, CancellationToken ct)
    {
        Sync(c);
        if (!renew && tokens.TryGetValue(c.Id, out var cached)) return (cached, null);
        var secret = Unprotect(c.ProtectedSecret)
            ?? throw new SalesforceAuthException("secret_unreadable", "The stored Salesforce credentials cannot be decrypted (the server's keys changed): connect again.", transient: false);
        SalesforceTokenResponse token = c.AuthKind switch
        {
            SalesforceAuthKind.WebServer when !string.IsNullOrEmpty(secret.RefreshToken) => await RefreshAsync(secret.RefreshToken, ct),
            SalesforceAuthKind.JwtBearer when !string.IsNullOrEmpty(secret.Username) => await JwtBearerAsync(secret.Username, ct),
            _ => throw new SalesforceAuthException("secret_incomplete", "The stored Salesforce credentials are incomplete: connect again.", transient: false),
        };
        var access = new SalesforceAccess(token.AccessToken!, token.InstanceUrl!.TrimEnd('/'));
        tokens[c.Id] = access;
        var rotated = c.AuthKind == SalesforceAuthKind.WebServer && !string.IsNullOrEmpty(token.RefreshToken) && token.RefreshToken != secret.RefreshToken
            ? Protect(secret with { RefreshToken = token.RefreshToken })
            : null;
        return (access, rotated);
    }

    /// <summary>
    /// Remembers the access token a connect just obtained, so the first delivery does not ask again. What was known
    /// of the org is forgotten: a connection made again may be to another org.
    /// </summary>
    public void Remember(SalesforceConnection c, SalesforceSecret secret, SalesforceTokenResponse token)
    {
        sharedActivities.TryRemove(c.Id, out _);
        tokens[c.Id] = new SalesforceAccess(token.AccessToken!, token.InstanceUrl!.TrimEnd('/'));
        grants[c.Id] = (c.ProtectedSecret, secret.Grant);
    }

    public void Forget(Guid connectionId)
    {
        tokens.TryRemove(connectionId, out _);
        sharedActivities.TryRemove(connectionId, out _);
        grants.TryRemove(connectionId, out _);
    }

    /// <summary>
    /// Forgets what this instance cached for the connection when the stored credentials come from another connect than
    /// the cached ones: an admin connected again on another instance, maybe as another user or to another org, and the
    /// old session must not go on logging there until it expires. A rotated refresh token keeps its grant, so instances
    /// do not take turns renewing each other's sessions. Decrypts only when the stored credentials changed.
    /// </summary>
    void Sync(SalesforceConnection c)
    {
        if (grants.TryGetValue(c.Id, out var known) && known.ProtectedSecret == c.ProtectedSecret) return;
        var grant = Unprotect(c.ProtectedSecret)?.Grant;
        if (known.ProtectedSecret is null || known.Grant != grant)
        {
            tokens.TryRemove(c.Id, out _);
            sharedActivities.TryRemove(c.Id, out _);
        }
        grants[c.Id] = (c.ProtectedSecret, grant);
    }

    /// <summary>Whether the connection's org has Shared Activities, as last described; null when unknown or too old.</summary>
    public bool? SharedActivities(SalesforceConnection c)
    {
        Sync(c);
        return sharedActivities.TryGetValue(c.Id, out var known) && known.Until > clock.GetUtcNow() ? known.On : null;
    }

    public void RememberSharedActivities(Guid connectionId, bool on) =>
        sharedActivities[connectionId] = (on, clock.GetUtcNow() + OrgFeaturesLifetime);
}

public sealed record SalesforceAccess(string AccessToken, string InstanceUrl);
