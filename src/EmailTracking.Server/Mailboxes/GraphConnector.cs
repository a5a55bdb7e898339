using System.Security.Cryptography;
using System.Text;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Graph;
using Microsoft.Graph.Models.ODataErrors;
using Microsoft.Identity.Client;
using Microsoft.Kiota.Abstractions;
using Microsoft.Kiota.Abstractions.Authentication;
using Microsoft.Kiota.Http.HttpClientLibrary.Middleware;
using Microsoft.Kiota.Http.HttpClientLibrary.Middleware.Options;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// What a Microsoft 365 / Outlook.com connection keeps, encrypted: the MSAL account and MSAL's serialized user token
/// cache (refresh token included). <see cref="Generation"/> changes at every connect, so that a watch still working
/// with an older sign-in never overwrites a newer one.
/// </summary>
public sealed record GraphSecret(string HomeAccountId, string Username, Guid Generation, string Cache);

/// <summary>
/// Signs mailboxes in with Microsoft (OAuth authorization code with PKCE, through MSAL) and opens Graph clients for
/// them. Each connection has its own MSAL token cache, kept encrypted in the connection's secret and written back
/// whenever MSAL changes it (a refreshed token).
/// </summary>
public sealed class GraphConnector(IOptions<GraphOptions> options, IHttpClientFactory httpClients, IHttpMessageHandlerFactory handlers,
    MailboxSecrets secrets, IServiceScopeFactory scopes, ILogger<GraphConnector> log)
{
    /// <summary>The named HttpClient both MSAL and the Graph SDK use (tests give it their fake's certificate).</summary>
    public const string HttpClientName = "microsoft-graph";

    /// <summary>
    /// Mail.ReadWrite: create the message (with our x-et-token header and tag) before it is sent, read Inbox and Sent
    /// Items, their MIME, delta and change notifications. Mail.Send: send it. User.Read: the mailbox's address at
    /// connect. MSAL adds openid, profile and offline_access itself on every request; offline_access gives the refresh
    /// token that lets the watch work while the user is away.
    /// </summary>
    public static readonly string[] Scopes = ["Mail.ReadWrite", "Mail.Send", "User.Read"];

    /// <summary>What the authorize URL asks for, offline_access spelled out as the user sees it on the consent screen.</summary>
    public static readonly string ConsentScopes = "openid profile offline_access " + string.Join(' ', Scopes);

    public GraphOptions Options => options.Value;

    public bool IsConfigured => options.Value.IsConfigured;

    /// <summary>Microsoft's sign-in page for this server's app, with our state and a PKCE challenge.</summary>
    public string AuthorizeUrl(string redirectUri, string state, string codeVerifier, string? loginHint)
    {
        var o = options.Value;
        var challenge = Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(codeVerifier)));
        var query = new Dictionary<string, string?>
        {
            ["client_id"] = o.ClientId,
            ["response_type"] = "code",
            ["redirect_uri"] = redirectUri,
            ["response_mode"] = "query",
            ["scope"] = ConsentScopes,
            ["state"] = state,
            ["code_challenge"] = challenge,
            ["code_challenge_method"] = "S256",
            ["prompt"] = "select_account",
            ["login_hint"] = loginHint,
        };
        return Microsoft.AspNetCore.WebUtilities.QueryHelpers.AddQueryString(o.Authority + "oauth2/v2.0/authorize", query);
    }

    public static string NewCodeVerifier() => Base64Url(RandomNumberGenerator.GetBytes(32));

    static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Redeems the code Microsoft sent back: the signed-in account, its token cache and its address (from /me).</summary>
    public async Task<(GraphSecret Secret, string? Address)> RedeemAsync(string code, string redirectUri, string codeVerifier, CancellationToken ct)
    {
        var cache = new CacheHolder(null);
        var app = Build(redirectUri, cache);
        var result = await app.AcquireTokenByAuthorizationCode(Scopes, code).WithPkceCodeVerifier(codeVerifier).ExecuteAsync(ct);
        var token = result.AccessToken;
        var client = NewClient(new StaticToken(token));
        var me = await client.Me.GetAsync(rc => rc.QueryParameters.Select = ["id", "mail", "userPrincipalName", "displayName"], ct);
        var address = me?.Mail ?? me?.UserPrincipalName ?? result.Account.Username;
        var secret = new GraphSecret(result.Account.HomeAccountId.Identifier, result.Account.Username, Guid.NewGuid(),
            cache.Bytes is { } b ? Convert.ToBase64String(b) : "");
        return (secret, address);
    }

    /// <summary>A Graph client for one connected mailbox; tokens come from its own cache, refreshed as needed.</summary>
    public GraphSession Open(MailboxConnection connection)
    {
        if (!IsConfigured) throw new MailboxException(NotConfigured, needsReconnect: false);
        var secret = secrets.Unprotect<GraphSecret>(connection.ProtectedSecret)
            ?? throw new MailboxException("The stored Microsoft sign-in can no longer be read (the server's keys changed). Connect the mailbox again.", needsReconnect: true);
        var holder = new CacheHolder(string.IsNullOrEmpty(secret.Cache) ? null : Convert.FromBase64String(secret.Cache));
        var app = Build(null, holder);
        var session = new GraphSession(connection.Id, secret, app, this);
        holder.Changed = bytes => session.PersistAsync(bytes);
        session.Client = NewClient(session);
        return session;
    }

    /// <summary>How long, in all, the Graph SDK may wait between its own retries of one throttled call.</summary>
    public static readonly TimeSpan SdkRetryTime = TimeSpan.FromSeconds(30);

    public const string NotConfigured = "Microsoft 365 is not configured on this server: set Mailboxes:Graph:ClientId and Mailboxes:Graph:ClientSecret.";

    IConfidentialClientApplication Build(string? redirectUri, CacheHolder cache)
    {
        var o = options.Value;
        if (!o.IsConfigured) throw new MailboxException(NotConfigured, needsReconnect: false);
        var builder = ConfidentialClientApplicationBuilder.Create(o.ClientId)
            .WithClientSecret(o.ClientSecret)
            .WithAuthority(o.Authority)
            .WithInstanceDiscovery(o.InstanceDiscovery)
            .WithHttpClientFactory(new MsalHttp(httpClients));
        if (redirectUri is not null) builder = builder.WithRedirectUri(redirectUri);
        var app = builder.Build();
        app.UserTokenCache.SetBeforeAccess(args =>
        {
            if (cache.Bytes is { } bytes) args.TokenCache.DeserializeMsalV3(bytes, shouldClearExistingCache: true);
        });
        app.UserTokenCache.SetAfterAccessAsync(async args =>
        {
            if (!args.HasStateChanged) return;
            cache.Bytes = args.TokenCache.SerializeMsalV3();
            if (cache.Changed is { } changed) await changed(cache.Bytes);
        });
        return app;
    }

    GraphServiceClient NewClient(IAccessTokenProvider tokens)
    {
        var o = options.Value;
        var allowed = new Uri(o.GraphBaseUrl).Host;
        tokens.AllowedHostsValidator.AllowedHosts = [allowed];
        // Graph's own middleware (retry on 429/503/504 honouring Retry-After, at most 3 times; redirects; compression)
        // in front of the pooled handler of our named client. Its retries wait only briefly: left alone, it sleeps out a
        // Retry-After of up to 3 minutes, three times, inside the client's timeout, so that a long one ends as "no answer
        // in time". A longer wait comes back as the throttled answer with its Retry-After, which the watch waits out on
        // its own schedule and a send reports as refused for now.
        var pipeline = GraphClientFactory.CreateDefaultHandlers();
        for (var i = 0; i < pipeline.Count; i++)
        {
            if (pipeline[i] is RetryHandler) pipeline[i] = new RetryHandler(new RetryHandlerOption { RetriesTimeLimit = SdkRetryTime });
        }
        var http = GraphClientFactory.Create(pipeline, finalHandler: handlers.CreateHandler(HttpClientName));
        http.Timeout = TimeSpan.FromSeconds(100);
        return new GraphServiceClient(http, new BaseBearerTokenAuthenticationProvider(tokens), o.GraphBaseUrl.TrimEnd('/'));
    }

    /// <summary>
    /// Ends subscriptions at Microsoft, signed in as the connection was (a disconnected mailbox, or one now connected to
    /// another Microsoft account), rather than leave them to notify this server until they expire. Best effort: what
    /// fails here ends by itself within the subscription's lifetime, and its notifications are ignored meanwhile.
    /// </summary>
    public async Task EndSubscriptionsAsync(MailboxConnection connection, IReadOnlyList<string> subscriptionIds, CancellationToken ct)
    {
        try
        {
            var session = Open(connection);
            foreach (var id in subscriptionIds)
            {
                try
                {
                    await session.Client.Subscriptions[id].DeleteAsync(cancellationToken: ct);
                }
                catch (ApiException ex)
                {
                    log.LogInformation(ex, "Subscription {Subscription} of mailbox {Id} could not be deleted; it ends at its expiry", id, connection.Id);
                }
            }
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning(ex, "The subscriptions of mailbox {Id} that are no longer its own are left to expire", connection.Id);
        }
    }

    /// <summary>Writes a changed token cache back, unless the mailbox was connected again meanwhile (another generation).</summary>
    internal async Task PersistCacheAsync(Guid connectionId, GraphSecret secret, byte[] cache)
    {
        try
        {
            await using var scope = scopes.CreateAsyncScope();
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var stored = await db.Mailboxes.Where(m => m.Id == connectionId).Select(m => m.ProtectedSecret).FirstOrDefaultAsync();
            if (stored is null || secrets.Unprotect<GraphSecret>(stored) is not { } current || current.Generation != secret.Generation) return;
            var updated = secrets.Protect(current with { Cache = Convert.ToBase64String(cache) });
            await db.Mailboxes.Where(m => m.Id == connectionId && m.ProtectedSecret == stored)
                .ExecuteUpdateAsync(s => s.SetProperty(m => m.ProtectedSecret, updated));
        }
        catch (Exception ex)
        {
            // The tokens still work from memory; the next refresh writes the cache again.
            log.LogWarning(ex, "Could not store the refreshed Microsoft token cache of mailbox {Id}", connectionId);
        }
    }

    /// <summary>
    /// Turns MSAL and Graph failures into <see cref="MailboxException"/>: a refused or revoked sign-in, or a missing
    /// permission, needs the user to connect again; throttling, outages and network trouble are transient.
    /// </summary>
    public static Exception Translate(Exception ex, CancellationToken ct)
    {
        if (ex is MailboxException) return ex;
        if (ex is OperationCanceledException && ct.IsCancellationRequested) return ex;
        // The SDK's retry handler gave up (still throttled after its retries): its last answer is what counts.
        if (ex is AggregateException && LastAnswer(ex) is { } last) return Translate(last, ct);
        return ex switch
        {
            MsalUiRequiredException m => new MailboxException(
                $"Microsoft asks the mailbox's owner to sign in again ({m.ErrorCode}: {FirstLine(m.Message)}). Connect the mailbox again.", needsReconnect: true, ex),
            MsalServiceException { ErrorCode: "invalid_grant" } m => new MailboxException(
                $"Microsoft refused the stored sign-in ({m.ErrorCode}: {FirstLine(m.Message)}). Connect the mailbox again.", needsReconnect: true, ex),
            // The server's app registration was refused (most often its client secret expired): every mailbox fails the
            // same way, and a user who connects again is refused too. Only an administrator can fix it; the watch keeps
            // trying and recovers by itself once the server has a valid secret.
            MsalServiceException { ErrorCode: "invalid_client" or "unauthorized_client" } m => new MailboxException(
                $"Microsoft refused this server's app registration ({m.ErrorCode}: {FirstLine(m.Message)}): an administrator must fix the server's Microsoft 365 settings (Mailboxes:Graph:ClientSecret, or the app registration itself).",
                needsReconnect: false, ex),
            MsalServiceException m => new MailboxException($"Microsoft's sign-in service answered {m.StatusCode} {m.ErrorCode}: {FirstLine(m.Message)}", needsReconnect: false, ex),
            MsalClientException m => new MailboxException($"Signing in with Microsoft failed ({m.ErrorCode}): {FirstLine(m.Message)}", needsReconnect: false, ex),
            ApiException { ResponseStatusCode: 401 } a => new MailboxException(
                $"Microsoft Graph refused the mailbox's access ({Code(a)}). Connect the mailbox again.", needsReconnect: true, ex),
            ApiException { ResponseStatusCode: 403 } a => new MailboxException(
                $"Microsoft Graph denied access ({Code(a)}): the mailbox may lack a license, or a permission was withdrawn. Connect the mailbox again.", needsReconnect: true, ex),
            ApiException { ResponseStatusCode: 429 } => new MailboxException("Microsoft Graph is throttling this mailbox; trying again later.", needsReconnect: false, ex),
            ApiException a => new MailboxException($"Microsoft Graph answered {a.ResponseStatusCode} ({Code(a)}).", needsReconnect: false, ex),
            HttpRequestException h => new MailboxException($"Could not reach Microsoft: {h.Message}", needsReconnect: false, ex),
            OperationCanceledException or TimeoutException => new MailboxException("Microsoft did not answer in time.", needsReconnect: false, ex),
            _ => ex,
        };
    }

    /// <summary>
    /// Graph's answer behind a failure: the failure itself, or the last answer the SDK's retry handler got before it
    /// gave up (it throws them all together); null when Graph did not answer.
    /// </summary>
    public static ApiException? LastAnswer(Exception ex) => ex switch
    {
        ApiException a => a,
        AggregateException g => g.InnerExceptions.OfType<ApiException>().LastOrDefault(),
        MailboxException { InnerException: { } inner } => LastAnswer(inner),
        _ => null,
    };

    /// <summary>Microsoft throttles the mailbox or the app (429), or asks to come back later (503).</summary>
    public static bool IsThrottled(Exception ex) => LastAnswer(ex) is { ResponseStatusCode: 429 or 503 };

    /// <summary>
    /// How long Graph's last answer asked to wait (Retry-After, in seconds or as a date; a date already past is no
    /// wait); null when it did not say.
    /// </summary>
    public static TimeSpan? RetryAfter(Exception ex, DateTimeOffset now)
    {
        if (LastAnswer(ex)?.ResponseHeaders is not { } headers) return null;
        foreach (var (name, values) in headers)
        {
            if (!name.Equals("Retry-After", StringComparison.OrdinalIgnoreCase)) continue;
            foreach (var value in values)
            {
                if (!System.Net.Http.Headers.RetryConditionHeaderValue.TryParse(value, out var retry)) continue;
                if (retry.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
                if (retry.Date is { } date) return date > now ? date - now : TimeSpan.Zero;
            }
        }
        return null;
    }

    public static string Code(ApiException a) => a is ODataError { Error: { } e } ? $"{e.Code}: {FirstLine(e.Message)}" : a.ResponseStatusCode.ToString(System.Globalization.CultureInfo.InvariantCulture);

    static string FirstLine(string? s)
    {
        s ??= "";
        var i = s.IndexOfAny(['\r', '\n']);
        s = i >= 0 ? s[..i] : s;
        return s.Length > 300 ? s[..300] : s;
    }

    sealed class CacheHolder(byte[]? bytes)
    {
        public byte[]? Bytes { get; set; } = bytes;
        public Func<byte[], Task>? Changed { get; set; }
    }

    sealed class MsalHttp(IHttpClientFactory factory) : IMsalHttpClientFactory
    {
        public HttpClient GetHttpClient() => factory.CreateClient(HttpClientName);
    }

    /// <summary>The access token just redeemed, for reading /me before the connection exists.</summary>
    sealed class StaticToken(string token) : IAccessTokenProvider
    {
        public AllowedHostsValidator AllowedHostsValidator { get; } = new();

        public Task<string> GetAuthorizationTokenAsync(Uri uri, Dictionary<string, object>? additionalAuthenticationContext = null, CancellationToken cancellationToken = default) =>
            Task.FromResult(token);
    }
}

