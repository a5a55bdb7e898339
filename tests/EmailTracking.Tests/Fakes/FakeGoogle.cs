using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// Google as the Gmail connector sees it, on a loopback port: the OAuth authorization and token endpoints
/// (authorization_code and refresh_token grants, invalid_grant once revoked), the Gmail REST methods it calls
/// (getProfile, messages.send/get/list, history.list, watch, stop) with Google's JSON shapes and error bodies, and a
/// JWKS endpoint whose key signs Pub/Sub push tokens. Like Gmail, it replaces the Message-ID of mail sent through the
/// API, threads by References, and forgets history older than a floor (history.list answers 404).
/// </summary>
public sealed class FakeGoogle : IAsyncDisposable
{
    public const string ClientId = "1234-fake.apps.googleusercontent.com";
    public const string ClientSecret = "fake-client-secret";
    public const string ReadonlyScope = "https://www.googleapis.com/auth/gmail.readonly";
    public const string SendScope = "https://www.googleapis.com/auth/gmail.send";

    readonly WebApplication app;
    readonly RSA signingKey = RSA.Create(2048);
    readonly object gate = new();
    readonly Dictionary<string, Mailbox> mailboxes = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<string, Grant> codes = [];
    readonly Dictionary<string, Grant> refreshTokens = [];
    readonly Dictionary<string, (Grant Grant, DateTimeOffset Expires)> accessTokens = [];
    /// <summary>Add-on per-message tokens (X-Goog-Gmail-Access-Token): the message each one opens.</summary>
    readonly Dictionary<string, (string Address, string MessageId)> messageTokens = [];
    public const string AddonMetadataScope = "https://www.googleapis.com/auth/gmail.addons.current.message.metadata";
    /// <summary>Gmail API calls made with add-on tokens (path and query), in order.</summary>
    public List<string> AddonCalls { get; } = [];
    readonly List<(string PathPart, int Status, int Left, string? Reason, DateTimeOffset? RetryAfter)> failures = [];
    readonly Dictionary<string, int> failuresServed = [];
    long nextId = 0x18c4a2b3c0000000;

    public string BaseUrl { get; private set; } = "";

    /// <summary>Query strings of the authorization requests the browser was sent with.</summary>
    public List<Dictionary<string, string>> AuthorizationRequests { get; } = [];
    public int CodeExchanges { get; private set; }
    public int RefreshGrants { get; private set; }

    /// <summary>
    /// Refresh grants for one address's tokens: other mailboxes' watches in the same server refresh theirs at any time,
    /// so <see cref="RefreshGrants"/> alone can count a refresh the test did not cause.
    /// </summary>
    public int RefreshGrantsOf(string address)
    {
        lock (gate) return refreshesByAddress.GetValueOrDefault(address.ToLowerInvariant());
    }

    readonly Dictionary<string, int> refreshesByAddress = [];
    public List<string> Revoked { get; } = [];
    /// <summary>When set, the consent screen grants only these scopes (a user unticking one).</summary>
    public string[]? GrantOnly { get; set; }

    sealed record Grant(string Address, string Scope, string RedirectUri);

    public sealed class Mailbox(string address)
    {
        public string Address { get; } = address;
        public ulong HistoryId { get; set; } = 4_000_000 + (ulong)Random.Shared.Next(1000);
        public ulong HistoryFloor { get; set; }
        public List<Message> Messages { get; } = [];
        public List<HistoryEntry> History { get; } = [];
        public List<string> WatchTopics { get; } = [];
        public int StopCalls { get; set; }
        public int HistoryCalls { get; set; }
        public int HistoryNotFound { get; set; }
        public int ListCalls { get; set; }
        public List<string> RawGets { get; } = [];

        /// <summary>
        /// users.watch is refused as Gmail refuses it when it may not publish to the topic (403 PERMISSION_DENIED;
        /// the grant to gmail-api-push@system.gserviceaccount.com is missing).
        /// </summary>
        public bool WatchRefused { get; set; }

        /// <summary>
        /// Gmail's reference does not say whether <c>payload.headers[].value</c> is decoded. By default the fake decodes
        /// (RFC 2047 encoded-words turned into text, as Gmail is seen to answer); with this set it gives each value as
        /// it stands in the message, unfolded, so that both readings are tested.
        /// </summary>
        public bool HeaderValuesAsWritten { get; set; }
    }

    /// <summary>
    /// One history record as Gmail keeps it: a message added (<c>messageAdded</c>), or labels added to or removed from
    /// one (<c>labelAdded</c>, <c>labelRemoved</c>: archiving removes INBOX, "Not spam" adds INBOX and removes SPAM).
    /// </summary>
    public sealed record HistoryEntry(ulong Id, string Type, Message Message, string[] LabelIds);

    public sealed record Message(string Id, string ThreadId, string[] Labels, byte[] Raw, long InternalDate, ulong HistoryId, MimeMessage Mime)
    {
        public string MessageId => Mime.MessageId ?? "";
        public List<string> Recipients => [.. Mime.To.Mailboxes.Concat(Mime.Cc.Mailboxes).Concat(Mime.Bcc.Mailboxes).Select(m => m.Address.ToLowerInvariant())];
    }

    FakeGoogle(WebApplication app) => this.app = app;

