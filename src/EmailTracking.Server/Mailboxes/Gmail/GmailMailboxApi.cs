using System.Globalization;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Google.Apis.Auth;
using Google.Apis.Auth.OAuth2.Responses;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// Connecting a Gmail mailbox (OAuth consent in the browser, then back to the mailboxes page) and the Pub/Sub push
/// endpoint that wakes a Gmail watch.
/// </summary>
public static class GmailMailboxApi
{
    public const string ConnectPath = "/mailboxes/gmail/connect";
    public const string CallbackPath = "/mailboxes/gmail/callback";
    public const string PushPath = "/hooks/gmail/push";

    /// <summary>Holds the nonce of a consent in progress: the state Google hands back must match this browser's.</summary>
    static readonly Web.OAuthState State = new("EmailTracking.Mailboxes.Gmail.OAuthState.v1", "et_gmail_oauth", "/mailboxes/gmail");

    public static void MapGmailMailboxes(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/mailboxes/gmail").RequireAuthorization(Auth.ApiPolicy).WithTags("Mailboxes").ExcludeFromDescription();
        g.MapGet("/connect", Connect);
        g.MapGet("/callback", Callback);
        app.MapPost(PushPath, Push).AllowAnonymous().ExcludeFromDescription();
    }

    static string RedirectUri(HttpContext http, GmailOptions o) =>
        !string.IsNullOrWhiteSpace(o.RedirectUri) ? o.RedirectUri : $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{CallbackPath}";