/// <summary>One mailbox's Graph client and its tokens (MSAL, silent: from the cache, refreshed with the refresh token).</summary>
public sealed class GraphSession(Guid connectionId, GraphSecret secret, IConfidentialClientApplication app, GraphConnector connector) : IAccessTokenProvider
{
    public GraphServiceClient Client { get; internal set; } = null!;

    public GraphSecret Secret => secret;

    public AllowedHostsValidator AllowedHostsValidator { get; } = new();

    public async Task<string> GetAuthorizationTokenAsync(Uri uri, Dictionary<string, object>? additionalAuthenticationContext = null, CancellationToken cancellationToken = default)
    {
        var account = await app.GetAccountAsync(secret.HomeAccountId)
            ?? throw new MailboxException("The Microsoft sign-in of this mailbox is missing from its token cache. Connect the mailbox again.", needsReconnect: true);
        var request = app.AcquireTokenSilent(GraphConnector.Scopes, account);
        // Graph asks for more (a claims challenge after a policy change): MSAL goes to the token endpoint with them.
        if (additionalAuthenticationContext?.TryGetValue("claims", out var claims) == true && claims is string c && c.Length > 0)
        {
            request = request.WithClaims(c);
        }
        var result = await request.ExecuteAsync(cancellationToken);
        return result.AccessToken;
    }

    /// <summary>
    /// After Graph refused a token (401): get a new one with the refresh token. Null when that worked (the next
    /// attempt may succeed); otherwise why the mailbox must be connected again (the refresh token was revoked).
    /// </summary>
    public async Task<Exception?> RefreshAfterRefusalAsync(CancellationToken ct)
    {
        try
        {
            var account = await app.GetAccountAsync(secret.HomeAccountId)
                ?? throw new MailboxException("The Microsoft sign-in of this mailbox is missing from its token cache. Connect the mailbox again.", needsReconnect: true);
            await app.AcquireTokenSilent(GraphConnector.Scopes, account).WithForceRefresh(true).ExecuteAsync(ct);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            return GraphConnector.Translate(ex, ct);
        }
    }

    internal Task PersistAsync(byte[] cache) => connector.PersistCacheAsync(connectionId, secret, cache);
}
