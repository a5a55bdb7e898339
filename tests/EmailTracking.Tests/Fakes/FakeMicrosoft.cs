using System.Net;
using System.Security.Cryptography;
using System.Security.Cryptography.X509Certificates;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Logging;
using MimeKit;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// The Microsoft identity platform and Microsoft Graph, as far as the connector uses them, on a loopback port over HTTPS
/// (MSAL accepts only https authorities). It follows the documented wire formats: the v2.0 authorize and token
/// endpoints (authorization code with PKCE, refresh token, invalid_grant once revoked), /me, creating and sending
/// messages (Exchange gives the sent copy a new internetMessageId and files it in Sent Items), listing with $filter on
/// an extended property, $value MIME, mail folders (well-known names, child folders, pages of folders with
/// @odata.nextLink), delta per folder with nextLink/deltaLink and 410 for forgotten sync state, subscriptions
/// with the validation handshake, change and lifecycle notifications, and 429 with Retry-After when told to throttle.
/// </summary>
public sealed partial class FakeMicrosoft : IAsyncDisposable
{
    public const string ClientId = "7f1c9d2e-fake-4c1b-9a55-emailtracking";
    public const string ClientSecret = "fake-secret-value";
    public const string TenantId = "9188040d-6c67-4c5b-b112-36a304b66dad";

    WebApplication app = null!;
    readonly object gate = new();
    readonly Dictionary<string, Account> accounts = new(StringComparer.OrdinalIgnoreCase);
    readonly Dictionary<string, (Account Account, string RedirectUri, string Challenge, string Scope)> codes = [];
    readonly Dictionary<string, Account> refreshTokens = [];
    readonly Dictionary<string, Account> accessTokens = [];
    readonly Dictionary<string, Subscription> subscriptions = [];
    long sequence;
    int epoch = 1;
    int throttle;
    int throttleStatus = 429;
    string throttleRetryAfter = "1";

    public X509Certificate2 Certificate { get; }
    public string BaseUrl { get; private set; } = "";
    public string Instance => BaseUrl + "/";
    public string GraphBaseUrl => BaseUrl + "/v1.0";

    /// <summary>Reaches the server under test (its in-memory TestServer): the handshake and the notifications go there.</summary>
    public Func<HttpMessageHandler>? AppHandler { get; set; }

    /// <summary>Answer $filter on extended properties with 400, as a server that does not support it would.</summary>
    public bool RefusePropertyFilter { get; set; }

    /// <summary>
    /// The app registration's client secret has expired (secrets live 6 to 24 months): the token endpoint answers every
    /// grant with invalid_client (AADSTS7000222), whoever the user.
    /// </summary>
    public bool ClientSecretExpired { get; set; }

    /// <summary>Seconds an access token lives; under MSAL's 5-minute margin every call refreshes it.</summary>
    public int AccessTokenLifetime { get; set; } = 3600;

    public sealed class Account(string address)
    {
        public string Address { get; } = address;
        public string Oid { get; } = Guid.NewGuid().ToString();
        public bool Revoked { get; set; }
        public List<Message> Messages { get; } = [];
        public List<MimeMessage> Outbox { get; } = [];
        public int DeltaCalls { get; set; }
        public List<string> DeltaLog { get; } = [];
        public int NextLinkCalls { get; set; }

        /// <summary>Each GET /me/mailFolders/{folder} (a well-known name or an id), in order, in a batch or not.</summary>
        public List<string> FolderGets { get; } = [];

        /// <summary>Those of <see cref="FolderGets"/> sent on their own, not inside a $batch.</summary>
        public List<string> SingleFolderGets { get; } = [];

        /// <summary>Each POST /$batch: the method and URL of each request in it.</summary>
        public List<List<string>> Batches { get; } = [];

        /// <summary>POST /$batch answers this status as a whole (400, 404, 503...); null: it is answered request by request.</summary>
        public int? BatchRefusal { get; set; }

        /// <summary>Requests in a batch for these folders (the segment after /me/mailFolders/) are answered with this status (a 503 inside a 200).</summary>
        public Dictionary<string, int> BatchStepRefusals { get; } = [];
        public Dictionary<string, int> MimeReads { get; } = [];
        public int TokenRefreshes { get; set; }

        /// <summary>The tenant does not let this app subscribe (POST /subscriptions answers 403); the mail itself stays readable.</summary>
        public bool SubscriptionsForbidden { get; set; }

        /// <summary>How many subscriptions were refused for <see cref="SubscriptionsForbidden"/>.</summary>
        public int SubscriptionRefusals { get; set; }

        /// <summary>Exchange refuses the mailbox (no license any more, access withdrawn): its mail answers 403 ErrorAccessDenied.</summary>
        public bool MailboxForbidden { get; set; }

        /// <summary>
        /// The mailbox's folders: the well-known ones a new Exchange mailbox has under the top of its store, then those
        /// the user (or a rule) makes.
        /// </summary>
        public List<MailFolder> Folders { get; } =
        [
            .. new[]
            {
                ("inbox", "Inbox"), ("sentitems", "Sent Items"), ("drafts", "Drafts"), ("deleteditems", "Deleted Items"), ("junkemail", "Junk Email"),
                ("outbox", "Outbox"), ("archive", "Archive"), ("conversationhistory", "Conversation History"),
            }.Select(f => new MailFolder(NewFolderId(), f.Item1, f.Item2, null, f.Item1)),
        ];
    }

    /// <summary>
    /// A mail folder. Messages name it by <see cref="Key"/>: a well-known folder by its well-known name (as the rest of
    /// the fake always did), another by its id.
    /// </summary>
    public sealed class MailFolder(string id, string key, string displayName, string? parentKey, string? wellKnownName = null)
    {
        public string Id { get; } = id;
        public string Key { get; } = key;
        public string DisplayName { get; set; } = displayName;
        public string? ParentKey { get; set; } = parentKey;
        public string? WellKnownName { get; } = wellKnownName;
        public bool Hidden { get; set; }

        /// <summary>Its delta answers this (403 ErrorAccessDenied, 404 ErrorItemNotFound) while set.</summary>
        public int? DeltaRefusal { get; set; }
    }

    public sealed class Message
    {
        public required string Id { get; set; }
        public required string Folder { get; set; }
        public long Sequence { get; set; }
        public required string InternetMessageId { get; set; }
        public required string ConversationId { get; set; }
        public DateTimeOffset Received { get; set; }
        public string Subject { get; set; } = "";
        public byte[] Mime { get; set; } = [];
        public List<(string Name, string Value)> Headers { get; } = [];

        /// <summary>
        /// Exchange cannot give this item as MIME: its $value answers 500 ErrorMimeContentConversionFailed every time, as
        /// for S/MIME items (opaque-signed or encrypted) and reports about them (LogicLabs-OU/OpenArchiver#487), while
        /// the item itself, its internetMessageHeaders included, reads as usual.
        /// </summary>
        public bool MimeUnconvertible { get; set; }
        public Dictionary<string, string> Properties { get; } = [];
        public JsonObject? Draft { get; set; }
        /// <summary>The draft's files, as attached by POST .../attachments or an upload session.</summary>
        public List<(string Name, string ContentType, byte[] Bytes)> Attachments { get; } = [];
    }

    /// <summary>An attachment upload session (createUploadSession): the draft, the file, and the bytes received so far.</summary>
    public sealed class UploadSession(string id, Message draft, string name, string contentType, long size)
    {
        public string Id { get; } = id;
        public Message Draft { get; } = draft;
        public string Name { get; } = name;
        public string ContentType { get; } = contentType;
        public long Size { get; } = size;
        public MemoryStream Received { get; } = new();
        public bool Done { get; set; }
    }

    readonly Dictionary<string, UploadSession> uploadSessions = [];

