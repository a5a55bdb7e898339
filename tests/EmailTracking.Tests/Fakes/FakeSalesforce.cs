using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;

namespace EmailTracking.Tests.Fakes;

/// <summary>
/// Salesforce as the connector sees it, on a loopback port that is both the login URL and the instance URL: the OAuth
/// authorize and token endpoints (authorization_code, refresh_token and JWT bearer grants, with
/// <c>{"error","error_description"}</c> bodies), revoke, and the REST API's SOQL query (enough of SOQL for
/// <c>SELECT … FROM Contact|Lead|Task WHERE Field = '…' AND Field IN (…) LIMIT n</c>, string literals with their
/// backslash escapes), sObject describe, create and upsert by external id, and error bodies <c>[{"message","errorCode","fields"}]</c>.
/// An org with <see cref="SharedActivities"/> has Task.TaskWhoIds and TaskRelation (one Lead or up to 50 Contacts a Task).
/// Tests can expire sessions, revoke refresh tokens, queue errors (limits, outages), add a validation rule, or take
/// the whole thing down (connection refused, or 503) and back.
/// </summary>
public sealed class FakeSalesforce : IAsyncDisposable
{
    public const string ClientId = "3MVG9fake.consumer.key";
    public const string ClientSecret = "fake-consumer-secret";
    public const string KeyField = "EmailTracking_Key__c";
    const string OrgId = "00D000000000001AAA";

    readonly object gate = new();
    WebApplication? app;
    int port;

    public string BaseUrl => $"http://127.0.0.1:{port}";

    // ---- the org's data ----

    public sealed class SObject(string type, string id)
    {
        public string Type { get; } = type;
        public string Id { get; } = id;
        public Dictionary<string, JsonNode?> Fields { get; } = new(StringComparer.OrdinalIgnoreCase);
        public string? this[string f] => Fields.TryGetValue(f, out var v) && v is JsonValue jv && jv.TryGetValue<string>(out var s) ? s : v?.ToJsonString();
    }