    public static FakeGoogle Start()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls("http://127.0.0.1:0");
        // Room for the media upload's 35 MB (Kestrel's default stops at 30 MB).
        builder.WebHost.ConfigureKestrel(k => k.Limits.MaxRequestBodySize = MaxUploadBytes + 1024 * 1024);
        // Google.Apis gzips request bodies (Content-Encoding: gzip), as Google's servers accept.
        builder.Services.AddRequestDecompression();
        var fake = new FakeGoogle(builder.Build());
        fake.Map();
        fake.app.StartAsync().GetAwaiter().GetResult();
        fake.BaseUrl = fake.app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First().TrimEnd('/');
        return fake;
    }

    public string AuthUri => BaseUrl + "/o/oauth2/v2/auth";
    public string TokenUri => BaseUrl + "/token";
    public string RevokeUri => BaseUrl + "/revoke";
    public string ApiBaseUri => BaseUrl + "/";
    /// <summary>A certs URL of its own per caller: Google.Apis.Auth caches keys per URL for an hour.</summary>
    public string CertsUrl => $"{BaseUrl}/oauth2/v3/certs?run={Guid.NewGuid():N}";

    public Mailbox MailboxOf(string address)
    {
        lock (gate)
        {
            if (!mailboxes.TryGetValue(address, out var m)) mailboxes[address] = m = new Mailbox(address.ToLowerInvariant());
            return m;
        }
    }

    public T Read<T>(string address, Func<Mailbox, T> f)
    {
        lock (gate) return f(MailboxOf(address));
    }

    // ---- what tests do to the mailbox ----

    /// <summary>Mail arrives in the INBOX (threaded by its References unless a thread is named).</summary>
    public Message Deliver(string address, MimeMessage message, string? threadId = null) =>
        Add(MailboxOf(address), message, ["INBOX", "UNREAD", "CATEGORY_PERSONAL"], threadId, rewriteMessageId: false);

    /// <summary>Bytes that are not MIME arrive in the INBOX (Gmail keeps what a broken server delivered).</summary>
    public Message DeliverRaw(string address, byte[] raw)
    {
        lock (gate)
        {
            var box = MailboxOf(address);
            var id = (nextId++).ToString("x", CultureInfo.InvariantCulture);
            box.HistoryId += (ulong)Random.Shared.Next(2, 9);
            var m = new Message(id, id, ["INBOX", "UNREAD"], raw, DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), box.HistoryId, new MimeMessage());
            box.Messages.Add(m);
            box.History.Add(new HistoryEntry(box.HistoryId, "messageAdded", m, m.Labels));
            return m;
        }
    }

    /// <summary>The user sends from Gmail's own UI: Gmail gives the mail its Message-ID and files it in SENT.</summary>
    public Message SendFromGmailUi(string address, MimeMessage message, string? threadId = null) =>
        Add(MailboxOf(address), message, ["SENT"], threadId, rewriteMessageId: true);

    /// <summary>Mail arrives with these labels only, as Gmail files it: a filter that skips the inbox, SPAM, a DRAFT, a CHAT.</summary>
    public Message DeliverWithLabels(string address, MimeMessage message, string[] labels) =>
        Add(MailboxOf(address), message, labels, null, rewriteMessageId: false);

    /// <summary>
    /// The user (or a filter) changes a message's labels, as Gmail records it: one labelAdded and/or one labelRemoved
    /// history record. Archiving is <c>remove: ["INBOX"]</c>; "Not spam" is <c>add: ["INBOX"], remove: ["SPAM"]</c>.
    /// </summary>
    public Message ChangeLabels(string address, string id, string[]? add = null, string[]? remove = null)
    {
        lock (gate)
        {
            var box = MailboxOf(address);
            var i = box.Messages.FindIndex(m => m.Id == id);
            var before = box.Messages[i];
            var added = (add ?? []).Where(l => !before.Labels.Contains(l)).ToArray();
            var removed = (remove ?? []).Where(before.Labels.Contains).ToArray();
            var after = before with { Labels = [.. before.Labels.Except(removed).Concat(added)] };
            // Each record has an id of its own (ids increase and are unique, not contiguous): a watch that stored the
            // first one's id as its checkpoint must not skip the second.
            if (added.Length > 0)
            {
                box.HistoryId += (ulong)Random.Shared.Next(2, 9);
                box.History.Add(new HistoryEntry(box.HistoryId, "labelAdded", after, added));
            }
            if (removed.Length > 0)
            {
                box.HistoryId += (ulong)Random.Shared.Next(2, 9);
                box.History.Add(new HistoryEntry(box.HistoryId, "labelRemoved", after, removed));
            }
            after = after with { HistoryId = box.HistoryId };
            box.Messages[i] = after;
            return after;
        }
    }

    /// <summary>History before this id is gone: history.list from older ids answers 404.</summary>
    public void ForgetHistoryBefore(string address, ulong floor)
    {
        lock (gate) MailboxOf(address).HistoryFloor = floor;
    }

    public ulong CurrentHistoryId(string address) => Read(address, m => m.HistoryId);

    /// <summary>The user removes the app's access in their Google account: grant and tokens stop working.</summary>
    public void RevokeAccess(string address)
    {
        lock (gate)
        {
            foreach (var t in refreshTokens.Where(t => t.Value.Address == address.ToLowerInvariant()).Select(t => t.Key).ToList())
            {
                refreshTokens.Remove(t);
                Revoked.Add(t);
            }
            foreach (var t in accessTokens.Where(t => t.Value.Grant.Address == address.ToLowerInvariant()).Select(t => t.Key).ToList()) accessTokens.Remove(t);
        }
    }

    /// <summary>
    /// What Gmail puts in an add-on event when the user opens a message: the user's access token (the manifest's add-on
    /// scopes) and the per-message token that must come with it in X-Goog-Gmail-Access-Token.
    /// </summary>
    public (string UserOAuthToken, string MessageToken) AddonAccess(string address, string messageId)
    {
        lock (gate)
        {
            var user = "ya29.addon-" + Guid.NewGuid().ToString("N");
            var message = "addon-msg-" + Guid.NewGuid().ToString("N");
            accessTokens[user] = (new Grant(address.ToLowerInvariant(), AddonMetadataScope, ""), DateTimeOffset.UtcNow.AddMinutes(5));
            messageTokens[message] = (address.ToLowerInvariant(), messageId);
            return (user, message);
        }
    }

    /// <summary>Every access token handed out so far expires now (refresh tokens stay good).</summary>
    public void ExpireAccessTokens()
    {
        lock (gate) accessTokens.Clear();
    }

    /// <summary>
    /// The next <paramref name="times"/> requests whose path contains the text answer this status. With a
    /// <paramref name="reason"/> of Google's usage limits (<c>userRateLimitExceeded</c>, <c>rateLimitExceeded</c>,
    /// <c>dailyLimitExceeded</c>) the body is the one Gmail documents for them (a 403 in domain <c>usageLimits</c>).
    /// With <paramref name="retryAfter"/> the message names when the limit lifts, as Gmail's per-user limits do
    /// ("User-rate limit exceeded.  Retry after 2023-03-07T18:18:23.688Z").
    /// </summary>
    public void FailNext(string pathPart, int status, int times = 1, string? reason = null, DateTimeOffset? retryAfter = null)
    {
        lock (gate) failures.Add((pathPart, status, times, reason, retryAfter));
    }

    /// <summary>How many requests a <see cref="FailNext"/> for this path part answered with its failure.</summary>
    public int FailuresServed(string pathPart)
    {
        lock (gate) return failuresServed.GetValueOrDefault(pathPart);
    }

    /// <summary>Failures still planned are dropped (a test that planned more than it used leaves none to the next).</summary>
    public void ClearFailures()
    {
        lock (gate) failures.Clear();
    }

    Message Add(Mailbox box, MimeMessage message, string[] labels, string? threadId, bool rewriteMessageId, bool threadByReferences = true)
    {
        lock (gate)
        {
            var mime = MimeMessage.Load(new MemoryStream(Serialize(message)));
            if (rewriteMessageId) mime.MessageId = $"CA+{Convert.ToHexString(RandomNumberGenerator.GetBytes(12)).ToLowerInvariant()}@mail.gmail.com";
            mime.Headers.Remove(HeaderId.Bcc);
            var id = (nextId++).ToString("x", CultureInfo.InvariantCulture);
            threadId ??= (threadByReferences ? ThreadOf(box, mime) : null) ?? id;
            box.HistoryId += (ulong)Random.Shared.Next(2, 9);
            var m = new Message(id, threadId, labels, Serialize(mime), DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), box.HistoryId, mime);
            box.Messages.Add(m);
            box.History.Add(new HistoryEntry(box.HistoryId, "messageAdded", m, m.Labels));
            return m;
        }
    }

    /// <summary>
    /// A header as Gmail lists it: the name is whatever stands before the colon. MimeKit keeps a line whose name it
    /// finds malformed (a space, a non-ASCII letter) whole in the field, the colon and value with it.
    /// </summary>
    static (string Name, string Value) NameAndValue(Header h, bool asWritten)
    {
        var colon = h.Field.IndexOf(':', StringComparison.Ordinal);
        if (colon >= 0) return (h.Field[..colon].Trim(), h.Field[(colon + 1)..].Trim());
        return (h.Field, asWritten ? Header.Unfold(Encoding.UTF8.GetString(h.RawValue)).Trim() : h.Value);
    }

    static string? ThreadOf(Mailbox box, MimeMessage mime)
    {
        var ids = mime.References.Append(mime.InReplyTo).Where(i => i is not null).ToHashSet();
        return box.Messages.LastOrDefault(m => ids.Contains(m.Mime.MessageId))?.ThreadId;
    }

    static byte[] Serialize(MimeMessage message)
    {
        using var s = new MemoryStream();
        message.WriteTo(s);
        return s.ToArray();
    }

    // ---- push tokens ----

    /// <summary>An OIDC token as a Pub/Sub push subscription sends it, signed with the key the certs endpoint serves.</summary>
    public string SignPushToken(string audience, string email, bool emailVerified = true, string issuer = "https://accounts.google.com",
        DateTimeOffset? expires = null, RSA? key = null)
    {
        var now = DateTimeOffset.UtcNow;
        var exp = expires ?? now.AddHours(1);
        var iat = exp < now ? exp.AddHours(-1) : now;
        var header = JsonSerializer.SerializeToUtf8Bytes(new { alg = "RS256", kid = "fake-key-1", typ = "JWT" });
        var payload = JsonSerializer.SerializeToUtf8Bytes(new Dictionary<string, object>
        {
            ["aud"] = audience, ["azp"] = "1122334455", ["email"] = email, ["email_verified"] = emailVerified,
            ["exp"] = exp.ToUnixTimeSeconds(), ["iat"] = iat.ToUnixTimeSeconds(), ["iss"] = issuer, ["sub"] = "1122334455",
        });
        var signed = B64(header) + "." + B64(payload);
        var signature = (key ?? signingKey).SignData(Encoding.ASCII.GetBytes(signed), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        return signed + "." + B64(signature);
    }

    /// <summary>
    /// Any Google OIDC ID token signed with the served key: the add-on's system ID token (service-account email, aud
    /// = endpoint URL) or its user ID token (the Gmail user's email, aud = the add-on's OAuth client id).
    /// </summary>
    public string SignIdToken(string audience, string email, bool emailVerified = true, string issuer = "https://accounts.google.com",
        DateTimeOffset? expires = null, RSA? key = null) => SignPushToken(audience, email, emailVerified, issuer, expires, key);

    /// <summary>A Pub/Sub push body for a Gmail notification (historyId as a string, or as a number as some senders do).</summary>
    /// <param name="unwrapped">
    /// As a subscription with payload unwrapping (<c>--push-no-wrapper</c>) delivers it: the message's data itself as the
    /// body, without Pub/Sub's envelope.
    /// </param>
    public static string PushBody(string address, ulong historyId, bool numericHistoryId = false, bool padded = false, bool unwrapped = false)
    {
        var inner = numericHistoryId
            ? JsonSerializer.SerializeToUtf8Bytes(new { emailAddress = address, historyId })
            : JsonSerializer.SerializeToUtf8Bytes(new { emailAddress = address, historyId = historyId.ToString(CultureInfo.InvariantCulture) });
        if (unwrapped) return Encoding.UTF8.GetString(inner);
        var data = padded ? Convert.ToBase64String(inner).Replace('+', '-').Replace('/', '_') : B64(inner);
        return JsonSerializer.Serialize(new
        {
            message = new { data, messageId = "2070443601311540", publishTime = DateTimeOffset.UtcNow.ToString("O") },
            subscription = "projects/et-test/subscriptions/gmail-push",
        });
    }

    public static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    static byte[] FromB64(string s)
    {
        s = s.Replace('-', '+').Replace('_', '/');
        return Convert.FromBase64String(s.PadRight(s.Length + (4 - s.Length % 4) % 4, '='));
    }

    // ---- the wire ----

    static IResult GoogleError(int code, string message, string reason, string status, string domain = "global") => Results.Json(new
    {
        error = new { code, message, errors = new[] { new { message, domain, reason } }, status },
    }, statusCode: code);

    static IResult TokenError(string error, string description, int status = 400) =>
        Results.Json(new { error, error_description = description }, statusCode: status);

    void Map()
    {
        app.UseRequestDecompression();
        app.Use(async (HttpContext http, Func<Task> next) =>
        {
            int? fail = null;
            string? failReason = null;
            DateTimeOffset? failRetryAfter = null;
            lock (gate)
            {
                for (var i = 0; i < failures.Count; i++)
                {
                    var (part, status, left, reason, retryAfter) = failures[i];
                    if (!http.Request.Path.Value!.Contains(part, StringComparison.Ordinal)) continue;
                    fail = status;
                    failReason = reason;
                    failRetryAfter = retryAfter;
                    failuresServed[part] = failuresServed.GetValueOrDefault(part) + 1;
                    if (left <= 1) failures.RemoveAt(i);
                    else failures[i] = (part, status, left - 1, reason, retryAfter);
                    break;
                }
            }
            if (fail is { } limited && failReason is { } limit)
            {
                var text = failRetryAfter is { } lifts
                    ? "User-rate limit exceeded.  Retry after " + lifts.UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture)
                    : limit switch
                    {
                        "userRateLimitExceeded" => "User Rate Limit Exceeded",
                        "dailyLimitExceeded" => "Daily Limit Exceeded",
                        _ => "Rate Limit Exceeded",
                    };
                await GoogleError(limited, text, limit, limited == 429 ? "RESOURCE_EXHAUSTED" : "PERMISSION_DENIED", "usageLimits").ExecuteAsync(http);
                return;
            }
            if (fail is { } f)
            {
                var (message, reason, st) = f == 429
                    ? ("Resource has been exhausted (e.g. check quota).", "rateLimitExceeded", "RESOURCE_EXHAUSTED")
                    : ("Internal error encountered.", "backendError", "INTERNAL");
                await GoogleError(f, message, reason, st).ExecuteAsync(http);
                return;
            }
            await next();
        });

        app.MapGet("/o/oauth2/v2/auth", (HttpContext http) =>
        {
            var q = http.Request.Query.ToDictionary(k => k.Key, k => k.Value.ToString());
            lock (gate) AuthorizationRequests.Add(q);
            if (q.GetValueOrDefault("client_id") != ClientId) return Results.BadRequest("Error 401: invalid_client");
            if (q.GetValueOrDefault("response_type") != "code" || !q.TryGetValue("redirect_uri", out var redirect)) return Results.BadRequest("Error 400: invalid_request");
            var state = q.GetValueOrDefault("state");
            // Test-only: which Google account the person at the browser signs in with, and whether they agree.
            var account = q.GetValueOrDefault("x_account");
            if (q.ContainsKey("x_deny") || account is null) return Results.Redirect($"{redirect}?error=access_denied&state={Uri.EscapeDataString(state ?? "")}");
            var requested = (q.GetValueOrDefault("scope") ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
            var granted = GrantOnly is { } only ? requested.Intersect(only).ToArray() : requested;
            var code = "4/0A" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
            lock (gate) codes[code] = new Grant(account.ToLowerInvariant(), string.Join(' ', granted), redirect);
            return Results.Redirect($"{redirect}?state={Uri.EscapeDataString(state ?? "")}&code={Uri.EscapeDataString(code)}&scope={Uri.EscapeDataString(string.Join(' ', granted))}");
        });

        app.MapPost("/token", async (HttpContext http) =>
        {
            var form = await http.Request.ReadFormAsync();
            if (form["client_id"] != ClientId || form["client_secret"] != ClientSecret) return TokenError("invalid_client", "The OAuth client was not found.", 401);
            Grant? grant;
            string? refresh = null;
            lock (gate)
            {
                switch (form["grant_type"].ToString())
                {
                    case "authorization_code":
                        CodeExchanges++;
                        if (!codes.Remove(form["code"].ToString(), out grant)) return TokenError("invalid_grant", "Malformed auth code.");
                        if (grant.RedirectUri != form["redirect_uri"]) return TokenError("redirect_uri_mismatch", "Bad Request");
                        refresh = "1//0fake" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
                        refreshTokens[refresh] = grant;
                        break;
                    case "refresh_token":
                        RefreshGrants++;
                        if (!refreshTokens.TryGetValue(form["refresh_token"].ToString(), out grant)) return TokenError("invalid_grant", "Token has been expired or revoked.");
                        refreshesByAddress[grant.Address.ToLowerInvariant()] = refreshesByAddress.GetValueOrDefault(grant.Address.ToLowerInvariant()) + 1;
                        break;
                    default:
                        return TokenError("unsupported_grant_type", "Invalid grant_type: " + form["grant_type"]);
                }
                var access = "ya29.fake" + Convert.ToHexString(RandomNumberGenerator.GetBytes(16));
                accessTokens[access] = (grant, DateTimeOffset.UtcNow.AddSeconds(3599));
                var body = new Dictionary<string, object> { ["access_token"] = access, ["expires_in"] = 3599, ["scope"] = grant.Scope, ["token_type"] = "Bearer" };
                if (refresh is not null) body["refresh_token"] = refresh;
                return Results.Json(body);
            }
        });

        app.MapPost("/revoke", async (HttpContext http) =>
        {
            var token = http.Request.Query["token"].ToString();
            if (string.IsNullOrEmpty(token) && http.Request.HasFormContentType) token = (await http.Request.ReadFormAsync())["token"].ToString();
            lock (gate)
            {
                Revoked.Add(token);
                refreshTokens.Remove(token);
            }
            return Results.Ok();
        });

        app.MapGet("/oauth2/v3/certs", () =>
        {
            var p = signingKey.ExportParameters(false);
            return Results.Json(new { keys = new[] { new { kty = "RSA", alg = "RS256", use = "sig", kid = "fake-key-1", n = B64(p.Modulus!), e = B64(p.Exponent!) } } });
        });

        var gmail = app.MapGroup("/gmail/v1/users/{userId}");
        // The media upload URI (Google's upload guide): /upload before the method's own path, the same user and credentials.
        var upload = app.MapGroup("/upload/gmail/v1/users/{userId}");
        gmail.AddEndpointFilter(Authorize);
        upload.AddEndpointFilter(Authorize);
        async ValueTask<object?> Authorize(EndpointFilterInvocationContext ctx, EndpointFilterDelegate next)
        {
            var http = ctx.HttpContext;
            var header = http.Request.Headers.Authorization.ToString();
            Grant? grant = null;
            lock (gate)
            {
                if (header.StartsWith("Bearer ", StringComparison.Ordinal) && accessTokens.TryGetValue(header[7..], out var t) && t.Expires > DateTimeOffset.UtcNow) grant = t.Grant;
            }
            if (grant is null)
            {
                http.Response.Headers.WWWAuthenticate = "Bearer realm=\"https://accounts.google.com/\", error=\"invalid_token\"";
                return GoogleError(401, "Request had invalid authentication credentials. Expected OAuth 2 access token, login cookie or other valid authentication credential.",
                    "authError", "UNAUTHENTICATED");
            }
            var user = http.Request.RouteValues["userId"]?.ToString();
            if (user != "me" && !string.Equals(user, grant.Address, StringComparison.OrdinalIgnoreCase))
                return GoogleError(403, "Delegation denied for " + grant.Address, "forbidden", "PERMISSION_DENIED");
            if (grant.Scope == AddonMetadataScope)
            {
                // Add-on scopes open only the message the user has open, with its per-message token, and only its headers.
                lock (gate) AddonCalls.Add(http.Request.Path + http.Request.QueryString);
                var id = http.Request.RouteValues["id"]?.ToString();
                (string Address, string MessageId) opened;
                bool known;
                lock (gate) known = messageTokens.TryGetValue(http.Request.Headers["X-Goog-Gmail-Access-Token"].ToString(), out opened);
                if (id is null || http.Request.Method != "GET" || !known || opened.Address != grant.Address || opened.MessageId != id)
                    return GoogleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED");
                if (http.Request.Query["format"].ToString() != "metadata")
                    return GoogleError(403, "Metadata scope doesn't allow format FULL", "forbidden", "PERMISSION_DENIED");
            }
            http.Items["mailbox"] = MailboxOf(grant.Address);
            http.Items["scope"] = grant.Scope;
            return await next(ctx);
        }

        gmail.MapGet("/profile", (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            lock (gate)
            {
                return Results.Json(new
                {
                    emailAddress = box.Address, messagesTotal = box.Messages.Count, threadsTotal = box.Messages.Select(m => m.ThreadId).Distinct().Count(),
                    historyId = box.HistoryId.ToString(CultureInfo.InvariantCulture),
                });
            }
        });

        gmail.MapPost("/messages/send", async (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            if (!((string)http.Items["scope"]!).Contains(SendScope)) return GoogleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED");
            using var body = await JsonDocument.ParseAsync(http.Request.Body);
            if (!body.RootElement.TryGetProperty("raw", out var raw) || raw.GetString() is not { Length: > 0 } text)
                return GoogleError(400, "'raw' RFC822 payload message string or uploading message via /upload/* URL required", "invalidArgument", "INVALID_ARGUMENT");
            var thread = body.RootElement.TryGetProperty("threadId", out var t) ? t.GetString() : null;
            // A thread the mailbox does not have (deleted for good, or another mailbox's) is refused, as Gmail refuses it.
            if (thread is not null && !box.Messages.Any(x => x.ThreadId == thread))
                return GoogleError(400, "Invalid thread_id value", "invalidArgument", "INVALID_ARGUMENT");
            byte[] bytes;
            try
            {
                bytes = FromB64(text);
            }
            catch (FormatException)
            {
                return GoogleError(400, "Invalid value for ByteString", "invalidArgument", "INVALID_ARGUMENT");
            }
            lock (gate) SendsVia.Add("raw");
            return Send(box, bytes, thread);
        });

        // users.messages.send's media upload: uploadType=media (the body is the message, Content-Type message/rfc822) or
        // uploadType=multipart (multipart/related: the JSON metadata, then the message/rfc822 part), at most 35 MB.
        upload.MapPost("/messages/send", async (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            if (!((string)http.Items["scope"]!).Contains(SendScope)) return GoogleError(403, "Request had insufficient authentication scopes.", "insufficientPermissions", "PERMISSION_DENIED");
            var uploadType = http.Request.Query["uploadType"].ToString();
            if (http.Request.ContentLength > MaxUploadBytes + 64 * 1024)
                return GoogleError(413, "Request Too Large", "uploadTooLarge", "INVALID_ARGUMENT");
            string? thread = null;
            byte[] bytes;
            var type = Microsoft.Net.Http.Headers.MediaTypeHeaderValue.Parse(http.Request.ContentType ?? "");
            if (uploadType == "media")
            {
                if (!type.MediaType.Equals("message/rfc822", StringComparison.OrdinalIgnoreCase))
                    return GoogleError(400, $"Media type '{type.MediaType}' is not supported. Valid media types: [message/*]", "badContent", "INVALID_ARGUMENT");
                using var ms = new MemoryStream();
                await http.Request.Body.CopyToAsync(ms);
                bytes = ms.ToArray();
            }
            else if (uploadType == "multipart")
            {
                if (!type.MediaType.Equals("multipart/related", StringComparison.OrdinalIgnoreCase) || type.Boundary.Length == 0)
                    return GoogleError(400, "Invalid multipart request with 0 mime parts.", "badContent", "INVALID_ARGUMENT");
                var reader = new Microsoft.AspNetCore.WebUtilities.MultipartReader(Microsoft.Net.Http.Headers.HeaderUtilities.RemoveQuotes(type.Boundary).Value!, http.Request.Body);
                var metadata = await reader.ReadNextSectionAsync();
                if (metadata is null || !(metadata.ContentType ?? "").StartsWith("application/json", StringComparison.OrdinalIgnoreCase))
                    return GoogleError(400, "Invalid multipart request: metadata (application/json) then media (message/*) expected.", "badContent", "INVALID_ARGUMENT");
                using (var meta = await JsonDocument.ParseAsync(metadata.Body))
                    thread = meta.RootElement.TryGetProperty("threadId", out var t) ? t.GetString() : null;
                var media = await reader.ReadNextSectionAsync();
                if (media is null || !(media.ContentType ?? "").StartsWith("message/rfc822", StringComparison.OrdinalIgnoreCase))
                    return GoogleError(400, "Invalid multipart request: metadata (application/json) then media (message/*) expected.", "badContent", "INVALID_ARGUMENT");
                using var ms = new MemoryStream();
                await media.Body.CopyToAsync(ms);
                bytes = ms.ToArray();
            }
            else return GoogleError(400, "Invalid upload type: " + uploadType, "invalidArgument", "INVALID_ARGUMENT");
            if (bytes.Length > MaxUploadBytes) return GoogleError(413, "Request Too Large", "uploadTooLarge", "INVALID_ARGUMENT");
            lock (gate) SendsVia.Add("upload:" + uploadType);
            if (thread is not null && !box.Messages.Any(x => x.ThreadId == thread))
                return GoogleError(400, "Invalid thread_id value", "invalidArgument", "INVALID_ARGUMENT");
            return Send(box, bytes, thread);
        });

        IResult Send(Mailbox box, byte[] bytes, string? thread)
        {
            MimeMessage mime;
            try
            {
                mime = MimeMessage.Load(new MemoryStream(bytes));
            }
            catch (FormatException)
            {
                return GoogleError(400, "Invalid value for ByteString", "invalidArgument", "INVALID_ARGUMENT");
            }
            if (!mime.To.Mailboxes.Concat(mime.Cc.Mailboxes).Concat(mime.Bcc.Mailboxes).Any())
                return GoogleError(400, "Recipient address required", "invalidArgument", "INVALID_ARGUMENT");
            // Recipients are taken from the headers; Bcc is delivered and then dropped from what is stored.
            var recipients = mime.To.Mailboxes.Concat(mime.Cc.Mailboxes).Concat(mime.Bcc.Mailboxes).Select(m => m.Address.ToLowerInvariant()).ToList();
            // Gmail's threads guide: a sent message joins a thread only when the request names it (threadId), whatever its
            // References say; without one it starts a thread of its own in the sender's mailbox.
            var m = Add(box, mime, ["SENT"], thread, rewriteMessageId: true, threadByReferences: false);
            lock (gate) SentEnvelopes[m.Id] = recipients;
            return Results.Json(new { id = m.Id, threadId = m.ThreadId, labelIds = m.Labels });
        }

        gmail.MapGet("/messages/{id}", (HttpContext http, string id) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            lock (gate)
            {
                var m = box.Messages.FirstOrDefault(x => x.Id == id);
                if (m is null) return GoogleError(404, "Requested entity was not found.", "notFound", "NOT_FOUND");
                var format = http.Request.Query["format"].ToString();
                var common = new Dictionary<string, object>
                {
                    ["id"] = m.Id, ["threadId"] = m.ThreadId, ["labelIds"] = m.Labels, ["snippet"] = "",
                    ["sizeEstimate"] = m.Raw.Length, ["historyId"] = m.HistoryId.ToString(CultureInfo.InvariantCulture),
                    ["internalDate"] = m.InternalDate.ToString(CultureInfo.InvariantCulture),
                };
                if (format == "raw")
                {
                    box.RawGets.Add(m.Id);
                    common["raw"] = B64(m.Raw);
                }
                else if (format == "metadata")
                {
                    var wanted = http.Request.Query["metadataHeaders"].Select(h => h!).ToHashSet(StringComparer.OrdinalIgnoreCase);
                    common["payload"] = new
                    {
                        partId = "", mimeType = m.Mime.Body?.ContentType.MimeType ?? "text/plain",
                        headers = m.Mime.Headers.Select(h => NameAndValue(h, box.HeaderValuesAsWritten)).Where(h => wanted.Count == 0 || wanted.Contains(h.Name))
                            .Select(h => new { name = h.Name, value = h.Value }).ToArray(),
                    };
                }
                return Results.Json(common);
            }
        });

        gmail.MapGet("/messages", (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            var q = http.Request.Query["q"].ToString();
            var max = int.TryParse(http.Request.Query["maxResults"], out var mr) ? Math.Clamp(mr, 1, 500) : 100;
            var offset = int.TryParse(http.Request.Query["pageToken"], out var pt) ? pt : 0;
            lock (gate)
            {
                box.ListCalls++;
                // Like Gmail, SPAM and TRASH only with includeSpamTrash=true.
                IEnumerable<Message> found = http.Request.Query["includeSpamTrash"] == "true"
                    ? box.Messages
                    : box.Messages.Where(m => !m.Labels.Contains("SPAM") && !m.Labels.Contains("TRASH"));
                // The search operators the connector uses, as Gmail reads them; any other word matches nothing here (Gmail
                // would search the text for it), so that a search the fake does not know cannot pass for a match.
                foreach (var term in q.Split(' ', StringSplitOptions.RemoveEmptyEntries))
                {
                    var newer = System.Text.RegularExpressions.Regex.Match(term, @"^newer_than:(\d+)d$");
                    if (newer.Success)
                    {
                        var cutoff = DateTimeOffset.UtcNow.AddDays(-int.Parse(newer.Groups[1].Value, CultureInfo.InvariantCulture)).ToUnixTimeMilliseconds();
                        found = found.Where(m => m.InternalDate >= cutoff);
                    }
                    else if (term.Equals("in:sent", StringComparison.OrdinalIgnoreCase)) found = found.Where(m => m.Labels.Contains("SENT"));
                    else if (System.Text.RegularExpressions.Regex.Match(term, @"^after:(\d+)$") is { Success: true } after)
                    {
                        // after: with a number is seconds since the epoch.
                        var since = long.Parse(after.Groups[1].Value, CultureInfo.InvariantCulture) * 1000;
                        found = found.Where(m => m.InternalDate >= since);
                    }
                    else if (term.StartsWith("rfc822msgid:", StringComparison.OrdinalIgnoreCase))
                    {
                        // The Message-ID the message has in Gmail (for mail sent through the API, the one Gmail gave it).
                        var wanted = term["rfc822msgid:".Length..].Trim('<', '>');
                        found = found.Where(m => m.MessageId == wanted);
                    }
                    else found = [];
                }
                var all = found.OrderByDescending(m => m.InternalDate).ThenByDescending(m => m.HistoryId).ToList();
                var page = all.Skip(offset).Take(max).Select(m => new { id = m.Id, threadId = m.ThreadId }).ToList();
                var body = new Dictionary<string, object> { ["resultSizeEstimate"] = all.Count };
                if (page.Count > 0) body["messages"] = page;
                if (offset + max < all.Count) body["nextPageToken"] = (offset + max).ToString(CultureInfo.InvariantCulture);
                return Results.Json(body);
            }
        });

        gmail.MapGet("/history", (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            if (!ulong.TryParse(http.Request.Query["startHistoryId"], out var start) || start == 0)
                return GoogleError(400, "Invalid startHistoryId", "invalidArgument", "INVALID_ARGUMENT");
            var max = int.TryParse(http.Request.Query["maxResults"], out var mr) ? Math.Clamp(mr, 1, 500) : 100;
            var offset = int.TryParse(http.Request.Query["pageToken"], out var pt) ? pt : 0;
            lock (gate)
            {
                box.HistoryCalls++;
                if (start < box.HistoryFloor)
                {
                    box.HistoryNotFound++;
                    return GoogleError(404, "Requested entity was not found.", "notFound", "NOT_FOUND");
                }
                // historyTypes narrows the records to those kinds; without it every kind is listed.
                var types = http.Request.Query["historyTypes"].Select(t => t!).ToHashSet(StringComparer.OrdinalIgnoreCase);
                var after = box.History.Where(h => h.Id > start && (types.Count == 0 || types.Contains(h.Type))).ToList();
                var page = after.Skip(offset).Take(max).Select(h =>
                {
                    var record = new Dictionary<string, object>
                    {
                        ["id"] = h.Id.ToString(CultureInfo.InvariantCulture),
                        ["messages"] = new[] { new { id = h.Message.Id, threadId = h.Message.ThreadId } },
                    };
                    var message = new { id = h.Message.Id, threadId = h.Message.ThreadId, labelIds = h.Message.Labels };
                    if (h.Type == "messageAdded") record["messagesAdded"] = new[] { new { message = new { message.id, message.threadId, labelIds = h.LabelIds } } };
                    else if (h.Type == "labelAdded") record["labelsAdded"] = new[] { new { message, labelIds = h.LabelIds } };
                    else if (h.Type == "labelRemoved") record["labelsRemoved"] = new[] { new { message, labelIds = h.LabelIds } };
                    return record;
                }).ToList();
                var body = new Dictionary<string, object> { ["historyId"] = box.HistoryId.ToString(CultureInfo.InvariantCulture) };
                if (page.Count > 0) body["history"] = page;
                if (offset + max < after.Count) body["nextPageToken"] = (offset + max).ToString(CultureInfo.InvariantCulture);
                return Results.Json(body);
            }
        });

        gmail.MapPost("/watch", async (HttpContext http) =>
        {
            var box = (Mailbox)http.Items["mailbox"]!;
            using var body = await JsonDocument.ParseAsync(http.Request.Body);
            if (!body.RootElement.TryGetProperty("topicName", out var topic) || topic.GetString() is not { Length: > 0 } name)
                return GoogleError(400, "Invalid topicName", "invalidArgument", "INVALID_ARGUMENT");
            if (box.WatchRefused)
                return GoogleError(403, $"Error sending test message to Cloud PubSub {name} : User not authorized to perform this action.", "forbidden", "PERMISSION_DENIED");
            lock (gate)
            {
                box.WatchTopics.Add(name);
                return Results.Json(new
                {
                    historyId = box.HistoryId.ToString(CultureInfo.InvariantCulture),
                    expiration = DateTimeOffset.UtcNow.AddDays(7).ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
                });
            }
        });

        gmail.MapPost("/stop", (HttpContext http) =>
        {
            lock (gate) ((Mailbox)http.Items["mailbox"]!).StopCalls++;
            return Results.NoContent();
        });
    }

    /// <summary>Who each message sent through the API went to (Gmail reads recipients from To, Cc and Bcc).</summary>
    public Dictionary<string, List<string>> SentEnvelopes { get; } = [];

    /// <summary>How each send arrived, in order: "raw" (JSON), "upload:media" or "upload:multipart".</summary>
    public List<string> SendsVia { get; } = [];

    /// <summary>users.messages.send's media upload takes messages up to 35 MB (its reference's "Maximum file size").</summary>
    public const int MaxUploadBytes = 35 * 1024 * 1024;

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
        signingKey.Dispose();
    }
}