    /// <summary>
    /// How files reached drafts, in order: "fileAttachment {name} {bytes}", "createUploadSession {name} {size}", and
    /// each PUT's "PUT {Content-Range}".
    /// </summary>
    public List<string> AttachmentLog { get; } = [];

    /// <summary>Graph's large-attachment guide: one POST for a file under 3 MB, an upload session from 3 MB to 150 MB.</summary>
    public const int SmallAttachmentLimit = 3 * 1024 * 1024;
    public const long UploadSessionLimit = 150L * 1024 * 1024;
    /// <summary>The most one PUT of a session may carry here (the guide asks for under 4 MB).</summary>
    public const int MaxSliceBytes = 4 * 1024 * 1024;

    public sealed record Subscription(string Id, Account Account, string Folder, string ClientState, string NotificationUrl, string? LifecycleUrl)
    {
        public DateTimeOffset Expires { get; set; }
    }

    FakeMicrosoft(X509Certificate2 certificate) => Certificate = certificate;

    public static async Task<FakeMicrosoft> StartAsync()
    {
        var certificate = SelfSigned();
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.ConfigureKestrel(k => k.Listen(IPAddress.Loopback, 0, l => l.UseHttps(certificate)));
        var web = builder.Build();
        var fake = new FakeMicrosoft(certificate) { app = web };
        fake.Map(web);
        await web.StartAsync();
        fake.BaseUrl = web.Urls.First().TrimEnd('/');
        return fake;
    }

    public async ValueTask DisposeAsync()
    {
        await app.StopAsync();
        await app.DisposeAsync();
    }

    static X509Certificate2 SelfSigned()
    {
        using var key = RSA.Create(2048);
        var request = new CertificateRequest("CN=fake-microsoft", key, HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1);
        var san = new SubjectAlternativeNameBuilder();
        san.AddIpAddress(IPAddress.Loopback);
        san.AddDnsName("localhost");
        request.CertificateExtensions.Add(san.Build());
        using var cert = request.CreateSelfSigned(DateTimeOffset.UtcNow.AddDays(-1), DateTimeOffset.UtcNow.AddDays(2));
        return X509CertificateLoader.LoadPkcs12(cert.Export(X509ContentType.Pfx), null);
    }

    /// <summary>An HttpClient handler that trusts this fake's certificate and nothing else unusual.</summary>
    public HttpMessageHandler TrustingHandler() => new SocketsHttpHandler
    {
        SslOptions = { RemoteCertificateValidationCallback = (_, cert, _, errors) => errors == System.Net.Security.SslPolicyErrors.None || cert?.GetCertHashString() == Certificate.GetCertHashString() },
        AllowAutoRedirect = false,
    };

    // ---- what tests do ----

    public Account AddAccount(string address)
    {
        lock (gate) return accounts[address] = new Account(address);
    }

    public Account this[string address] { get { lock (gate) return accounts[address]; } }

    /// <summary>The user withdrew consent (or an admin revoked sessions): refresh and access tokens stop working.</summary>
    public void Revoke(string address)
    {
        lock (gate) accounts[address].Revoked = true;
    }

    /// <summary>Graph stops accepting the access tokens handed out so far (401); refresh tokens stay good.</summary>
    public void ForgetAccessTokens()
    {
        lock (gate) accessTokens.Clear();
    }

    /// <summary>Microsoft forgets every delta sync state: stored delta links answer 410 Gone.</summary>
    public void ForgetSyncStates()
    {
        lock (gate) epoch++;
    }

    /// <summary>
    /// The next Graph calls answer 429 (or <paramref name="status"/>, e.g. 503) with Retry-After: <paramref name="retryAfter"/>
    /// seconds; 0 requests ends it.
    /// </summary>
    public void Throttle(int requests, int retryAfter = 1, int status = 429)
    {
        lock (gate)
        {
            throttle = requests;
            throttleRetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
            throttleStatus = status;
        }
    }

    int listingThrottle;
    string listingRetryAfter = "1";

    /// <summary>The next listings of the mailbox's folders (GET /me/mailFolders) answer 429 with Retry-After; the rest is answered.</summary>
    public void ThrottleFolderListing(int requests, int retryAfter)
    {
        lock (gate)
        {
            listingThrottle = requests;
            listingRetryAfter = retryAfter.ToString(System.Globalization.CultureInfo.InvariantCulture);
        }
    }

    /// <summary>
    /// While set, POST /subscriptions waits for it after the validation handshake, before the subscription exists, as a
    /// slow create at Microsoft does; <see cref="SubscriptionCreateHeld"/> completes once one waits.
    /// </summary>
    public TaskCompletionSource? HoldSubscriptionCreates
    {
        get => holdSubscriptionCreates;
        set
        {
            if (value is not null) SubscriptionCreateHeld = new(TaskCreationOptions.RunContinuationsAsynchronously);
            holdSubscriptionCreates = value;
        }
    }

    TaskCompletionSource? holdSubscriptionCreates;

