using System.Collections.Concurrent;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using Google;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Auth.OAuth2.Flows;
using Google.Apis.Auth.OAuth2.Responses;
using Google.Apis.Http;
using Google.Apis.Services;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>What a Gmail connection needs: the OAuth refresh token and the scopes Google granted. Stored only encrypted.</summary>
public sealed record GmailSecret(string RefreshToken, string? Scope);

/// <summary>
/// Google's OAuth 2.0 authorization-code flow (Google.Apis.Auth) for Gmail mailboxes, and Gmail clients that carry a
/// mailbox's grant. Access tokens are kept in memory per mailbox only to spare a refresh per call; any instance can
/// get a new one from the stored refresh token, and a rejected one is refreshed once by the credential.
/// </summary>
public sealed class GmailAuth : IDisposable
{
    readonly GmailOptions options;
    readonly Lazy<GoogleAuthorizationCodeFlow> flow;
    readonly ConcurrentDictionary<Guid, (string RefreshToken, UserCredential Credential)> credentials = new();

    public GmailAuth(IOptions<GmailOptions> options)
    {
        this.options = options.Value;
        flow = new Lazy<GoogleAuthorizationCodeFlow>(() => new GoogleAuthorizationCodeFlow(
            new FlowInitializer(this.options.AuthUri, this.options.TokenUri, this.options.RevokeUri)
            {
                ClientSecrets = new ClientSecrets { ClientId = this.options.ClientId, ClientSecret = this.options.ClientSecret },
                Scopes = GmailOptions.Scopes,
                // Without a prompt Google returns a refresh token only at the first consent; a reconnect needs a new one.
                Prompt = "consent",
                IncludeGrantedScopes = false,
            }));
    }

    public GmailOptions Options => options;

    /// <summary>Google's flow (access_type, prompt, revoke) with endpoints from configuration; only a subclass may set them.</summary>
    sealed class FlowInitializer(string authUri, string tokenUri, string revokeUri)
        : GoogleAuthorizationCodeFlow.Initializer(authUri, tokenUri, revokeUri);

    /// <summary>Where to send the user's browser to consent: offline access (a refresh token), with our state.</summary>
    public Uri AuthorizationUrl(string redirectUri, string state, string? loginHint)
    {
        var request = (Google.Apis.Auth.OAuth2.Requests.GoogleAuthorizationCodeRequestUrl)flow.Value.CreateAuthorizationCodeRequest(redirectUri);
        request.AccessType = "offline";
        request.Prompt = "consent";
        request.State = state;
        if (!string.IsNullOrWhiteSpace(loginHint)) request.LoginHint = loginHint;
        return request.Build();
    }

    public Task<TokenResponse> ExchangeCodeAsync(string code, string redirectUri, CancellationToken ct) =>
        flow.Value.ExchangeCodeForTokenAsync("new", code, redirectUri, ct);