    readonly Dictionary<string, SObject> records = [];
    static readonly Dictionary<string, string> Prefixes = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Account"] = "001", ["Contact"] = "003", ["Lead"] = "00Q", ["Task"] = "00T", ["TaskRelation"] = "0RT",
        ["Opportunity"] = "006", ["OpportunityContactRole"] = "00K",
    };
    static readonly Dictionary<string, HashSet<string>> Columns = new(StringComparer.OrdinalIgnoreCase)
    {
        ["Account"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "Name" },
        ["Contact"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "AccountId", "Email", "FirstName", "LastName" },
        ["Lead"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "Email", "LastName", "Company", "IsConverted", "Description" },
        ["Task"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "Subject", "WhoId", "WhatId", "ActivityDate", "Status", "Description", KeyField },
        ["Opportunity"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "Name", "AccountId", "StageName", "IsClosed" },
        ["OpportunityContactRole"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "OpportunityId", "ContactId", "Role", "IsPrimary" },
        // Only in an org with Shared Activities.
        ["TaskRelation"] = new(StringComparer.OrdinalIgnoreCase) { "Id", "TaskId", "RelationId", "IsWhat", "AccountId" },
    };

    /// <summary>The JunctionIdList on Task that an org with Shared Activities has.</summary>
    public const string TaskWhoIds = "TaskWhoIds";
    /// <summary>Salesforce relates a Task to one Lead or up to 50 Contacts.</summary>
    public const int MaxContactsPerTask = 50;
    long nextId = 1;

    string NewId(string type) => Prefixes[type] + nextId++.ToString("D12", CultureInfo.InvariantCulture) + "AAA";

    SObject Add(string type, params (string Field, JsonNode? Value)[] fields)
    {
        lock (gate)
        {
            var o = new SObject(type, NewId(type));
            foreach (var (f, v) in fields) o.Fields[f] = v;
            records[o.Id] = o;
            return o;
        }
    }

    public string AddAccount(string name) => Add("Account", ("Name", name)).Id;
    public string AddContact(string email, string? accountId = null, string lastName = "Flynn") =>
        Add("Contact", ("Email", email), ("AccountId", accountId), ("LastName", lastName)).Id;
    public string AddLead(string email, bool converted = false) =>
        Add("Lead", ("Email", email), ("LastName", "Lead"), ("Company", "Acme"), ("IsConverted", converted)).Id;

    public string AddOpportunity(string accountId, bool closed = false, string name = "Grid expansion") =>
        Add("Opportunity", ("Name", name), ("AccountId", accountId), ("StageName", closed ? "Closed Won" : "Prospecting"), ("IsClosed", closed)).Id;
    public string AddContactRole(string opportunityId, string contactId, bool primary = false) =>
        Add("OpportunityContactRole", ("OpportunityId", opportunityId), ("ContactId", contactId), ("Role", "Decision Maker"), ("IsPrimary", primary)).Id;

    /// <summary>A Task with a key, as an org whose key field is not Unique could hold twice.</summary>
    public string AddTask(string key, string subject = "Logged by hand") => Add("Task", (KeyField, key), ("Subject", subject)).Id;

    public List<SObject> All(string type)
    {
        lock (gate) return records.Values.Where(r => r.Type == type).ToList();
    }

    public List<SObject> TasksFor(string whoId) => All("Task").Where(t => t["WhoId"] == whoId).ToList();

    /// <summary>The people (Contacts, Lead) a Task is related to through its TaskRelation records (Shared Activities).</summary>
    public List<string> RelatedTo(string taskId) =>
        All("TaskRelation").Where(r => r["TaskId"] == taskId && r["IsWhat"] == "false")
            .OrderBy(r => r.Id, StringComparer.Ordinal).Select(r => r["RelationId"]!).ToList(); // as they were made

    /// <summary>Tasks related to a person through TaskRelation (Shared Activities), whether or not they are its WhoId.</summary>
    public List<SObject> TasksRelatedTo(string personId)
    {
        lock (gate)
        {
            return records.Values.Where(r => r.Type == "TaskRelation" && r["RelationId"] == personId && r["IsWhat"] == "false")
                .Select(r => records[r["TaskId"]!]).Distinct().ToList();
        }
    }

    // ---- what happened ----

    public List<Dictionary<string, string>> AuthorizationRequests { get; } = [];
    public int CodeExchanges { get; private set; }
    public int RefreshGrants { get; private set; }
    public int JwtGrants { get; private set; }
    public List<string> Revoked { get; } = [];
    /// <summary>Every SOQL query received, as sent.</summary>
    public List<string> Queries { get; } = [];
    /// <summary>The string literals of every query, as Salesforce reads them (escapes undone).</summary>
    public List<string> QueryLiterals { get; } = [];
    public int DataCalls { get; private set; }
    /// <summary>The user each admitted REST call acted for (whose access token it carried), in order.</summary>
    public List<string> DataCallers { get; } = [];
    /// <summary>The consumer secret the connected app has now (an admin may renew it): the server's setting must match.</summary>
    public string AcceptedClientSecret { get; set; } = ClientSecret;
    /// <summary>Describe calls received (any sObject).</summary>
    public int Describes { get; private set; }

    // ---- what tests change ----

    /// <summary>The public key of the certificate uploaded to the connected app (JWT bearer flow).</summary>
    public RSA? CertificateKey { get; set; }
    /// <summary>Users pre-authorised on the connected app (JWT bearer flow).</summary>
    public HashSet<string> PreAuthorised { get; } = new(StringComparer.OrdinalIgnoreCase);
    /// <summary>Whether the authorization_code grant hands out a refresh token (the connected app has the refresh_token scope).</summary>
    public bool GrantsRefreshToken { get; set; } = true;
    /// <summary>The connected app rotates refresh tokens: each refresh grant answers a new one and invalidates the one used.</summary>
    public bool RotatesRefreshTokens { get; set; }
    /// <summary>The instance_url the token endpoint answers instead of this server's own (a hostile or broken answer).</summary>
    public string? InstanceUrlOverride { get; set; }
    /// <summary>The identity URL (<c>id</c>) the token endpoint answers instead of this server's own.</summary>
    public string? IdentityUrlOverride { get; set; }
    /// <summary>
    /// The org has Shared Activities (Setup → Activity Settings → Allow users to relate multiple contacts to tasks and
    /// events): Task describes TaskWhoIds, WhoCount and WhatCount, and TaskRelation exists. Off, TaskWhoIds is no column.
    /// </summary>
    public bool SharedActivities { get; set; }
    /// <summary>The connection's user cannot see Opportunities (no permission, or an edition without them).</summary>
    public bool OpportunitiesHidden { get; set; }
    /// <summary>A validation rule on Task: the error message, or null when the Task passes.</summary>
    public Func<JsonObject, string?>? TaskValidationRule { get; set; }

    readonly Queue<(int Status, string Code, string Message, string? RetryAfter)> failures = new();

    /// <summary>The next REST (data) calls fail like this, one each.</summary>
    public void FailNext(int status, string errorCode, string message, int times = 1, string? retryAfter = null)
    {
        lock (gate) for (var i = 0; i < times; i++) failures.Enqueue((status, errorCode, message, retryAfter));
    }

    /// <summary>The next <paramref name="passing"/> REST calls go through, the one after fails like this.</summary>
    public void FailAfter(int passing, int status, string errorCode, string message)
    {
        lock (gate)
        {
            passBeforeFailure = passing;
            failures.Enqueue((status, errorCode, message, null));
        }
    }

    int passBeforeFailure;

    public void ClearFailures()
    {
        lock (gate)
        {
            failures.Clear();
            passBeforeFailure = 0;
        }
    }

    sealed record Grant(string User, string Scope);
    readonly Dictionary<string, (Grant Grant, string RedirectUri)> codes = [];
    readonly Dictionary<string, Grant> refreshTokens = [];
    readonly Dictionary<string, Grant> accessTokens = [];

    /// <summary>Every session ends (as after the session timeout): the next REST call gets 401 INVALID_SESSION_ID.</summary>
    public void ExpireSessions()
    {
        lock (gate) accessTokens.Clear();
    }

    /// <summary>An admin revokes the app's access (or the refresh token expires by policy): refresh grants get invalid_grant.</summary>
    public void RevokeAllRefreshTokens()
    {
        lock (gate)
        {
            refreshTokens.Clear();
            accessTokens.Clear();
        }
    }

    public int LiveRefreshTokens
    {
        get { lock (gate) return refreshTokens.Count; }
    }

    /// <summary>Answers 503 to everything (a maintenance window) until <see cref="Unavailable"/> is false again.</summary>
    public bool Unavailable { get; set; }

    /// <summary>Only the token endpoint answers 503 (login servers in maintenance while the instance works).</summary>
    public bool LoginUnavailable { get; set; }

    /// <summary>Stops listening: connections are refused until <see cref="Up"/>.</summary>
    public async Task DownAsync()
    {
        if (app is null) return;
        await app.StopAsync();
        await app.DisposeAsync();
        app = null;
    }

    public Task UpAsync() => app is null ? StartAsync() : Task.CompletedTask;

    public static async Task<FakeSalesforce> StartNewAsync()
    {
        var fake = new FakeSalesforce();
        await fake.StartAsync();
        return fake;
    }

    public static FakeSalesforce Start() => StartNewAsync().GetAwaiter().GetResult();

    async Task StartAsync()
    {
        var builder = WebApplication.CreateSlimBuilder();
        builder.Logging.ClearProviders();
        builder.WebHost.UseUrls($"http://127.0.0.1:{port}");
        var a = builder.Build();
        Map(a);
        await a.StartAsync();
        port = new Uri(a.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First()).Port;
        app = a;
    }

    public async ValueTask DisposeAsync()
    {
        await DownAsync();
        CertificateKey?.Dispose();
    }

    // ---- the endpoints ----

    void Map(WebApplication a)
    {
        a.Use(async (http, next) =>
        {
            if (Unavailable)
            {
                http.Response.StatusCode = 503;
                await http.Response.WriteAsync("<html><body>Service Unavailable: down for maintenance</body></html>");
                return;
            }
            await next(http);
        });
        a.MapGet("/services/oauth2/authorize", Authorize);
        a.MapPost("/services/oauth2/token", Token);
        a.MapPost("/services/oauth2/revoke", Revoke);
        a.MapGet("/id/{org}/{user}", Identity);
        a.MapGet("/services/data/{version}/query", Query);
        a.MapGet("/services/data/{version}/sobjects/{type}/describe", Describe);
        a.MapPost("/services/data/{version}/sobjects/{type}", Create);
        a.MapMethods("/services/data/{version}/sobjects/{type}/{field}/{value}", ["PATCH"], Upsert);
    }

    static Task OAuthError(HttpContext http, string error, string description, int status = 400) =>
        Json(http, status, new JsonObject { ["error"] = error, ["error_description"] = description });

    static async Task Json(HttpContext http, int status, JsonNode body)
    {
        http.Response.StatusCode = status;
        http.Response.ContentType = "application/json;charset=UTF-8";
        await http.Response.WriteAsync(body.ToJsonString());
    }

    static Task Errors(HttpContext http, int status, string code, string message, params string[] fields) =>
        Json(http, status, new JsonArray(new JsonObject
        {
            ["message"] = message, ["errorCode"] = code, ["fields"] = new JsonArray(fields.Select(f => (JsonNode?)f).ToArray()),
        }));

    /// <summary>The consent page, already signed in as <c>x_user</c> (default admin@org.test) and approving unless <c>x_deny</c>.</summary>
    IResult Authorize(HttpContext http)
    {
        var q = http.Request.Query.ToDictionary(k => k.Key, k => k.Value.ToString());
        lock (gate) AuthorizationRequests.Add(q);
        if (q.GetValueOrDefault("client_id") != ClientId || q.GetValueOrDefault("response_type") != "code" || !q.TryGetValue("redirect_uri", out var redirect))
            return Results.BadRequest("error=invalid_client_id");
        var state = Uri.EscapeDataString(q.GetValueOrDefault("state") ?? "");
        if (q.ContainsKey("x_deny")) return Results.Redirect($"{redirect}?error=access_denied&error_description=end-user+denied+authorization&state={state}");
        var code = "aPrx" + Convert.ToHexString(RandomNumberGenerator.GetBytes(12));
        lock (gate) codes[code] = (new Grant(q.GetValueOrDefault("x_user") ?? "admin@org.test", q.GetValueOrDefault("scope") ?? ""), redirect);
        return Results.Redirect($"{redirect}?code={Uri.EscapeDataString(code)}&state={state}");
    }

    async Task Token(HttpContext http)
    {
        if (LoginUnavailable)
        {
            http.Response.StatusCode = 503;
            await http.Response.WriteAsync("<html><body>Service Unavailable</body></html>");
            return;
        }
        if (!http.Request.HasFormContentType)
        {
            await OAuthError(http, "invalid_request", "must use application/x-www-form-urlencoded");
            return;
        }
        var f = await http.Request.ReadFormAsync();
        string F(string name) => f[name].ToString();
        switch (F("grant_type"))
        {
            case "authorization_code":
            {
                if (F("client_id") != ClientId || F("client_secret") != AcceptedClientSecret) { await OAuthError(http, "invalid_client", "invalid client credentials"); return; }
                (Grant Grant, string RedirectUri) entry;
                lock (gate)
                {
                    CodeExchanges++;
                    if (!codes.Remove(F("code"), out entry)) entry = default;
                }
                if (entry.Grant is null || entry.RedirectUri != F("redirect_uri")) { await OAuthError(http, "invalid_grant", "invalid authorization code"); return; }
                var body = Issue(entry.Grant);
                if (GrantsRefreshToken && entry.Grant.Scope.Split(' ').Contains("refresh_token"))
                {
                    var refresh = "5Aep" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
                    lock (gate) refreshTokens[refresh] = entry.Grant;
                    body["refresh_token"] = refresh;
                }
                await Json(http, 200, body);
                return;
            }
            case "refresh_token":
            {
                if (F("client_id") != ClientId || F("client_secret") != AcceptedClientSecret) { await OAuthError(http, "invalid_client", "invalid client credentials"); return; }
                Grant? grant;
                lock (gate)
                {
                    RefreshGrants++;
                    refreshTokens.TryGetValue(F("refresh_token"), out grant);
                }
                if (grant is null) { await OAuthError(http, "invalid_grant", "expired access/refresh token"); return; }
                var issued = Issue(grant);
                if (RotatesRefreshTokens)
                {
                    // Refresh token rotation (connected app OAuth policy): a new refresh token with each grant, the old one invalidated.
                    var next = "5Aep" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
                    lock (gate)
                    {
                        refreshTokens.Remove(F("refresh_token"));
                        refreshTokens[next] = grant;
                    }
                    issued["refresh_token"] = next;
                }
                await Json(http, 200, issued);
                return;
            }
            case "urn:ietf:params:oauth:grant-type:jwt-bearer":
            {
                lock (gate) JwtGrants++;
                var (user, problem) = CheckAssertion(F("assertion"));
                if (user is null) { await OAuthError(http, "invalid_grant", problem!); return; }
                await Json(http, 200, Issue(new Grant(user, "api")));
                return;
            }
            default:
                await OAuthError(http, "unsupported_grant_type", "grant type not supported");
                return;
        }
    }

    JsonObject Issue(Grant grant)
    {
        var access = OrgId + "!AQ" + Convert.ToHexString(RandomNumberGenerator.GetBytes(24));
        lock (gate) accessTokens[access] = grant;
        return new JsonObject
        {
            ["access_token"] = access,
            ["signature"] = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)),
            ["scope"] = grant.Scope,
            ["instance_url"] = InstanceUrlOverride ?? BaseUrl,
            ["id"] = IdentityUrlOverride ?? $"{BaseUrl}/id/{OrgId}/005000000000001AAA",
            ["token_type"] = "Bearer",
            ["issued_at"] = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture),
        };
    }

    /// <summary>RS256 with the uploaded certificate's key, iss = consumer key, aud = the login URL, exp within minutes, sub pre-authorised.</summary>
    (string? User, string? Problem) CheckAssertion(string assertion)
    {
        var parts = assertion.Split('.');
        if (parts.Length != 3 || CertificateKey is null) return (null, "invalid assertion");
        try
        {
            var header = JsonNode.Parse(Base64UrlDecode(parts[0]))!;
            if (header["alg"]?.GetValue<string>() != "RS256") return (null, "invalid assertion");
            if (!CertificateKey.VerifyData(Encoding.ASCII.GetBytes(parts[0] + "." + parts[1]), Base64UrlDecode(parts[2]), HashAlgorithmName.SHA256, RSASignaturePadding.Pkcs1))
                return (null, "invalid assertion");
            var claims = JsonNode.Parse(Base64UrlDecode(parts[1]))!;
            if (claims["iss"]?.GetValue<string>() != ClientId) return (null, "invalid client credentials");
            var aud = claims["aud"] is JsonArray arr ? arr.Select(x => x?.GetValue<string>()).ToList() : [claims["aud"]?.GetValue<string>()];
            if (!aud.Contains(BaseUrl)) return (null, "audience is invalid");
            var exp = claims["exp"]?.GetValue<long>() ?? 0;
            var now = DateTimeOffset.UtcNow.ToUnixTimeSeconds();
            if (exp < now || exp > now + 300) return (null, "expired authorization code");
            var sub = claims["sub"]?.GetValue<string>();
            if (sub is null || !PreAuthorised.Contains(sub)) return (null, "user hasn't approved this consumer");
            return (sub, null);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException)
        {
            return (null, "invalid assertion");
        }
    }

    static byte[] Base64UrlDecode(string s) => System.Buffers.Text.Base64Url.DecodeFromChars(s);

    /// <summary>The identity URL: who the access token acts for.</summary>
    async Task Identity(HttpContext http, string org, string user)
    {
        var header = http.Request.Headers.Authorization.ToString();
        Grant? grant;
        lock (gate) accessTokens.TryGetValue(header.StartsWith("Bearer ", StringComparison.Ordinal) ? header["Bearer ".Length..] : "", out grant);
        if (grant is null)
        {
            http.Response.StatusCode = 403;
            await http.Response.WriteAsync("Bad_OAuth_Token");
            return;
        }
        await Json(http, 200, new JsonObject
        {
            ["id"] = $"{BaseUrl}/id/{org}/{user}", ["organization_id"] = org, ["user_id"] = user, ["username"] = grant.User,
            ["display_name"] = "Org Admin", ["email"] = grant.User, ["active"] = true, ["user_type"] = "STANDARD",
        });
    }

    async Task Revoke(HttpContext http)
    {
        var f = await http.Request.ReadFormAsync();
        var token = f["token"].ToString();
        lock (gate)
        {
            Revoked.Add(token);
            if (refreshTokens.Remove(token, out var grant))
            {
                foreach (var k in accessTokens.Where(kv => kv.Value == grant).Select(kv => kv.Key).ToList()) accessTokens.Remove(k);
            }
            else if (!accessTokens.Remove(token))
            {
                http.Response.StatusCode = 400;
                return;
            }
        }
        http.Response.StatusCode = 200;
    }

    /// <summary>Bearer check, then a queued failure if any; true when the call may go on.</summary>
    async Task<bool> AdmitAsync(HttpContext http)
    {
        var header = http.Request.Headers.Authorization.ToString();
        bool ok;
        (int Status, string Code, string Message, string? RetryAfter)? failure = null;
        lock (gate)
        {
            DataCalls++;
            Grant? caller = null;
            ok = header.StartsWith("Bearer ", StringComparison.Ordinal) && accessTokens.TryGetValue(header["Bearer ".Length..], out caller);
            if (ok) DataCallers.Add(caller!.User);
            if (ok && failures.Count > 0 && passBeforeFailure-- <= 0) failure = failures.Dequeue();
        }
        if (!ok)
        {
            await Errors(http, 401, "INVALID_SESSION_ID", "Session expired or invalid");
            return false;
        }
        if (failure is { } fail)
        {
            if (fail.RetryAfter is not null) http.Response.Headers.RetryAfter = fail.RetryAfter;
            await Errors(http, fail.Status, fail.Code, fail.Message);
            return false;
        }
        return true;
    }

    async Task Query(HttpContext http, string q)
    {
        if (!await AdmitAsync(http)) return;
        lock (gate) Queries.Add(q);
        Soql parsed;
        try
        {
            parsed = Soql.Parse(q);
        }
        catch (FormatException ex)
        {
            await Errors(http, 400, "MALFORMED_QUERY", ex.Message);
            return;
        }
        lock (gate) QueryLiterals.AddRange(parsed.Conditions.SelectMany(c => c.Values).OfType<string>());
        if (!Columns.TryGetValue(parsed.From, out var columns) || (parsed.From.Equals("TaskRelation", StringComparison.OrdinalIgnoreCase) && !SharedActivities)
            || (parsed.From.StartsWith("Opportunity", StringComparison.OrdinalIgnoreCase) && OpportunitiesHidden))
        {
            await Errors(http, 400, "INVALID_TYPE", $"sObject type '{parsed.From}' is not supported.");
            return;
        }
        foreach (var field in parsed.Select.Concat(parsed.Conditions.Select(c => c.Field)))
        {
            // A parent's field through the relationship, as Opportunity.IsClosed from OpportunityContactRole.
            if (field.Split('.') is [var relationship, var parentField] && columns.Contains(relationship + "Id")
                && Columns.TryGetValue(relationship, out var parentColumns) && parentColumns.Contains(parentField))
                continue;
            if (!columns.Contains(field))
            {
                await Errors(http, 400, "INVALID_FIELD", $"No such column '{field}' on entity '{parsed.From}'.");
                return;
            }
        }
        List<SObject> rows;
        lock (gate)
        {
            rows = records.Values.Where(r => r.Type.Equals(parsed.From, StringComparison.OrdinalIgnoreCase)
                && parsed.Conditions.All(c => c.Values.Any(v => Matches(r, c.Field, v)))).Take(parsed.Limit ?? int.MaxValue).ToList();
        }
        var array = new JsonArray();
        foreach (var r in rows)
        {
            var o = new JsonObject { ["attributes"] = new JsonObject { ["type"] = r.Type, ["url"] = $"/services/data/v62.0/sobjects/{r.Type}/{r.Id}" } };
            foreach (var field in parsed.Select) o[field] = field.Equals("Id", StringComparison.OrdinalIgnoreCase) ? r.Id : r.Fields.GetValueOrDefault(field)?.DeepClone();
            array.Add(o);
        }
        await Json(http, 200, new JsonObject { ["totalSize"] = rows.Count, ["done"] = true, ["records"] = array });
    }

    bool Matches(SObject r, string field, object? value)
    {
        if (field.Split('.') is [var relationship, var parentField])
            return r[relationship + "Id"] is { } parentId && records.TryGetValue(parentId, out var parent) && Matches(parent, parentField, value);
        var have = field.Equals("Id", StringComparison.OrdinalIgnoreCase) ? JsonValue.Create(r.Id) : r.Fields.GetValueOrDefault(field);
        return value switch
        {
            // Text comparisons in SOQL are case-insensitive.
            string s => have is JsonValue v && v.TryGetValue<string>(out var hs) && string.Equals(hs, s, StringComparison.OrdinalIgnoreCase),
            bool b => (have is JsonValue bv && bv.TryGetValue<bool>(out var hb) ? hb : false) == b,
            null => have is null,
            _ => false,
        };
    }

    /// <summary>
    /// <c>GET /sobjects/{type}/describe</c>: <c>{"name","label","createable","fields":[{"name","type","createable","updateable","nillable"}]}</c>
    /// (the documented DescribeSObjectResult, only the parts the connector reads and a few more); 404 NOT_FOUND for an
    /// sObject the org does not have (TaskRelation without Shared Activities).
    /// </summary>
    async Task Describe(HttpContext http, string type)
    {
        lock (gate) Describes++;
        if (!await AdmitAsync(http)) return;
        if (!Columns.TryGetValue(type, out var columns) || (type.Equals("TaskRelation", StringComparison.OrdinalIgnoreCase) && !SharedActivities))
        {
            await Errors(http, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        var name = Columns.Keys.First(k => k.Equals(type, StringComparison.OrdinalIgnoreCase));
        var fields = new JsonArray();
        foreach (var f in columns)
        {
            var fieldType = f switch
            {
                "Id" => "id",
                "WhoId" or "WhatId" or "AccountId" or "TaskId" or "RelationId" => "reference",
                "ActivityDate" => "date",
                "IsConverted" or "IsWhat" => "boolean",
                "Description" => "textarea",
                _ => "string",
            };
            var writable = f != "Id" && !(name == "TaskRelation" && f == "AccountId");
            fields.Add(new JsonObject
            {
                ["name"] = f, ["type"] = fieldType, ["createable"] = writable, ["updateable"] = writable && name != "TaskRelation", ["nillable"] = f != "Id",
            });
        }
        if (name == "Task" && SharedActivities)
        {
            fields.Add(new JsonObject { ["name"] = TaskWhoIds, ["type"] = "junctionidlist", ["createable"] = true, ["updateable"] = true, ["nillable"] = true });
            fields.Add(new JsonObject { ["name"] = "WhoCount", ["type"] = "int", ["createable"] = false, ["updateable"] = false, ["nillable"] = true });
            fields.Add(new JsonObject { ["name"] = "WhatCount", ["type"] = "int", ["createable"] = false, ["updateable"] = false, ["nillable"] = true });
        }
        await Json(http, 200, new JsonObject { ["name"] = name, ["label"] = name, ["createable"] = true, ["fields"] = fields });
    }

    async Task Create(HttpContext http, string type)
    {
        if (!await AdmitAsync(http)) return;
        var body = await ReadBodyAsync(http);
        if (body is null) return;
        if (!Columns.ContainsKey(type) || type == "Account" || (type.Equals("TaskRelation", StringComparison.OrdinalIgnoreCase) && !SharedActivities))
        {
            await Errors(http, 404, "NOT_FOUND", "The requested resource does not exist");
            return;
        }
        if (!await ValidAsync(http, type, body)) return;
        if (type == "TaskRelation" && !body.ContainsKey("IsWhat")) body["IsWhat"] = false;
        var o = Add(type, [.. body.Select(kv => (kv.Key, kv.Value?.DeepClone()))]);
        if (type == "Task") Relate(o, body);
        await Json(http, 201, new JsonObject { ["id"] = o.Id, ["success"] = true, ["errors"] = new JsonArray() });
    }

    async Task Upsert(HttpContext http, string type, string field, string value)
    {
        if (!await AdmitAsync(http)) return;
        var body = await ReadBodyAsync(http);
        if (body is null) return;
        if (type != "Task" || field != KeyField)
        {
            await Errors(http, 404, "NOT_FOUND", "Provided external ID field does not exist or is not accessible: " + field);
            return;
        }
        if (body.ContainsKey(field))
        {
            await Errors(http, 400, "INVALID_FIELD", $"The field {field} is the upsert key and cannot be in the body.", field);
            return;
        }
        if (!await ValidAsync(http, type, body)) return;
        SObject? existing;
        List<SObject> matches;
        lock (gate)
        {
            matches = records.Values.Where(r => r.Type == type && r[field] == value).ToList();
            existing = matches.Count == 1 ? matches[0] : null;
            if (existing is not null) foreach (var kv in body) existing.Fields[kv.Key] = kv.Value?.DeepClone();
        }
        if (matches.Count > 1)
        {
            // The key matches several records (a field that is not Unique): 300 with their URLs, nothing written.
            await Json(http, 300, new JsonArray(matches.Select(m => (JsonNode?)$"/services/data/v62.0/sobjects/{type}/{m.Id}").ToArray()));
            return;
        }
        if (existing is null)
        {
            var o = Add(type, [.. body.Select(kv => (kv.Key, kv.Value?.DeepClone())), (field, JsonValue.Create(value))]);
            Relate(o, body);
            await Json(http, 201, new JsonObject { ["id"] = o.Id, ["success"] = true, ["errors"] = new JsonArray(), ["created"] = true });
            return;
        }
        Relate(existing, body);
        await Json(http, 200, new JsonObject { ["id"] = existing.Id, ["success"] = true, ["errors"] = new JsonArray(), ["created"] = false });
    }

    static async Task<JsonObject?> ReadBodyAsync(HttpContext http)
    {
        try
        {
            if (await JsonNode.ParseAsync(http.Request.Body) is JsonObject o) return o;
        }
        catch (JsonException) { }
        await Errors(http, 400, "JSON_PARSER_ERROR", "Unexpected character: the body is not a JSON object");
        return null;
    }

    /// <summary>Unknown fields, required fields, references, Tasks on Leads with a WhatId, and the test's validation rule.</summary>
    async Task<bool> ValidAsync(HttpContext http, string type, JsonObject body)
    {
        foreach (var (name, _) in body)
        {
            if ((!Columns[type].Contains(name) && !(type == "Task" && name == TaskWhoIds && SharedActivities)) || name == "Id"
                || (type == "TaskRelation" && name == "AccountId"))
            {
                await Errors(http, 400, "INVALID_FIELD", $"No such column '{name}' on sobject of type {type}", name);
                return false;
            }
        }
        if (type == "Lead")
        {
            var missing = new[] { "LastName", "Company" }.Where(f => string.IsNullOrWhiteSpace(body[f]?.GetValue<string>())).ToArray();
            if (missing.Length > 0)
            {
                await Errors(http, 400, "REQUIRED_FIELD_MISSING", $"Required fields are missing: [{string.Join(", ", missing)}]", missing);
                return false;
            }
        }
        if (type == "Task")
        {
            var who = body["WhoId"]?.GetValue<string>();
            var what = body["WhatId"]?.GetValue<string>();
            SObject? whoRecord = null, whatRecord = null;
            lock (gate)
            {
                if (who is not null) records.TryGetValue(who, out whoRecord);
                if (what is not null) records.TryGetValue(what, out whatRecord);
            }
            if ((who is not null && whoRecord is not { Type: "Contact" or "Lead" }) || (what is not null && whatRecord is null))
            {
                await Errors(http, 400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", who is not null && whoRecord is null ? "WhoId" : "WhatId");
                return false;
            }
            if (whoRecord?.Type == "Lead" && what is not null)
            {
                await Errors(http, 400, "FIELD_INTEGRITY_EXCEPTION", "Related To ID: You can't associate a task with a lead and a related record.", "WhatId");
                return false;
            }
            if (body["ActivityDate"]?.GetValue<string>() is { } date && !DateOnly.TryParseExact(date, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out _))
            {
                await Errors(http, 400, "JSON_PARSER_ERROR", $"Cannot deserialize instance of date from VALUE_STRING value {date}", "ActivityDate");
                return false;
            }
            if ((body["Subject"]?.GetValue<string>()?.Length ?? 0) > 255)
            {
                await Errors(http, 400, "STRING_TOO_LONG", "Subject: data value too large", "Subject");
                return false;
            }
            if (body.ContainsKey(TaskWhoIds))
            {
                if (body[TaskWhoIds] is not JsonArray list || list.Any(x => x is not JsonValue v || !v.TryGetValue<string>(out _)))
                {
                    await Errors(http, 400, "JSON_PARSER_ERROR", "Cannot deserialize instance of JunctionIdList: expected an array of ids", TaskWhoIds);
                    return false;
                }
                var ids = list.Select(x => x!.GetValue<string>()).ToList();
                if (who is not null && !ids.Contains(who)) ids.Insert(0, who);
                List<SObject?> people;
                lock (gate) people = ids.Distinct().Select(id => records.GetValueOrDefault(id)).ToList();
                if (people.Any(x => x is not { Type: "Contact" or "Lead" }))
                {
                    await Errors(http, 400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", TaskWhoIds);
                    return false;
                }
                if (RelationProblem(people!) is { } problem)
                {
                    await Errors(http, 400, "FIELD_INTEGRITY_EXCEPTION", problem, TaskWhoIds);
                    return false;
                }
                if (people.Any(x => x!.Type == "Lead") && what is not null)
                {
                    await Errors(http, 400, "FIELD_INTEGRITY_EXCEPTION", "Related To ID: You can't associate a task with a lead and a related record.", "WhatId");
                    return false;
                }
            }
            if (TaskValidationRule?.Invoke(body) is { } message)
            {
                await Errors(http, 400, "FIELD_CUSTOM_VALIDATION_EXCEPTION", message);
                return false;
            }
        }
        if (type == "TaskRelation")
        {
            var taskId = body["TaskId"]?.GetValue<string>();
            var relationId = body["RelationId"]?.GetValue<string>();
            if (taskId is null || relationId is null)
            {
                await Errors(http, 400, "REQUIRED_FIELD_MISSING", "Required fields are missing: [TaskId, RelationId]", "TaskId", "RelationId");
                return false;
            }
            List<SObject?> people;
            SObject? task, relation;
            lock (gate)
            {
                records.TryGetValue(taskId, out task);
                records.TryGetValue(relationId, out relation);
                people = [.. RelatedTo(taskId).Select(id => records.GetValueOrDefault(id)), relation];
            }
            if (task is not { Type: "Task" } || relation is not { Type: "Contact" or "Lead" })
            {
                await Errors(http, 400, "INVALID_CROSS_REFERENCE_KEY", "invalid cross reference id", task is not { Type: "Task" } ? "TaskId" : "RelationId");
                return false;
            }
            if (RelationProblem(people!) is { } problem)
            {
                await Errors(http, 400, "FIELD_INTEGRITY_EXCEPTION", problem, "RelationId");
                return false;
            }
        }
        return true;
    }

    /// <summary>
    /// Salesforce relates a Task to one Lead or up to 50 Contacts. (The documents give the rule, not the words of the
    /// error: the code and message here are the fake's.)
    /// </summary>
    static string? RelationProblem(List<SObject> people)
    {
        var distinct = people.DistinctBy(p => p.Id).ToList();
        if (distinct.Any(p => p.Type == "Lead") && distinct.Count > 1)
            return "A task related to a lead can't be related to other contacts or leads.";
        if (distinct.Count(p => p.Type == "Contact") > MaxContactsPerTask)
            return $"A task can be related to up to {MaxContactsPerTask} contacts.";
        return null;
    }

    /// <summary>
    /// With Shared Activities, a Task's who-relations: written with TaskWhoIds, exactly those people, as a JunctionIdList
    /// sets the whole junction (the WhoId first, added when the list lacks it; the list's first when no WhoId is given);
    /// written without, the ones it had, plus its WhoId.
    /// </summary>
    void Relate(SObject task, JsonObject body)
    {
        if (!SharedActivities) return;
        lock (gate)
        {
            var ids = body[TaskWhoIds] is JsonArray list ? list.Select(x => x!.GetValue<string>()).ToList() : RelatedTo(task.Id);
            var who = task["WhoId"];
            if (who is not null && !ids.Contains(who)) ids.Insert(0, who);
            if (who is null && ids.Count > 0) task.Fields["WhoId"] = ids[0];
            foreach (var old in records.Values.Where(r => r.Type == "TaskRelation" && r["TaskId"] == task.Id && r["IsWhat"] == "false").ToList())
                records.Remove(old.Id);
            foreach (var id in ids.Distinct())
            {
                var person = records[id];
                Add("TaskRelation", ("TaskId", task.Id), ("RelationId", id), ("IsWhat", false), ("AccountId", person.Fields.GetValueOrDefault("AccountId")?.DeepClone()));
            }
        }
    }

    /// <summary>The small part of SOQL the connector writes, read the way Salesforce reads it.</summary>
    public sealed record Soql(List<string> Select, string From, List<(string Field, List<object?> Values)> Conditions, int? Limit)
    {
        public static Soql Parse(string text)
        {
            var t = Tokenize(text);
            var i = 0;
            string Next() => i < t.Count ? t[i++].Text : throw new FormatException("unexpected end of query");
            bool Kw(string k) => i < t.Count && !t[i].Literal && t[i].Text.Equals(k, StringComparison.OrdinalIgnoreCase);
            void Expect(string k)
            {
                if (!Kw(k)) throw new FormatException($"expecting '{k}', found '{(i < t.Count ? t[i].Text : "end")}'");
                i++;
            }
            string Ident()
            {
                var s = Next();
                if (t[i - 1].Literal || !(char.IsLetter(s[0]) || s[0] == '_')) throw new FormatException($"unexpected token: '{s}'");
                return s;
            }
            object? Value()
            {
                if (i >= t.Count) throw new FormatException("unexpected end of query");
                var tok = t[i++];
                if (tok.Literal) return tok.Text;
                if (tok.Text.Equals("true", StringComparison.OrdinalIgnoreCase)) return true;
                if (tok.Text.Equals("false", StringComparison.OrdinalIgnoreCase)) return false;
                if (tok.Text.Equals("null", StringComparison.OrdinalIgnoreCase)) return null;
                throw new FormatException($"unexpected token: '{tok.Text}'");
            }

            Expect("SELECT");
            var select = new List<string> { Ident() };
            while (Kw(",")) { i++; select.Add(Ident()); }
            Expect("FROM");
            var from = Ident();
            var conditions = new List<(string, List<object?>)>();
            if (Kw("WHERE"))
            {
                i++;
                do
                {
                    var field = Ident();
                    if (Kw("="))
                    {
                        i++;
                        conditions.Add((field, [Value()]));
                    }
                    else
                    {
                        Expect("IN");
                        Expect("(");
                        var values = new List<object?> { Value() };
                        while (Kw(",")) { i++; values.Add(Value()); }
                        Expect(")");
                        conditions.Add((field, values));
                    }
                    if (!Kw("AND")) break;
                    i++;
                } while (true);
            }
            int? limit = null;
            if (Kw("LIMIT"))
            {
                i++;
                limit = int.TryParse(Next(), NumberStyles.None, CultureInfo.InvariantCulture, out var n) ? n : throw new FormatException("LIMIT needs a number");
            }
            if (i != t.Count) throw new FormatException($"unexpected token: '{t[i].Text}'");
            return new Soql(select, from, conditions, limit);
        }

        static List<(string Text, bool Literal)> Tokenize(string s)
        {
            var tokens = new List<(string, bool)>();
            for (var i = 0; i < s.Length;)
            {
                var ch = s[i];
                if (char.IsWhiteSpace(ch)) { i++; continue; }
                if (ch is ',' or '(' or ')' or '=') { tokens.Add((ch.ToString(), false)); i++; continue; }
                if (ch == '\'')
                {
                    var sb = new StringBuilder();
                    i++;
                    while (true)
                    {
                        if (i >= s.Length) throw new FormatException("unterminated string literal");
                        var c = s[i++];
                        if (c == '\'') break;
                        if (c == '\\')
                        {
                            if (i >= s.Length) throw new FormatException("unterminated escape");
                            var e = s[i++];
                            sb.Append(e switch
                            {
                                'n' => '\n', 'r' => '\r', 't' => '\t', 'b' => '\b', 'f' => '\f', '"' => '"', '\'' => '\'', '\\' => '\\',
                                '_' => '_', '%' => '%',
                                _ => throw new FormatException($"Invalid string literal: illegal escape sequence \\{e}"),
                            });
                            continue;
                        }
                        sb.Append(c);
                    }
                    tokens.Add((sb.ToString(), true));
                    continue;
                }
                if (char.IsLetterOrDigit(ch) || ch == '_')
                {
                    var start = i;
                    while (i < s.Length && (char.IsLetterOrDigit(s[i]) || s[i] == '_' || s[i] == '.')) i++;
                    tokens.Add((s[start..i], false));
                    continue;
                }
                throw new FormatException($"unexpected character '{ch}'");
            }
            return tokens;
        }
    }
}