    public TaskCompletionSource SubscriptionCreateHeld { get; private set; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

    /// <summary>Subscriptions created so far, whoever holds them now.</summary>
    public int SubscriptionsCreated { get; private set; }

    public List<Subscription> SubscriptionsOf(string address)
    {
        lock (gate) return [.. subscriptions.Values.Where(s => s.Account.Address.Equals(address, StringComparison.OrdinalIgnoreCase))];
    }

    /// <summary>Mail arrives in the Inbox. Exchange keeps an outside Message-ID and threads it by In-Reply-To/References.</summary>
    /// <param name="folder">Where it lands (a rule moves it at delivery): a folder's key.</param>
    public Message Deliver(string address, MimeMessage mime, string? conversationId = null, bool mimeUnconvertible = false, string folder = "inbox")
    {
        lock (gate)
        {
            var account = accounts[address];
            var related = mime.References.Append(mime.InReplyTo).Where(r => r is not null).ToHashSet();
            conversationId ??= account.Messages.FirstOrDefault(m => related.Contains(m.InternetMessageId.Trim('<', '>')))?.ConversationId ?? NewConversationId();
            var message = new Message
            {
                Id = NewId(), Folder = folder, Sequence = ++sequence, InternetMessageId = "<" + mime.MessageId + ">", ConversationId = conversationId,
                Received = DateTimeOffset.UtcNow, Subject = mime.Subject ?? "", Mime = Bytes(mime), MimeUnconvertible = mimeUnconvertible,
            };
            foreach (var h in mime.Headers) message.Headers.Add((h.Field, h.Value));
            account.Messages.Add(message);
            return message;
        }
    }

    /// <summary>
    /// Bytes that are not MIME land in the inbox (Exchange keeps what a broken server delivered and serves it back as
    /// the item's $value).
    /// </summary>
    public Message DeliverRaw(string address, byte[] raw, bool mimeUnconvertible = false)
    {
        lock (gate)
        {
            var message = new Message
            {
                Id = NewId(), Folder = "inbox", Sequence = ++sequence, InternetMessageId = $"<raw-{Guid.NewGuid():N}@fake.test>",
                ConversationId = NewConversationId(), Received = DateTimeOffset.UtcNow, Mime = raw, MimeUnconvertible = mimeUnconvertible,
            };
            accounts[address].Messages.Add(message);
            return message;
        }
    }

    /// <summary>
    /// The user sends from Outlook itself (an add-in stamped x-et-token): Exchange assigns the Message-ID, and files the
    /// mail in Sent Items. As reported for add-in headers, the header is in the MIME but not in internetMessageHeaders.
    /// </summary>
    public Message SendFromOutlook(string address, MimeMessage mime)
    {
        lock (gate)
        {
            var account = accounts[address];
            mime.MessageId = ExchangeMessageId();
            var message = new Message
            {
                Id = NewId(), Folder = "sentitems", Sequence = ++sequence, InternetMessageId = "<" + mime.MessageId + ">",
                ConversationId = NewConversationId(), Received = DateTimeOffset.UtcNow, Subject = mime.Subject ?? "", Mime = Bytes(mime),
            };
            foreach (var h in mime.Headers.Where(h => !h.Field.StartsWith("X-", StringComparison.OrdinalIgnoreCase))) message.Headers.Add((h.Field, h.Value));
            account.Messages.Add(message);
            account.Outbox.Add(mime);
            return message;
        }
    }

    public List<Message> Folder(string address, string folder)
    {
        lock (gate) return [.. accounts[address].Messages.Where(m => m.Folder == folder)];
    }

    /// <summary>The user (or a rule) makes a folder, at the top or inside another (by key); its key, which is its id.</summary>
    public string AddFolder(string address, string displayName, string? parentKey = null)
    {
        lock (gate)
        {
            var id = NewFolderId();
            accounts[address].Folders.Add(new MailFolder(id, id, displayName, parentKey));
            return id;
        }
    }

    public MailFolder MailFolderOf(string address, string key)
    {
        lock (gate) return accounts[address].Folders.Single(f => f.Key == key);
    }

    /// <summary>A folder is deleted for good, with what is in it and inside it.</summary>
    public void DeleteFolder(string address, string key)
    {
        lock (gate)
        {
            var a = accounts[address];
            foreach (var child in a.Folders.Where(f => f.ParentKey == key).Select(f => f.Key).ToList()) DeleteFolder(address, child);
            a.Folders.RemoveAll(f => f.Key == key);
            a.Messages.RemoveAll(m => m.Folder == key);
        }
    }

    /// <summary>The folder a path segment names (a well-known name, any case, or an id), or null.</summary>
    static MailFolder? Resolve(Account a, string segment) =>
        a.Folders.FirstOrDefault(f => f.Id == segment) ?? a.Folders.FirstOrDefault(f => f.WellKnownName is { } w && w.Equals(segment, StringComparison.OrdinalIgnoreCase));

    /// <summary>Graph posts a change notification for a new message in the folder to each subscription on it.</summary>
    public async Task<List<HttpStatusCode>> NotifyAsync(string address, string folder, string? clientState = null)
    {
        List<Subscription> subs;
        string? latest;
        lock (gate)
        {
            subs = [.. subscriptions.Values.Where(s => s.Account.Address.Equals(address, StringComparison.OrdinalIgnoreCase) && s.Folder == folder)];
            latest = accounts[address].Messages.LastOrDefault(m => m.Folder == folder)?.Id;
        }
        var results = new List<HttpStatusCode>();
        foreach (var s in subs)
        {
            var body = new JsonObject
            {
                ["value"] = new JsonArray(new JsonObject
                {
                    ["subscriptionId"] = s.Id,
                    ["subscriptionExpirationDateTime"] = s.Expires.ToString("o"),
                    ["changeType"] = "created",
                    ["resource"] = $"Users/{s.Account.Oid}/Messages/{latest}",
                    ["resourceData"] = new JsonObject
                    {
                        ["@odata.type"] = "#Microsoft.Graph.Message", ["@odata.id"] = $"Users/{s.Account.Oid}/Messages/{latest}",
                        ["@odata.etag"] = "W/\"CQAAABYAAAA\"", ["id"] = latest,
                    },
                    ["clientState"] = clientState ?? s.ClientState,
                    ["tenantId"] = TenantId,
                }),
            };
            results.Add(await PostToAppAsync(s.NotificationUrl, body));
        }
        return results;
    }

    /// <summary>A lifecycle notification; subscriptionRemoved also ends the subscription here.</summary>
    public async Task<HttpStatusCode> LifecycleAsync(string subscriptionId, string lifecycleEvent, string? clientState = null)
    {
        Subscription s;
        lock (gate)
        {
            s = subscriptions[subscriptionId];
            if (lifecycleEvent == "subscriptionRemoved") subscriptions.Remove(subscriptionId);
        }
        var body = new JsonObject
        {
            ["value"] = new JsonArray(new JsonObject
            {
                ["subscriptionId"] = s.Id, ["subscriptionExpirationDateTime"] = s.Expires.ToString("o"), ["tenantId"] = TenantId,
                ["clientState"] = clientState ?? s.ClientState, ["lifecycleEvent"] = lifecycleEvent,
            }),
        };
        return await PostToAppAsync(s.LifecycleUrl ?? throw new InvalidOperationException("no lifecycle URL"), body);
    }

    public List<string> Reauthorized { get; } = [];

    public List<string> Renewed { get; } = [];

    /// <summary>Requests no route of the fake took (a test's hint that the SDK calls something not faked).</summary>
    public List<string> Unmatched { get; } = [];

    async Task<HttpStatusCode> PostToAppAsync(string url, JsonNode body)
    {
        using var http = new HttpClient(AppHandler?.Invoke() ?? throw new InvalidOperationException("AppHandler is not set"));
        using var res = await http.PostAsync(url, new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json"));
        return res.StatusCode;
    }

    // ---- the wire ----

    void Map(WebApplication web)
    {
        web.MapGet("/{tenant}/v2.0/.well-known/openid-configuration", (string tenant) => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = $"{BaseUrl}/{TenantId}/v2.0",
            ["authorization_endpoint"] = $"{BaseUrl}/{tenant}/oauth2/v2.0/authorize",
            ["token_endpoint"] = $"{BaseUrl}/{tenant}/oauth2/v2.0/token",
            ["jwks_uri"] = $"{BaseUrl}/{tenant}/discovery/v2.0/keys",
            ["response_types_supported"] = new[] { "code", "id_token", "code id_token", "id_token token" },
            ["scopes_supported"] = new[] { "openid", "profile", "email", "offline_access" },
            ["code_challenge_methods_supported"] = new[] { "plain", "S256" },
        }));
        web.MapGet("/{tenant}/oauth2/v2.0/authorize", Authorize);
        web.MapFallback((HttpRequest r) =>
        {
            lock (gate) Unmatched.Add($"{r.Method} {r.Path}{r.QueryString}");
            return GraphError(404, "UnknownFakeRoute", $"The fake has no {r.Method} {r.Path}.");
        });
        web.MapPost("/{tenant}/oauth2/v2.0/token", (HttpRequest r) => Token(r.HttpContext));

        var graph = web.MapGroup("/v1.0");
        graph.AddEndpointFilter(async (ctx, next) =>
        {
            lock (gate)
            {
                if (throttle > 0)
                {
                    throttle--;
                    ctx.HttpContext.Response.Headers.RetryAfter = throttleRetryAfter;
                    return throttleStatus == 429
                        ? GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.")
                        : GraphError(throttleStatus, "ServiceUnavailable", "The service is temporarily unavailable.");
                }
            }
            var header = ctx.HttpContext.Request.Headers.Authorization.ToString();
            Account? account = null;
            lock (gate)
            {
                if (header.StartsWith("Bearer ", StringComparison.Ordinal)) accessTokens.TryGetValue(header[7..], out account);
                if (account is { Revoked: true }) account = null;
            }
            if (account is null) return GraphError(401, "InvalidAuthenticationToken", "Access token validation failure. Invalid audience.");
            var path = ctx.HttpContext.Request.Path.Value ?? "";
            if (account.MailboxForbidden && (path.Contains("/me/mailFolders", StringComparison.OrdinalIgnoreCase) || path.Contains("/me/messages", StringComparison.OrdinalIgnoreCase)))
            {
                return GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.");
            }
            lock (gate)
            {
                if (listingThrottle > 0 && path.Equals("/v1.0/me/mailFolders", StringComparison.OrdinalIgnoreCase))
                {
                    listingThrottle--;
                    ctx.HttpContext.Response.Headers.RetryAfter = listingRetryAfter;
                    return GraphError(429, "ApplicationThrottled", "Application is over its MailboxConcurrency limit.");
                }
            }
            ctx.HttpContext.Items["account"] = account;
            return await next(ctx);
        });
        graph.MapGet("/me", (HttpContext http) =>
        {
            var a = Me(http);
            return Results.Json(new JsonObject
            {
                ["@odata.context"] = $"{GraphBaseUrl}/$metadata#users/$entity",
                ["id"] = a.Oid, ["displayName"] = a.Address.Split('@')[0], ["mail"] = a.Address, ["userPrincipalName"] = a.Address,
            });
        });
        graph.MapPost("/me/messages", (HttpRequest r) => CreateMessage(r.HttpContext));
        graph.MapPost("/me/messages/{id}/send", SendMessage);
        graph.MapPost("/me/messages/{id}/attachments", AddAttachment);
        graph.MapPost("/me/messages/{id}/attachments/createUploadSession", CreateUploadSession);
        // The upload URL is pre-authenticated (outside /v1.0, no bearer token needed), as the guide says of outlook.office.com's.
        web.MapPut("/upload/attachmentSessions/{session}", UploadRange);
        graph.MapDelete("/me/messages/{id}", (HttpContext http, string id) =>
        {
            lock (gate) return Me(http).Messages.RemoveAll(m => m.Id == id) > 0 ? Results.NoContent() : GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
        });
        graph.MapGet("/me/messages/{id}/$value", (HttpContext http, string id) =>
        {
            lock (gate)
            {
                var a = Me(http);
                var m = a.Messages.FirstOrDefault(m => m.Id == id);
                if (m is null) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
                a.MimeReads[m.InternetMessageId] = a.MimeReads.GetValueOrDefault(m.InternetMessageId) + 1;
                if (m.MimeUnconvertible) return GraphError(500, "ErrorMimeContentConversionFailed", "MIME content conversion failed.");
                return Results.Bytes(m.Mime, "text/plain");
            }
        });
        graph.MapGet("/me/messages/{id}", (HttpContext http, string id) =>
        {
            lock (gate)
            {
                var m = Me(http).Messages.FirstOrDefault(m => m.Id == id);
                if (m is null) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
                var select = http.Request.Query["$select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
                return Results.Json(MessageJson(m, select));
            }
        });
        graph.MapPost("/$batch", (HttpRequest r) => Batch(r.HttpContext));
        graph.MapGet("/me/mailFolders", (HttpContext http) => ListFolders(http, null));
        graph.MapGet("/me/mailFolders/{folder}", GetFolder);
        graph.MapGet("/me/mailFolders/{folder}/childFolders", (HttpContext http, string folder) => ListFolders(http, folder));
        graph.MapGet("/me/mailFolders/{folder}/messages", ListMessages);
        graph.MapGet("/me/mailFolders/{folder}/messages/delta", Delta);
        // The Kiota SDK calls the function as delta(); Graph takes both spellings.
        graph.MapGet("/me/mailFolders/{folder}/messages/delta()", Delta);
        graph.MapPost("/subscriptions", (HttpRequest r) => CreateSubscription(r.HttpContext));
        graph.MapPatch("/subscriptions/{id}", async (HttpContext http, string id) =>
        {
            var body = await JsonNode.ParseAsync(http.Request.Body) as JsonObject;
            lock (gate)
            {
                if (!subscriptions.TryGetValue(id, out var s)) return GraphError(404, "ResourceNotFound", $"The object was not found. Subscription '{id}'.");
                s.Expires = DateTimeOffset.Parse(body!["expirationDateTime"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
                Renewed.Add(id);
                return Results.Json(SubscriptionJson(s));
            }
        });
        graph.MapDelete("/subscriptions/{id}", (string id) =>
        {
            lock (gate) return subscriptions.Remove(id) ? Results.NoContent() : GraphError(404, "ResourceNotFound", "The object was not found.");
        });
        graph.MapPost("/subscriptions/{id}/reauthorize", (string id) =>
        {
            lock (gate)
            {
                if (!subscriptions.ContainsKey(id)) return GraphError(404, "ResourceNotFound", "The object was not found.");
                Reauthorized.Add(id);
                return Results.NoContent();
            }
        });
    }

    static Account Me(HttpContext http) => (Account)http.Items["account"]!;

    /// <summary>Marks the fake's own requests for the steps of a batch.</summary>
    const string BatchedHeader = "X-Fake-Batched";

    /// <summary>
    /// POST /$batch (JSON batching, learn.microsoft.com/graph/json-batching): up to 20 requests, each with an id unique in
    /// the batch, a method and a URL relative to the version; each is run as a request of its own (here: sent to this
    /// fake with the batch's token) and answered by id with its status, headers and body, in no set order (here:
    /// backwards). The batch itself answers 200 whatever its requests do.
    /// </summary>
    async Task<IResult> Batch(HttpContext http)
    {
        var a = Me(http);
        if (await JsonNode.ParseAsync(http.Request.Body) is not JsonObject { } body || body["requests"] is not JsonArray { Count: > 0 } requests)
        {
            return GraphError(400, "BadRequest", "Invalid batch payload format.");
        }
        if (requests.Count > 20) return GraphError(400, "BadRequest", "Number of batch requests exceeds 20.");
        var steps = requests.Select(r => (Id: r?["id"]?.GetValue<string>(), Method: r?["method"]?.GetValue<string>(), Url: r?["url"]?.GetValue<string>())).ToList();
        if (steps.Any(r => r.Id is null || r.Method is null || r.Url is null) || steps.Select(r => r.Id!.ToUpperInvariant()).Distinct().Count() != steps.Count)
        {
            return GraphError(400, "BadRequest", "Invalid batch payload format.");
        }
        int? refusal;
        lock (gate)
        {
            a.Batches.Add([.. steps.Select(r => $"{r.Method} {r.Url}")]);
            refusal = a.BatchRefusal;
        }
        if (refusal is { } status) return GraphError(status, status == 400 ? "BadRequest" : "ServiceUnavailable", "The batch could not be processed.");
        var responses = new JsonArray();
        using var client = new HttpClient(TrustingHandler());
        foreach (var (id, method, url) in Enumerable.Reverse(steps))
        {
            var relative = url!.StartsWith('/') ? url : "/" + url;
            var folder = relative.StartsWith("/me/mailFolders/", StringComparison.OrdinalIgnoreCase) ? relative["/me/mailFolders/".Length..].Split('/', '?')[0] : null;
            int? stepRefusal;
            lock (gate) stepRefusal = folder is not null && a.BatchStepRefusals.TryGetValue(folder, out var r) ? r : null;
            if (stepRefusal is { } refused)
            {
                responses.Add(new JsonObject
                {
                    ["id"] = id, ["status"] = refused, ["headers"] = new JsonObject { ["Content-Type"] = "application/json", ["Retry-After"] = "1" },
                    ["body"] = new JsonObject { ["error"] = new JsonObject { ["code"] = "ServiceUnavailable", ["message"] = "The service is temporarily unavailable." } },
                });
                continue;
            }
            using var request = new HttpRequestMessage(new HttpMethod(method!), GraphBaseUrl + relative);
            request.Headers.TryAddWithoutValidation("Authorization", http.Request.Headers.Authorization.ToString());
            request.Headers.Add(BatchedHeader, "1");
            using var response = await client.SendAsync(request);
            var text = await response.Content.ReadAsStringAsync();
            responses.Add(new JsonObject
            {
                ["id"] = id, ["status"] = (int)response.StatusCode,
                ["headers"] = new JsonObject { ["Content-Type"] = response.Content.Headers.ContentType?.ToString() ?? "application/json" },
                ["body"] = text.Length > 0 ? JsonNode.Parse(text) : null,
            });
        }
        return Results.Json(new JsonObject { ["responses"] = responses });
    }

    static IResult GraphError(int status, string code, string message) => Results.Json(new JsonObject
    {
        ["error"] = new JsonObject
        {
            ["code"] = code, ["message"] = message,
            ["innerError"] = new JsonObject { ["date"] = DateTime.UtcNow.ToString("s"), ["request-id"] = Guid.NewGuid().ToString(), ["client-request-id"] = Guid.NewGuid().ToString() },
        },
    }, statusCode: status);

    static IResult OAuthError(string error, string description, int status = 400) => Results.Json(new JsonObject
    {
        ["error"] = error, ["error_description"] = description, ["error_codes"] = new JsonArray(description.StartsWith("AADSTS", StringComparison.Ordinal) ? int.Parse(description[6..description.IndexOf(':')]) : 0),
        ["timestamp"] = DateTime.UtcNow.ToString("u"), ["trace_id"] = Guid.NewGuid().ToString(), ["correlation_id"] = Guid.NewGuid().ToString(),
    }, statusCode: status);

    IResult Authorize(HttpContext http)
    {
        var q = http.Request.Query;
        if (q["client_id"] != ClientId) return Results.BadRequest("AADSTS700016: Application not found in the directory.");
        if (q["response_type"] != "code" || string.IsNullOrEmpty(q["redirect_uri"]) || q["code_challenge_method"] != "S256" || string.IsNullOrEmpty(q["code_challenge"]))
        {
            return Results.BadRequest("AADSTS900144: The request body must contain the following parameter.");
        }
        var redirect = q["redirect_uri"].ToString();
        var state = q["state"].ToString();
        Account? account;
        lock (gate) accounts.TryGetValue(q["login_hint"].ToString(), out account);
        if (account is null || q["consent"] == "deny")
        {
            return Results.Redirect($"{redirect}?error=access_denied&error_description={Uri.EscapeDataString("AADSTS65004: User declined to consent to access the app.")}&state={Uri.EscapeDataString(state)}");
        }
        var code = "M." + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        lock (gate) codes[code] = (account, redirect, q["code_challenge"].ToString(), q["scope"].ToString());
        return Results.Redirect($"{redirect}?code={Uri.EscapeDataString(code)}&state={Uri.EscapeDataString(state)}&session_state={Guid.NewGuid()}");
    }

    async Task<IResult> Token(HttpContext http)
    {
        var form = await http.Request.ReadFormAsync();
        if (form["client_id"] != ClientId || form["client_secret"] != ClientSecret)
        {
            return OAuthError("invalid_client", "AADSTS7000215: Invalid client secret provided.", 401);
        }
        if (ClientSecretExpired)
        {
            return OAuthError("invalid_client", $"AADSTS7000222: The provided client secret keys for app '{ClientId}' are expired. Visit the Azure portal to create new keys for your app.", 401);
        }
        Account account;
        string scope = form["scope"].ToString();
        lock (gate)
        {
            switch (form["grant_type"].ToString())
            {
                case "authorization_code":
                    if (!codes.Remove(form["code"].ToString(), out var grant)) return OAuthError("invalid_grant", "AADSTS70000: The provided authorization code is invalid or has expired.");
                    if (grant.RedirectUri != form["redirect_uri"]) return OAuthError("invalid_grant", "AADSTS50148: The redirect_uri does not match the one in the authorization request.");
                    var challenge = Convert.ToBase64String(SHA256.HashData(Encoding.ASCII.GetBytes(form["code_verifier"].ToString()))).TrimEnd('=').Replace('+', '-').Replace('/', '_');
                    if (challenge != grant.Challenge) return OAuthError("invalid_grant", "AADSTS501481: The Code_Verifier does not match the code_challenge supplied in the authorization request.");
                    account = grant.Account;
                    break;
                case "refresh_token":
                    if (!refreshTokens.TryGetValue(form["refresh_token"].ToString(), out var owner) || owner.Revoked)
                    {
                        return OAuthError("invalid_grant", "AADSTS50173: The provided grant has expired due to it being revoked, a fresh auth token is needed.");
                    }
                    account = owner;
                    account.TokenRefreshes++;
                    break;
                default:
                    return OAuthError("unsupported_grant_type", "AADSTS70003: The app requested an unsupported grant type.");
            }
        }
        var access = "eyJ0eXAi." + Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        var refresh = "0.AAAA" + Convert.ToHexString(RandomNumberGenerator.GetBytes(32));
        lock (gate)
        {
            accessTokens[access] = account;
            refreshTokens[refresh] = account;
        }
        var granted = string.Join(' ', scope.Split(' ', StringSplitOptions.RemoveEmptyEntries).Where(s => s is not ("openid" or "profile" or "offline_access")));
        return Results.Json(new JsonObject
        {
            ["token_type"] = "Bearer",
            ["scope"] = granted,
            ["expires_in"] = AccessTokenLifetime,
            ["ext_expires_in"] = AccessTokenLifetime,
            ["access_token"] = access,
            ["refresh_token"] = refresh,
            ["id_token"] = IdToken(account),
            ["client_info"] = B64(JsonSerializer.SerializeToUtf8Bytes(new { uid = account.Oid, utid = TenantId })),
        });
    }

    string IdToken(Account a)
    {
        var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
        var header = B64(JsonSerializer.SerializeToUtf8Bytes(new { typ = "JWT", alg = "RS256", kid = "fake" }));
        var payload = B64(JsonSerializer.SerializeToUtf8Bytes(new
        {
            aud = ClientId, iss = $"{BaseUrl}/{TenantId}/v2.0", iat = now, nbf = now, exp = now + 3600, name = a.Address.Split('@')[0],
            oid = a.Oid, preferred_username = a.Address, sub = "sub-" + a.Oid, tid = TenantId, ver = "2.0",
        }));
        return $"{header}.{payload}.{B64(RandomNumberGenerator.GetBytes(64))}";
    }

    static string B64(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    async Task<IResult> CreateMessage(HttpContext http)
    {
        if (await JsonNode.ParseAsync(http.Request.Body) is not JsonObject body) return GraphError(400, "RequestBodyRead", "Bad body.");
        var headers = body["internetMessageHeaders"] as JsonArray ?? [];
        if (headers.Count > 5) return GraphError(400, "InvalidInternetMessageHeaderCollection", "Maximum number of headers in one message should be less than or equal to 5.");
        foreach (var h in headers)
        {
            var name = h?["name"]?.GetValue<string>() ?? "";
            if (!name.StartsWith("x-", StringComparison.OrdinalIgnoreCase))
            {
                return GraphError(400, "InvalidInternetMessageHeader", $"The internet message header name '{name}' should start with 'x-' or 'X-'.");
            }
        }
        lock (gate)
        {
            var a = Me(http);
            var m = new Message
            {
                Id = NewId(), Folder = "drafts", Sequence = ++sequence, InternetMessageId = $"<draft-{Guid.NewGuid():N}@fake.outlook>",
                ConversationId = NewConversationId(), Received = DateTimeOffset.UtcNow, Subject = body["subject"]?.GetValue<string>() ?? "", Draft = body,
            };
            foreach (var h in headers) m.Headers.Add((h!["name"]!.GetValue<string>(), h["value"]!.GetValue<string>()));
            foreach (var p in body["singleValueExtendedProperties"] as JsonArray ?? []) m.Properties[p!["id"]!.GetValue<string>()] = p["value"]!.GetValue<string>();
            a.Messages.Add(m);
            var json = MessageJson(m, null);
            json["isDraft"] = true;
            return Results.Json(json, statusCode: 201);
        }
    }

    async Task<IResult> AddAttachment(HttpContext http, string id)
    {
        if (await JsonNode.ParseAsync(http.Request.Body) is not JsonObject body) return GraphError(400, "RequestBodyRead", "Bad body.");
        if (body["@odata.type"]?.GetValue<string>() != "#microsoft.graph.fileAttachment")
            return GraphError(400, "ErrorInvalidRequest", "The attachment's @odata.type must be #microsoft.graph.fileAttachment.");
        var name = body["name"]?.GetValue<string>();
        var content = body["contentBytes"]?.GetValue<string>();
        if (string.IsNullOrEmpty(name) || content is null) return GraphError(400, "ErrorInvalidRequest", "name and contentBytes are required.");
        var bytes = Convert.FromBase64String(content);
        if (bytes.Length >= SmallAttachmentLimit)
            return GraphError(413, "ErrorRequestEntityTooLarge", "The attachment is too large for one request: use an upload session for files of 3 MB or more.");
        lock (gate)
        {
            var draft = Me(http).Messages.FirstOrDefault(m => m.Id == id && m.Folder == "drafts");
            if (draft is null) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
            draft.Attachments.Add((name, body["contentType"]?.GetValue<string>() ?? "application/octet-stream", bytes));
            AttachmentLog.Add($"fileAttachment {name} {bytes.Length}");
            return Results.Json(new JsonObject
            {
                ["@odata.type"] = "#microsoft.graph.fileAttachment", ["id"] = "AAMkATT" + NewId(), ["name"] = name, ["size"] = bytes.Length,
                ["contentType"] = body["contentType"]?.GetValue<string>(), ["isInline"] = false,
            }, statusCode: 201);
        }
    }

    async Task<IResult> CreateUploadSession(HttpContext http, string id)
    {
        if (await JsonNode.ParseAsync(http.Request.Body) is not JsonObject body || body["AttachmentItem"] is not JsonObject item)
            return GraphError(400, "ErrorInvalidRequest", "AttachmentItem is required.");
        if (item["attachmentType"]?.GetValue<string>() != "file") return GraphError(400, "ErrorInvalidRequest", "attachmentType must be file.");
        var name = item["name"]?.GetValue<string>();
        var size = item["size"]?.GetValue<long>() ?? -1;
        if (string.IsNullOrEmpty(name) || size <= 0) return GraphError(400, "ErrorInvalidRequest", "name and size are required.");
        if (size > UploadSessionLimit) return GraphError(413, "ErrorAttachmentSizeShouldNotBeLessThanMinimumSize", "The attachment is larger than 150 MB.");
        lock (gate)
        {
            var draft = Me(http).Messages.FirstOrDefault(m => m.Id == id && m.Folder == "drafts");
            if (draft is null) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
            var session = new UploadSession("AAMkAS" + NewId(), draft, name, item["contentType"]?.GetValue<string>() ?? "application/octet-stream", size);
            uploadSessions[session.Id] = session;
            AttachmentLog.Add($"createUploadSession {name} {size}");
            return Results.Json(new JsonObject
            {
                ["@odata.context"] = $"{GraphBaseUrl}/$metadata#microsoft.graph.uploadSession",
                ["uploadUrl"] = $"{BaseUrl}/upload/attachmentSessions/{Uri.EscapeDataString(session.Id)}?authtoken={Convert.ToHexString(RandomNumberGenerator.GetBytes(16))}",
                ["expirationDateTime"] = DateTime.UtcNow.AddHours(1).ToString("o"),
                ["nextExpectedRanges"] = new JsonArray("0-"),
            }, statusCode: 201);
        }
    }

    [GeneratedRegex(@"^bytes (?<start>\d+)-(?<end>\d+)/(?<total>\d+)$")]
    private static partial Regex ContentRange();

    /// <summary>
    /// One PUT of an upload session: Content-Range <c>bytes {start}-{end}/{total}</c>, the bytes in order (start must be
    /// the next expected byte), at most 4 MB; 200 with nextExpectedRanges ["{next}"], and after the last byte 201 with a
    /// Location header and no body, as the guide shows.
    /// </summary>
    async Task<IResult> UploadRange(HttpContext http, string session)
    {
        using var buffer = new MemoryStream();
        await http.Request.Body.CopyToAsync(buffer);
        var bytes = buffer.ToArray();
        var range = ContentRange().Match(http.Request.Headers.ContentRange.ToString());
        lock (gate)
        {
            if (!uploadSessions.TryGetValue(session, out var s) || s.Done) return GraphError(404, "ErrorItemNotFound", "The upload session was not found.");
            AttachmentLog.Add("PUT " + http.Request.Headers.ContentRange);
            if (!range.Success) return GraphError(400, "InvalidContentRange", "Content-Range must be 'bytes {start}-{end}/{total}'.");
            var start = long.Parse(range.Groups["start"].Value);
            var end = long.Parse(range.Groups["end"].Value);
            var total = long.Parse(range.Groups["total"].Value);
            if (total != s.Size) return GraphError(400, "InvalidContentRange", $"The total {total} is not the session's size {s.Size}.");
            if (start != s.Received.Length) return GraphError(416, "InvalidContentRange", $"Bytes must be uploaded in order: the next expected is {s.Received.Length}.");
            if (end < start || end >= total || bytes.Length != end - start + 1) return GraphError(400, "InvalidContentRange", "The body's length does not match Content-Range.");
            if (bytes.Length > MaxSliceBytes) return GraphError(413, "ErrorRequestEntityTooLarge", "Upload at most 4 MB in one request.");
            if (!string.Equals(http.Request.ContentType, "application/octet-stream", StringComparison.OrdinalIgnoreCase))
                return GraphError(415, "UnsupportedMediaType", "Content-Type must be application/octet-stream.");
            s.Received.Write(bytes);
            if (s.Received.Length < s.Size)
            {
                return Results.Json(new JsonObject
                {
                    ["@odata.context"] = $"{BaseUrl}/api/v2.0/$metadata#Users/Messages/AttachmentSessions/$entity",
                    ["ExpirationDateTime"] = DateTime.UtcNow.AddHours(1).ToString("o"),
                    ["NextExpectedRanges"] = new JsonArray(s.Received.Length.ToString(System.Globalization.CultureInfo.InvariantCulture)),
                });
            }
            s.Done = true;
            var attachmentId = "AAMkATT" + NewId();
            s.Draft.Attachments.Add((s.Name, s.ContentType, s.Received.ToArray()));
            http.Response.Headers.Location = $"{BaseUrl}/api/v2.0/Users('{s.Draft.Id}')/Messages('{s.Draft.Id}')/Attachments('{attachmentId}')";
            return Results.StatusCode(201);
        }
    }

    IResult SendMessage(HttpContext http, string id)
    {
        lock (gate)
        {
            var a = Me(http);
            var draft = a.Messages.FirstOrDefault(m => m.Id == id && m.Folder == "drafts");
            if (draft?.Draft is not { } body) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
            a.Messages.Remove(draft);
            var mime = new MimeMessage { Subject = draft.Subject, Date = DateTimeOffset.UtcNow, MessageId = ExchangeMessageId() };
            mime.From.Add(new MailboxAddress(a.Address.Split('@')[0], a.Address));
            mime.To.AddRange(Addresses(body["toRecipients"]));
            mime.Cc.AddRange(Addresses(body["ccRecipients"]));
            foreach (var (name, value) in draft.Headers) mime.Headers.Add(name, value);
            var html = new TextPart("html") { Text = body["body"]?["content"]?.GetValue<string>() ?? "" };
            if (draft.Attachments.Count == 0) mime.Body = html;
            else
            {
                var mixed = new Multipart("mixed") { html };
                foreach (var (name, type, bytes) in draft.Attachments)
                {
                    mixed.Add(new MimePart(ContentType.Parse(type))
                    {
                        FileName = name, Content = new MimeContent(new MemoryStream(bytes)), ContentTransferEncoding = ContentEncoding.Base64,
                    });
                }
                mime.Body = mixed;
            }
            var sent = new Message
            {
                Id = NewId(), Folder = "sentitems", Sequence = ++sequence, InternetMessageId = "<" + mime.MessageId + ">",
                ConversationId = draft.ConversationId, Received = DateTimeOffset.UtcNow, Subject = draft.Subject, Mime = Bytes(mime),
            };
            foreach (var h in mime.Headers) sent.Headers.Add((h.Field, h.Value));
            foreach (var p in draft.Properties) sent.Properties[p.Key] = p.Value;
            a.Messages.Add(sent);
            var outgoing = MimeMessage.Load(new MemoryStream(sent.Mime));
            outgoing.Bcc.AddRange(Addresses(body["bccRecipients"]));
            a.Outbox.Add(outgoing);
            return Results.Accepted();
        }
    }

    static IEnumerable<MailboxAddress> Addresses(JsonNode? list) =>
        (list as JsonArray ?? []).Select(r => new MailboxAddress(r!["emailAddress"]!["name"]?.GetValue<string>(), r["emailAddress"]!["address"]!.GetValue<string>()));

    [GeneratedRegex(@"^singleValueExtendedProperties/Any\(ep: ep/id eq '(?<id>[^']+)' and ep/value eq '(?<value>[^']+)'\)$")]
    private static partial Regex PropertyFilter();

    IResult ListMessages(HttpContext http, string folder)
    {
        var q = http.Request.Query;
        var select = q["$select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
        lock (gate)
        {
            var items = Me(http).Messages.Where(m => m.Folder == folder.ToLowerInvariant());
            var filter = q["$filter"].ToString();
            if (filter.Length > 0)
            {
                var f = PropertyFilter().Match(filter);
                if (!f.Success || RefusePropertyFilter) return GraphError(400, "ErrorInvalidUrlQueryFilter", "The query filter contains one or more invalid nodes.");
                items = items.Where(m => m.Properties.TryGetValue(f.Groups["id"].Value, out var v) && v == f.Groups["value"].Value);
            }
            if (q["$orderby"] == "sentDateTime desc") items = items.OrderByDescending(m => m.Sequence);
            if (int.TryParse(q["$top"], out var top)) items = items.Take(top);
            return Results.Json(new JsonObject
            {
                ["@odata.context"] = $"{GraphBaseUrl}/$metadata#users('{Me(http).Oid}')/mailFolders('{folder}')/messages",
                ["value"] = new JsonArray([.. items.Select(m => (JsonNode)MessageJson(m, select))]),
            });
        }
    }

    JsonObject MessageJson(Message m, string[]? select)
    {
        var json = new JsonObject
        {
            ["@odata.type"] = "#microsoft.graph.message",
            ["@odata.etag"] = "W/\"CQAAABYAAAA\"",
            ["id"] = m.Id,
            ["receivedDateTime"] = m.Received.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["sentDateTime"] = m.Received.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ"),
            ["subject"] = m.Subject,
            ["internetMessageId"] = m.InternetMessageId,
            ["conversationId"] = m.ConversationId,
            ["isDraft"] = m.Folder == "drafts",
        };
        if (select is not null && select.Length > 0)
        {
            foreach (var key in json.Select(p => p.Key).ToList())
            {
                if (!key.StartsWith('@') && key != "id" && !select.Contains(key)) json.Remove(key);
            }
            // Graph gives no internetMessageHeaders for items in Sent Items: custom x- headers are only in their MIME
            // ($value). microsoftgraph/microsoft-graph-docs#2716, OfficeDev/office-js-docs-pr#5057.
            if (select.Contains("internetMessageHeaders") && m.Folder != "sentitems")
            {
                json["internetMessageHeaders"] = new JsonArray([.. m.Headers.Select(h => (JsonNode)new JsonObject { ["name"] = h.Name, ["value"] = h.Value })]);
            }
        }
        return json;
    }

    /// <summary>How many folders one page holds at most, whatever $top asks (Graph may answer fewer, with a next link).</summary>
    public int FolderPageLimit { get; set; } = 5;

    /// <summary>GET /me/mailFolders (the top of the store) or /me/mailFolders/{id}/childFolders: pages by $top and $skip, hidden folders only with includeHiddenFolders=true.</summary>
    IResult ListFolders(HttpContext http, string? parent)
    {
        var q = http.Request.Query;
        var select = q["$select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
        var top = int.TryParse(q["$top"], out var t) && t > 0 ? t : 10;
        var skip = int.TryParse(q["$skip"], out var k) && k > 0 ? k : 0;
        var hidden = string.Equals(q["includeHiddenFolders"], "true", StringComparison.OrdinalIgnoreCase);
        lock (gate)
        {
            var a = Me(http);
            string? parentKey = null;
            if (parent is not null)
            {
                if (Resolve(a, parent) is not { } p) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
                parentKey = p.Key;
            }
            var all = a.Folders.Where(f => f.ParentKey == parentKey && (hidden || !f.Hidden)).ToList();
            var page = all.Skip(skip).Take(Math.Min(top, FolderPageLimit)).ToList();
            var json = new JsonObject
            {
                ["@odata.context"] = $"{GraphBaseUrl}/$metadata#users('{a.Oid}')/mailFolders",
                ["value"] = new JsonArray([.. page.Select(f => (JsonNode)FolderJson(a, f, select))]),
            };
            if (skip + page.Count < all.Count)
            {
                var path = parent is null ? "/me/mailFolders" : $"/me/mailFolders/{Uri.EscapeDataString(parent)}/childFolders";
                var query = new List<string> { "%24top=" + top, "%24skip=" + (skip + page.Count) };
                if (select.Length > 0) query.Add("%24select=" + Uri.EscapeDataString(string.Join(',', select)));
                if (hidden) query.Add("includeHiddenFolders=true");
                json["@odata.nextLink"] = GraphBaseUrl + path + "?" + string.Join('&', query);
            }
            return Results.Json(json);
        }
    }

    IResult GetFolder(HttpContext http, string folder)
    {
        var select = http.Request.Query["$select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
        lock (gate)
        {
            var a = Me(http);
            a.FolderGets.Add(folder);
            if (!http.Request.Headers.ContainsKey(BatchedHeader)) a.SingleFolderGets.Add(folder);
            return Resolve(a, folder) is { } f ? Results.Json(FolderJson(a, f, select))
                : GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
        }
    }

    static JsonObject FolderJson(Account a, MailFolder f, string[] select)
    {
        var json = new JsonObject
        {
            ["id"] = f.Id,
            ["displayName"] = f.DisplayName,
            ["parentFolderId"] = f.ParentKey is { } p ? a.Folders.First(x => x.Key == p).Id : "AAMkAGI2msgfolderroot",
            ["childFolderCount"] = a.Folders.Count(x => x.ParentKey == f.Key),
            ["unreadItemCount"] = 0,
            ["totalItemCount"] = a.Messages.Count(m => m.Folder == f.Key),
            ["sizeInBytes"] = a.Messages.Where(m => m.Folder == f.Key).Sum(m => m.Mime.Length),
            ["isHidden"] = f.Hidden,
        };
        if (select.Length > 0)
        {
            foreach (var key in json.Select(p => p.Key).ToList())
            {
                if (key != "id" && !select.Contains(key)) json.Remove(key);
            }
        }
        return json;
    }

    static string NewFolderId() => "AAMkAGI2F" + B64(RandomNumberGenerator.GetBytes(60)) + "AAA=";

    sealed record DeltaToken(string Folder, long From, long To, int Epoch, DateTimeOffset? Since);

    IResult Delta(HttpContext http, string folder)
    {
        var q = http.Request.Query;
        var segment = folder;
        var pageSize = 10;
        var prefer = http.Request.Headers["Prefer"].ToString();
        if (prefer.StartsWith("odata.maxpagesize=", StringComparison.Ordinal) && int.TryParse(prefer["odata.maxpagesize=".Length..], out var size)) pageSize = size;
        lock (gate)
        {
            var a = Me(http);
            a.DeltaCalls++;
            if (Resolve(a, segment) is not { } mailFolder) return GraphError(404, "ErrorItemNotFound", "The specified object was not found in the store.");
            if (mailFolder.DeltaRefusal is { } refusal)
            {
                return refusal == 403 ? GraphError(403, "ErrorAccessDenied", "Access is denied. Check credentials and try again.")
                    : GraphError(refusal, "ErrorItemNotFound", "The specified object was not found in the store.");
            }
            folder = mailFolder.Key;
            DeltaToken window;
            var token = q["$skiptoken"].FirstOrDefault() ?? q["$deltatoken"].FirstOrDefault();
            if (token is not null)
            {
                DeltaToken? t;
                try
                {
                    t = JsonSerializer.Deserialize<DeltaToken>(Convert.FromBase64String(token));
                }
                catch (FormatException)
                {
                    t = null;
                }
                if (t is null || t.Folder != folder) return GraphError(400, "BadRequest", "Invalid delta token.");
                if (t.Epoch != epoch) return GraphError(410, "SyncStateNotFound", "The sync state generation is not found. Please restart the sync.");
                if (q.ContainsKey("$skiptoken")) a.NextLinkCalls++;
                window = q.ContainsKey("$skiptoken") ? t : t with { From = t.To, To = sequence };
            }
            else
            {
                DateTimeOffset? since = null;
                var filter = q["$filter"].ToString();
                if (filter.StartsWith("receivedDateTime ge ", StringComparison.Ordinal))
                {
                    since = DateTimeOffset.Parse(filter["receivedDateTime ge ".Length..], System.Globalization.CultureInfo.InvariantCulture);
                }
                else if (filter.Length > 0) return GraphError(400, "ErrorInvalidUrlQueryFilter", "Only receivedDateTime ge|gt is supported in delta.");
                window = new DeltaToken(folder, 0, sequence, epoch, since);
            }
            a.DeltaLog.Add($"{folder} ({window.From}, {window.To}] since {window.Since:O}");
            var items = a.Messages.Where(m => m.Folder == folder && m.Sequence > window.From && m.Sequence <= window.To && (window.Since is null || m.Received >= window.Since))
                .OrderBy(m => m.Sequence).Take(pageSize).ToList();
            var select = q["$select"].ToString().Split(',', StringSplitOptions.RemoveEmptyEntries);
            var link = $"{GraphBaseUrl}/me/mailFolders/{Uri.EscapeDataString(segment)}/messages/delta";
            var more = items.Count == pageSize && a.Messages.Any(m => m.Folder == folder && m.Sequence > items[^1].Sequence && m.Sequence <= window.To);
            var json = new JsonObject
            {
                ["@odata.context"] = $"{GraphBaseUrl}/$metadata#Collection(message)",
                ["value"] = new JsonArray([.. items.Select(m => (JsonNode)MessageJson(m, select.Length > 0 ? select : null))]),
            };
            if (more) json["@odata.nextLink"] = link + "?$skiptoken=" + Uri.EscapeDataString(Token(window with { From = items[^1].Sequence }));
            else json["@odata.deltaLink"] = link + "?$deltatoken=" + Uri.EscapeDataString(Token(window with { From = window.To }));
            return Results.Json(json);
        }
    }

    static string Token(DeltaToken t) => Convert.ToBase64String(JsonSerializer.SerializeToUtf8Bytes(t));

    [GeneratedRegex(@"^/?me/mailFolders\('(?<folder>[A-Za-z]+)'\)/messages$", RegexOptions.IgnoreCase)]
    private static partial Regex FolderResource();

    async Task<IResult> CreateSubscription(HttpContext http)
    {
        if (await JsonNode.ParseAsync(http.Request.Body) is not JsonObject body) return GraphError(400, "InvalidRequest", "Bad body.");
        if (Me(http).SubscriptionsForbidden)
        {
            lock (gate) Me(http).SubscriptionRefusals++;
            return GraphError(403, "ExtensionError", "Operation: Create; Exception: [Status Code: Forbidden; Reason: Forbidden]");
        }
        var resource = body["resource"]?.GetValue<string>() ?? "";
        var match = FolderResource().Match(resource);
        if (!match.Success) return GraphError(400, "InvalidRequest", $"Unsupported resource '{resource}'.");
        if (body["changeType"]?.GetValue<string>() != "created") return GraphError(400, "InvalidRequest", "Only 'created' is faked.");
        var notificationUrl = body["notificationUrl"]?.GetValue<string>() ?? "";
        var lifecycleUrl = body["lifecycleNotificationUrl"]?.GetValue<string>();
        var clientState = body["clientState"]?.GetValue<string>() ?? "";
        if (!notificationUrl.StartsWith("https://", StringComparison.Ordinal)) return GraphError(400, "ValidationError", "NotificationUrl must be https.");
        if (clientState.Length > 128) return GraphError(400, "ValidationError", "clientState is longer than 128 characters.");
        foreach (var url in new[] { notificationUrl, lifecycleUrl }.OfType<string>())
        {
            if (!await HandshakeAsync(url))
            {
                return GraphError(400, "ValidationError", "Subscription validation request failed. Notification endpoint must respond with 200 OK to validation request.");
            }
        }
        var expires = DateTimeOffset.Parse(body["expirationDateTime"]!.GetValue<string>(), System.Globalization.CultureInfo.InvariantCulture);
        if (expires > DateTimeOffset.UtcNow.AddMinutes(10080)) return GraphError(400, "InvalidRequest", "Subscription expiration can only be 10080 minutes in the future.");
        if (HoldSubscriptionCreates is { } hold)
        {
            // Microsoft goes on with a create whose caller has hung up: it does not watch the request being aborted.
            SubscriptionCreateHeld.TrySetResult();
            await hold.Task;
        }
        lock (gate)
        {
            SubscriptionsCreated++;
            var s = new Subscription(Guid.NewGuid().ToString(), Me(http), match.Groups["folder"].Value.ToLowerInvariant(), clientState, notificationUrl, lifecycleUrl) { Expires = expires };
            subscriptions[s.Id] = s;
            return Results.Json(SubscriptionJson(s), statusCode: 201);
        }
    }

    /// <summary>Graph's validation: POST {url}?validationToken=…, answered within 10 s with 200 text/plain and the decoded token.</summary>
    async Task<bool> HandshakeAsync(string url)
    {
        var token = $"Validation: Testing client application reachability for subscription Request-Id: {Guid.NewGuid()}";
        using var http = new HttpClient(AppHandler?.Invoke() ?? throw new InvalidOperationException("AppHandler is not set")) { Timeout = TimeSpan.FromSeconds(10) };
        try
        {
            using var res = await http.PostAsync(url + "?validationToken=" + Uri.EscapeDataString(token), new StringContent("", Encoding.UTF8, "text/plain"));
            return res.StatusCode == HttpStatusCode.OK && res.Content.Headers.ContentType?.MediaType == "text/plain" && await res.Content.ReadAsStringAsync() == token;
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException)
        {
            return false;
        }
    }

    static JsonObject SubscriptionJson(Subscription s) => new()
    {
        ["@odata.context"] = "https://graph.microsoft.com/v1.0/$metadata#subscriptions/$entity",
        ["id"] = s.Id, ["resource"] = $"me/mailFolders('{s.Folder}')/messages", ["applicationId"] = ClientId, ["changeType"] = "created",
        ["clientState"] = s.ClientState, ["notificationUrl"] = s.NotificationUrl, ["lifecycleNotificationUrl"] = s.LifecycleUrl,
        ["expirationDateTime"] = s.Expires.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ss.fffffffZ"), ["creatorId"] = s.Account.Oid,
    };

    static string NewId() => "AAMkAGI2" + B64(RandomNumberGenerator.GetBytes(90));

    static string NewConversationId() => "AAQkAGI2" + B64(RandomNumberGenerator.GetBytes(30));

    static string ExchangeMessageId() => $"{Convert.ToHexString(RandomNumberGenerator.GetBytes(10))}@DM6PR11MB4587.namprd11.prod.outlook.com";

    static byte[] Bytes(MimeMessage mime)
    {
        using var ms = new MemoryStream();
        mime.WriteTo(ms);
        return ms.ToArray();
    }
}