    /// <summary>Best effort: a grant we will not keep (the address was not the user's) is handed back to Google.</summary>
    public async Task RevokeAsync(string token, CancellationToken ct)
    {
        try
        {
            await flow.Value.RevokeTokenAsync("revoked", token, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            // Google drops unused grants by itself in time.
        }
    }

    /// <summary>
    /// Best effort, when a mailbox is disconnected: Gmail stops publishing its changes (users.stop) and the grant is
    /// handed back, so that disconnecting ends the access Google gave, not only our use of it.
    /// </summary>
    public async Task StopAndRevokeAsync(Guid connectionId, GmailSecret secret, CancellationToken ct)
    {
        if (!options.IsConfigured) return;
        using var cts = CancellationTokenSource.CreateLinkedTokenSource(ct);
        cts.CancelAfter(TimeSpan.FromSeconds(10));
        try
        {
            using var client = CreateClient(connectionId, secret);
            await client.Stop().ExecuteAsync(cts.Token);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // Revoked already, or Google unreachable: the watch expires by itself within 7 days.
        }
        Forget(connectionId);
        await RevokeAsync(secret.RefreshToken, cts.Token);
    }

    /// <summary>A Gmail client for a freshly exchanged token (before a mailbox exists).</summary>
    public GmailClient CreateClient(TokenResponse token) => NewClient(new UserCredential(flow.Value, "new", token));

    /// <summary>A Gmail client acting for the mailbox; the caller disposes it.</summary>
    public GmailClient CreateClient(Guid connectionId, GmailSecret secret)
    {
        var entry = credentials.AddOrUpdate(connectionId,
            _ => (secret.RefreshToken, NewCredential(connectionId, secret)),
            (_, old) => old.RefreshToken == secret.RefreshToken ? old : (secret.RefreshToken, NewCredential(connectionId, secret)));
        return NewClient(entry.Credential);
    }

    /// <summary>The mailbox was reconnected or removed: its cached access token goes.</summary>
    public void Forget(Guid connectionId) => credentials.TryRemove(connectionId, out _);

    UserCredential NewCredential(Guid connectionId, GmailSecret secret) =>
        new(flow.Value, connectionId.ToString(), new TokenResponse { RefreshToken = secret.RefreshToken, Scope = secret.Scope });

    GmailClient NewClient(IConfigurableHttpClientInitializer credential)
    {
        var client = new GmailClient(new BaseClientService.Initializer
        {
            HttpClientInitializer = credential,
            ApplicationName = "EmailTracking",
            BaseUri = options.ApiBaseUri,
            // Retries are ours (GmailCalls), bounded and aware of which calls are safe to repeat.
            DefaultExponentialBackOffPolicy = Google.Apis.Http.ExponentialBackOffPolicy.None,
            GZipEnabled = true,
        });
        // One more try after a handled failure: after a 401 the access token is refreshed and the call repeated once; a
        // second 401 means the grant is bad.
        client.HttpClient.MessageHandler.NumTries = 2;
        return client;
    }

    public void Dispose()
    {
        if (flow.IsValueCreated) flow.Value.Dispose();
    }
}

/// <summary>Gmail calls with bounded retries, and their failures in words a user can act on.</summary>
public static class GmailCalls
{
    /// <summary>
    /// Runs a call, retrying rate limits (429, and the 403s of <see cref="IsRateLimit"/>) and Google's server errors
    /// after a growing wait. A call that is not safe to repeat (a send) is retried only when Google says it did not
    /// take it (a rate limit, 503). A limit that names when it lifts later than the next short wait is not tried again
    /// here: the caller waits for it (<see cref="RetryAfter"/>).
    /// </summary>
    public static async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> call, GmailOptions options, TimeProvider clock, CancellationToken ct,
        bool idempotent = true)
    {
        for (var attempt = 0; ; attempt++)
        {
            try
            {
                return await call(ct);
            }
            catch (GoogleApiException ex) when (attempt < options.Retries && Retriable(ex, idempotent))
            {
                var wait = options.RetryDelay * Math.Pow(2, attempt);
                // Every call before the limit lifts is refused again and counts against the user.
                if (RetryAfter(ex) is { } lifts && lifts - clock.GetUtcNow() > wait) throw;
                await Task.Delay(wait, clock, ct);
            }
        }
    }

    static bool Retriable(GoogleApiException ex, bool idempotent) =>
        ex.HttpStatusCode == HttpStatusCode.ServiceUnavailable
        || (IsRateLimit(ex) && !HasReason(ex, "dailyLimitExceeded"))
        || (idempotent && (int)ex.HttpStatusCode >= 500);

    /// <summary>
    /// Google refused the call for now because of a usage limit: a 429, or a 403 whose reason is one of Gmail's
    /// limits (userRateLimitExceeded, rateLimitExceeded, dailyLimitExceeded in the domain usageLimits; Gmail's error
    /// guide documents them as 403s). Such a call was not taken, and goes through once the limit is lifted: it is
    /// neither the mailbox owner's refusal nor the message's.
    /// </summary>
    public static bool IsRateLimit(Exception ex) => ex is GoogleApiException g
        && (g.HttpStatusCode == HttpStatusCode.TooManyRequests
            || (g.HttpStatusCode == HttpStatusCode.Forbidden
                && g.Error?.Errors?.Any(e => e.Domain == "usageLimits" || e.Reason is "userRateLimitExceeded" or "rateLimitExceeded" or "dailyLimitExceeded") == true));