    /// <summary>Sends the browser to Google's consent page; the state names the signed-in user and a nonce kept in a cookie.</summary>
    static IResult Connect(HttpContext http, GmailAuth auth, IDataProtectionProvider dp, string? address)
    {
        var o = auth.Options;
        if (!o.IsConfigured)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Gmail is not configured on this server.",
                detail: "An administrator sets Mailboxes:Gmail:ClientId and Mailboxes:Gmail:ClientSecret (an OAuth client of a Google Cloud project) first.");
        }
        var me = CurrentUser.Required(http.User);
        var state = State.Begin(http, dp, me.Id);
        return TypedResults.Redirect(auth.AuthorizationUrl(RedirectUri(http, o), state, address).AbsoluteUri);
    }

    static IResult Back(string outcome) => TypedResults.Redirect("/mailboxes?gmail=" + outcome);

    /// <summary>
    /// Google sends the browser back here with a code. The code is exchanged only when the state is this user's and
    /// this browser's; the mailbox's address (from Gmail's profile) must be one of the user's addresses.
    /// </summary>
    static async Task<IResult> Callback(HttpContext http, GmailAuth auth, IDataProtectionProvider dp, AppDbContext db, MailboxSecrets secrets,
        MailboxWatcher watcher, TimeProvider clock, ILoggerFactory logs, string? code, string? state, string? error, CancellationToken ct)
    {
        var log = logs.CreateLogger(typeof(GmailMailboxApi));
        var o = auth.Options;
        if (!o.IsConfigured) return Back("not-configured");
        var me = CurrentUser.Required(http.User);
        if (!State.Complete(http, dp, me.Id, state))
        {
            log.LogWarning("Gmail consent callback with a state that is not this user's or this browser's; ignored");
            return Back("bad-state");
        }
        if (!string.IsNullOrEmpty(error) || string.IsNullOrEmpty(code)) return Back("denied");

        var redirectUri = RedirectUri(http, o);
        TokenResponse token;
        try
        {
            token = await auth.ExchangeCodeAsync(code, redirectUri, ct);
        }
        catch (TokenResponseException ex)
        {
            log.LogWarning("Google refused the authorization code: {Error} {Description}", ex.Error?.Error, ex.Error?.ErrorDescription);
            return Back("failed");
        }
        if (string.IsNullOrEmpty(token.RefreshToken))
        {
            log.LogWarning("Google granted no refresh token (offline access)");
            return Back("failed");
        }
        var granted = (token.Scope ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
        if (GmailOptions.Scopes.Any(s => !granted.Contains(s)))
        {
            // Granular consent: the user may untick a permission. Without both, sending or reading fails later.
            await auth.RevokeAsync(token.RefreshToken, ct);
            return Back("scopes");
        }

        string? address;
        try
        {
            using var client = auth.CreateClient(token);
            var profile = await GmailCalls.RunAsync(c => client.GetProfile().ExecuteAsync(c), o, clock, ct);
            address = AccountService.NormalizeAddress(profile.EmailAddress);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning(ex, "Reading the Gmail profile after consent failed");
            return Back("failed");
        }
        // Either form of one of the user's addresses (domain in punycode or in Unicode), as registration takes.
        var forms = address is null ? [] : AccountService.StoredForms(address);
        if (address is null || !await db.UserAddresses.AnyAsync(a => a.UserId == me.Id && forms.Contains(a.Address), ct))
        {
            await auth.RevokeAsync(token.RefreshToken, ct);
            return Back("not-yours");
        }

        var existing = await db.Mailboxes.FirstOrDefaultAsync(m => m.UserId == me.Id && m.Kind == MailboxKind.Gmail && forms.Contains(m.Address), ct);
        var connection = existing ?? new MailboxConnection
        {
            TeamId = me.TeamId, UserId = me.Id, Kind = MailboxKind.Gmail, Address = address, ProtectedSecret = "", CreatedAt = clock.GetUtcNow(),
        };
        connection.ProtectedSecret = secrets.Protect(new GmailSecret(token.RefreshToken, token.Scope));
        connection.Status = MailboxStatus.Active;
        connection.StatusMessage = null;
        connection.Failures = 0;
        if (existing is null) db.Mailboxes.Add(connection);
        await db.SaveChangesAsync(ct);
        auth.Forget(connection.Id);
        watcher.Restart(connection.Id);
        log.LogInformation("Gmail mailbox {Address} connected", address);
        return Back("connected");
    }

    /// <summary>
    /// A Pub/Sub push: <c>{"message":{"data":base64url({"emailAddress","historyId"}),…},"subscription":…}</c>, or, from a
    /// subscription with payload unwrapping (<c>--push-no-wrapper</c>), the notification itself as the body. Only a
    /// request with the subscription's OIDC token counts. It is a hint, nothing more: the watch reads history itself.
    /// An authentic push is always acknowledged (204), even for a mailbox not connected here and even when it cannot be
    /// read (logged): Pub/Sub redelivers anything else until the message expires, days later, and the same bytes would
    /// never read better; polling covers what it would have woken.
    /// </summary>
    static async Task<IResult> Push(HttpContext http, GmailAuth auth, AppDbContext db, MailboxSignals signals, ILoggerFactory logs, CancellationToken ct)
    {
        var log = logs.CreateLogger(typeof(GmailMailboxApi));
        bool authentic;
        try
        {
            authentic = await IsFromPushSubscriptionAsync(http, auth.Options, log, ct);
        }
        catch (HttpRequestException ex)
        {
            // The signing keys could not be fetched: not the sender's fault, and Pub/Sub retries a 503.
            log.LogWarning(ex, "Could not fetch the keys to check a Gmail push");
            return TypedResults.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }
        if (!authentic) return TypedResults.Unauthorized();
        // A notification is a hundred bytes or so.
        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = 64 * 1024;
        if (http.Request.ContentLength > 64 * 1024) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);

        string? address;
        try
        {
            using var body = await JsonDocument.ParseAsync(http.Request.Body, default, ct);
            var unwrapped = body.RootElement.ValueKind == JsonValueKind.Object && body.RootElement.TryGetProperty("emailAddress", out _);
            using var notification = unwrapped ? null : JsonDocument.Parse(Base64Url.Decode(
                body.RootElement.GetProperty("message").GetProperty("data").GetString() ?? throw new FormatException("data is null")));
            var root = notification?.RootElement ?? body.RootElement;
            address = AccountService.NormalizeAddress(root.GetProperty("emailAddress").GetString());
            // Gmail documents a string; some senders put a number. Either is fine, nothing else is.
            var history = root.GetProperty("historyId");
            var ok = history.ValueKind switch
            {
                JsonValueKind.String => ulong.TryParse(history.GetString(), NumberStyles.None, CultureInfo.InvariantCulture, out _),
                JsonValueKind.Number => history.TryGetUInt64(out _),
                _ => false,
            };
            if (address is null || !ok) throw new FormatException("emailAddress or historyId is missing or malformed");
        }
        catch (BadHttpRequestException ex) when (ex.StatusCode != StatusCodes.Status413PayloadTooLarge)
        {
            // The body broke off on the way: Pub/Sub's retry may bring it whole.
            return TypedResults.Problem(statusCode: ex.StatusCode, title: "The push could not be read.", detail: ex.Message);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or BadHttpRequestException)
        {
            log.LogWarning("An authentic Gmail push could not be read ({Problem}); acknowledged, so that Pub/Sub does not send it again", ex.Message);
            return TypedResults.NoContent();
        }

        var forms = AccountService.StoredForms(address);
        var ids = await db.Mailboxes.Where(m => m.Kind == MailboxKind.Gmail && forms.Contains(m.Address) && m.Status != MailboxStatus.Disabled)
            .Select(m => m.Id).ToListAsync(ct);
        foreach (var id in ids) signals.Poke(id);
        if (ids.Count == 0) log.LogDebug("Gmail push for {Address}, which is not connected here", address);
        return TypedResults.NoContent();
    }

    /// <summary>The bearer token is Google-signed (keys from the configured URL), for our audience, and the push service account's.</summary>
    static async Task<bool> IsFromPushSubscriptionAsync(HttpContext http, GmailOptions o, ILogger log, CancellationToken ct)
    {
        if (string.IsNullOrWhiteSpace(o.PushAudience) || string.IsNullOrWhiteSpace(o.PushServiceAccount))
        {
            log.LogWarning("A Gmail push arrived but Mailboxes:Gmail:PushAudience and PushServiceAccount are not set; refused");
            return false;
        }
        return await GoogleIdTokens.IsFromServiceAccountAsync(http.Request.Headers.Authorization.ToString(), [o.PushAudience],
            o.PushServiceAccount, o.PushCertsUrl, log, "Gmail push", ct);
    }
}