    /// <summary>
    /// When a usage limit lifts, where Gmail says so. Its per-user limits name the time in the message
    /// ("User-rate limit exceeded.  Retry after 2023-03-07T18:18:23.688Z", often a quarter of an hour away) rather
    /// than in a Retry-After header. Null when it does not say.
    /// </summary>
    public static DateTimeOffset? RetryAfter(Exception ex)
    {
        if (ex is not GoogleApiException g || !IsRateLimit(g)) return null;
        foreach (var text in (g.Error?.Errors?.Select(e => e.Message) ?? []).Prepend(g.Error?.Message))
        {
            var match = RetryAfterText.Match(text ?? "");
            if (match.Success && DateTimeOffset.TryParse(match.Groups[1].Value, CultureInfo.InvariantCulture,
                    DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
            {
                return at;
            }
        }
        return null;
    }

    static readonly System.Text.RegularExpressions.Regex RetryAfterText = new(@"Retry after (\d{4}-\d{2}-\d{2}T[0-9:.]+Z)",
        System.Text.RegularExpressions.RegexOptions.IgnoreCase | System.Text.RegularExpressions.RegexOptions.CultureInvariant);

    static bool HasReason(GoogleApiException g, string reason) => g.Error?.Errors?.Any(e => e.Reason == reason) == true;

    public static bool IsNotFound(Exception ex) => ex is GoogleApiException { HttpStatusCode: HttpStatusCode.NotFound };

    /// <summary>A <see cref="MailboxException"/> for what Google answered; other exceptions as they are.</summary>
    public static Exception Translate(Exception ex, string address, CancellationToken ct)
    {
        if (ex is MailboxException) return ex;
        if (ex is OperationCanceledException && ct.IsCancellationRequested) return ex;
        return ex switch
        {
            TokenResponseException { Error.Error: "invalid_grant" } => new MailboxException(
                $"Google no longer accepts this app's access to {address} (it was revoked, the password was changed, or the grant expired). Connect Gmail again.",
                needsReconnect: true, ex),
            TokenResponseException { Error.Error: "invalid_client" or "unauthorized_client" } t => new MailboxException(
                $"Google refused this server's OAuth client ({t.Error.Error}): the server's Gmail settings need fixing.", needsReconnect: false, ex),
            TokenResponseException t => new MailboxException($"Google's sign-in service answered {t.Error.Error}: {t.Error.ErrorDescription}", needsReconnect: false, ex),
            GoogleApiException { HttpStatusCode: HttpStatusCode.Unauthorized } => new MailboxException(
                $"Gmail does not accept this app's access to {address} any more. Connect Gmail again.", needsReconnect: true, ex),
            GoogleApiException g when IsRateLimit(g) => new MailboxException(
                $"Gmail's usage limit for {address} was reached for now ({g.Error?.Message ?? g.Message}); trying again later.", needsReconnect: false, ex),
            GoogleApiException { HttpStatusCode: HttpStatusCode.Forbidden } g when IsScopeProblem(g) => new MailboxException(
                $"Gmail refused: the access granted for {address} lacks a permission this app needs ({g.Error?.Message}). Connect Gmail again and allow every permission asked.",
                needsReconnect: true, ex),
            GoogleApiException g => new MailboxException($"Gmail answered {(int)g.HttpStatusCode}: {g.Error?.Message ?? g.Message}", needsReconnect: false, ex),
            HttpRequestException or SocketException or IOException => new MailboxException($"Could not reach Gmail: {ex.Message}", needsReconnect: false, ex),
            TaskCanceledException or TimeoutException => new MailboxException("Gmail did not answer in time.", needsReconnect: false, ex),
            _ => ex,
        };
    }

    static bool IsScopeProblem(GoogleApiException g) =>
        g.Error?.Errors?.Any(e => e.Reason is "insufficientPermissions" or "ACCESS_TOKEN_SCOPE_INSUFFICIENT") == true
        || g.Error?.Message?.Contains("insufficient", StringComparison.OrdinalIgnoreCase) == true;
}
