using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Salesforce;

/// <summary>One entry of a REST error body: <c>[{"message","errorCode","fields"}]</c>.</summary>
public sealed record SalesforceError(string Message, string ErrorCode, IReadOnlyList<string> Fields);

/// <summary>A REST call Salesforce answered with an error status.</summary>
public sealed class SalesforceApiException(int status, IReadOnlyList<SalesforceError> errors, TimeSpan? retryAfter)
    : Exception($"Salesforce answered {status}: " + string.Join("; ", errors.Select(e => $"{e.ErrorCode}: {e.Message}")))
{
    public int Status { get; } = status;
    public IReadOnlyList<SalesforceError> Errors { get; } = errors;
    public TimeSpan? RetryAfter { get; } = retryAfter;
    public bool Has(string code) => Errors.Any(e => e.ErrorCode == code);
}

/// <summary>A row of a SOQL answer: its id and the other fields asked for (strings or null).</summary>
public sealed record SalesforceRecord(string Id, IReadOnlyDictionary<string, string?> Fields)
{
    public string? this[string field] => Fields.TryGetValue(field, out var v) ? v : null;
}

/// <summary>
/// The REST API calls the connector makes, with the documented shapes: SOQL query, sObject create, upsert by an
/// external id. Each call carries the connection's access token; a 401 (INVALID_SESSION_ID: expired or revoked
/// session) gets a new token once and is sent again.
/// </summary>
public sealed class SalesforceClient(SalesforceAuth auth, IHttpClientFactory httpFactory, IOptions<SalesforceOptions> options, AppDbContext db,
    ILogger<SalesforceClient> log)
{
    SalesforceOptions O => options.Value;
    string DataPath => "/services/data/v" + O.ApiVersion;

    /// <summary>A SOQL string literal: quotes, backslashes and control characters escaped as SOQL documents.</summary>
    public static string Literal(string value)
    {
        var sb = new StringBuilder(value.Length + 2).Append('\'');
        foreach (var ch in value)
        {
            sb.Append(ch switch
            {
                '\\' => "\\\\",
                '\'' => "\\'",
                '"' => "\\\"",
                '\n' => "\\n",
                '\r' => "\\r",
                '\t' => "\\t",
                '\b' => "\\b",
                '\f' => "\\f",
                _ => ch.ToString(),
            });
        }
        return sb.Append('\'').ToString();
    }

    /// <summary>Runs a SOQL query (first page: the connector's queries ask for a handful of rows).</summary>
    public async Task<List<SalesforceRecord>> QueryAsync(SalesforceConnection c, string soql, CancellationToken ct)
    {
        using var res = await SendAsync(c, HttpMethod.Get, $"{DataPath}/query?q={Uri.EscapeDataString(soql)}", null, ct);
        using var doc = await ReadAsync(res, ct);
        var rows = new List<SalesforceRecord>();
        if (!doc.RootElement.TryGetProperty("records", out var records) || records.ValueKind != JsonValueKind.Array)
            throw new JsonException("A query answer without records.");
        foreach (var r in records.EnumerateArray())
        {
            var fields = new Dictionary<string, string?>(StringComparer.OrdinalIgnoreCase);
            string? id = null;
            foreach (var p in r.EnumerateObject())
            {
                if (p.Name == "attributes") continue;
                var v = p.Value.ValueKind switch
                {
                    JsonValueKind.String => p.Value.GetString(),
                    JsonValueKind.Null or JsonValueKind.Undefined => null,
                    _ => p.Value.GetRawText(),
                };
                if (p.Name.Equals("Id", StringComparison.OrdinalIgnoreCase)) id = v;
                else fields[p.Name] = v;
            }
            if (!string.IsNullOrEmpty(id)) rows.Add(new SalesforceRecord(id, fields));
        }
        return rows;
    }

    /// <summary>
    /// The fields of an sObject as the connection's user sees them (<c>GET /sobjects/{type}/describe</c>, answer
    /// <c>{"name", "fields": [{"name", "type", "createable", "updateable", …}]}</c>): the names of those it may set on
    /// create and update.
    /// </summary>
    public async Task<HashSet<string>> WritableFieldsAsync(SalesforceConnection c, string sObject, CancellationToken ct)
    {
        using var res = await SendAsync(c, HttpMethod.Get, $"{DataPath}/sobjects/{sObject}/describe", null, ct);
        using var doc = await ReadAsync(res, ct);
        if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("fields", out var fields) || fields.ValueKind != JsonValueKind.Array)
            throw new JsonException("A describe answer without fields.");
        var writable = new HashSet<string>(StringComparer.OrdinalIgnoreCase);
        foreach (var f in fields.EnumerateArray())
        {
            if (f.ValueKind == JsonValueKind.Object && f.TryGetProperty("name", out var name) && name.ValueKind == JsonValueKind.String
                && True(f, "createable") && True(f, "updateable"))
                writable.Add(name.GetString()!);
        }
        return writable;

        static bool True(JsonElement e, string property) => e.TryGetProperty(property, out var v) && v.ValueKind == JsonValueKind.True;
    }

    /// <summary>Creates a record (<c>POST /sobjects/{type}</c>, answer <c>{"id","success","errors"}</c>) and returns its id.</summary>
    public async Task<string> CreateAsync(SalesforceConnection c, string sObject, JsonObject fields, CancellationToken ct)
    {
        using var res = await SendAsync(c, HttpMethod.Post, $"{DataPath}/sobjects/{sObject}", fields, ct);
        using var doc = await ReadAsync(res, ct);
        return IdOf(doc) ?? throw new JsonException("A create answer without an id.");
    }

    /// <summary>
    /// Upserts by an external id (<c>PATCH /sobjects/{type}/{field}/{value}</c>): 201 when it made the record, 200 when it
    /// updated the one with that key (both with <c>{"id",…}</c>; before API 46.0 an update answered 204 with no body,
    /// and the record is then found by its key).
    /// </summary>
    public async Task<(string Id, bool Created)> UpsertAsync(SalesforceConnection c, string sObject, string keyField, string key, JsonObject fields, CancellationToken ct)
    {
        using var res = await SendAsync(c, HttpMethod.Patch, $"{DataPath}/sobjects/{sObject}/{keyField}/{Uri.EscapeDataString(key)}", fields, ct);
        if (res.StatusCode == HttpStatusCode.NoContent)
        {
            var found = await QueryAsync(c, $"SELECT Id FROM {sObject} WHERE {keyField} = {Literal(key)} LIMIT 1", ct);
            return (found.FirstOrDefault()?.Id ?? throw new JsonException("The upserted record cannot be found by its key."), false);
        }
        using var doc = await ReadAsync(res, ct);
        var created = res.StatusCode == HttpStatusCode.Created
            || (doc.RootElement.TryGetProperty("created", out var cr) && cr.ValueKind == JsonValueKind.True);
        return (IdOf(doc) ?? throw new JsonException("An upsert answer without an id."), created);
    }

    /// <summary>Gets an access token (the cached one if any), as any call would: Salesforce's refusal is thrown.</summary>
    public async Task CheckAccessAsync(SalesforceConnection c, CancellationToken ct) => await AccessAsync(c, renew: false, ct);

    static string? IdOf(JsonDocument doc) =>
        doc.RootElement.ValueKind == JsonValueKind.Object && doc.RootElement.TryGetProperty("id", out var id) && id.ValueKind == JsonValueKind.String
            ? id.GetString() : null;

    async Task<HttpResponseMessage> SendAsync(SalesforceConnection c, HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        var access = await AccessAsync(c, renew: false, ct);
        var res = await SendOnceAsync(access, method, path, body, ct);
        if (res.StatusCode == HttpStatusCode.Unauthorized)
        {
            // The session expired (or an admin ended it): a new access token, once. A refused refresh throws.
            res.Dispose();
            access = await AccessAsync(c, renew: true, ct);
            res = await SendOnceAsync(access, method, path, body, ct);
        }
        if (res.IsSuccessStatusCode) return res;
        using (res)
        {
            throw new SalesforceApiException((int)res.StatusCode, await ErrorsAsync(res, ct), RetryAfter(res));
        }
    }

    /// <summary>
    /// An access token, keeping the refresh token Salesforce rotated. With rotation on (an OAuth policy of the connected
    /// app, which Salesforce recommends), each refresh answers a new refresh token and the one used stops working: it is
    /// stored at once, or the next session renewal (or a restart) would find the connection dead. Another instance may
    /// have renewed the session with the same refresh token a moment before, so an invalid_grant is checked against the
    /// stored credentials first: when they changed meanwhile, the ones stored are used instead.
    /// </summary>
    async Task<SalesforceAccess> AccessAsync(SalesforceConnection c, bool renew, CancellationToken ct)
    {
        (SalesforceAccess Access, string? RotatedSecret) grant;
        try
        {
            grant = await auth.AccessAsync(c, renew, ct);
        }
        catch (SalesforceAuthException ex) when (ex.Error == "invalid_grant" && c.AuthKind == SalesforceAuthKind.WebServer)
        {
            var stored = await db.SalesforceConnections.AsNoTracking().Where(x => x.Id == c.Id).Select(x => x.ProtectedSecret).FirstOrDefaultAsync(ct);
            if (stored is null || stored == c.ProtectedSecret) throw;
            log.LogInformation("Salesforce connection {Id} was renewed elsewhere; its stored refresh token is used", c.Id);
            Adopt(c, stored);
            grant = await auth.AccessAsync(c, renew: true, ct);
        }
        if (grant.RotatedSecret is { } rotated) await KeepRotatedAsync(c, rotated);
        return grant.Access;
    }

    /// <summary>
    /// Stores a rotated refresh token in place of the one it replaces (compare-and-swap: credentials an admin replaced
    /// meanwhile by connecting again are kept). Not cancelled: Salesforce no longer takes the old one, so a shutdown at
    /// this moment must not leave only that one stored.
    /// </summary>
    async Task KeepRotatedAsync(SalesforceConnection c, string rotated)
    {
        // A mark of needs-reconnect on the old credentials (another instance's refresh with them lost the race to this
        // one) is lifted too: they have just been used.
        var kept = await db.SalesforceConnections.Where(x => x.Id == c.Id && x.ProtectedSecret == c.ProtectedSecret)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.ProtectedSecret, rotated)
                .SetProperty(x => x.Status, SalesforceStatus.Active).SetProperty(x => x.StatusMessage, (string?)null), CancellationToken.None);
        if (kept > 0)
        {
            Adopt(c, rotated);
            return;
        }
        // The connection was made again or removed: this grant's token serves this call only, the next one starts from what is stored.
        log.LogInformation("Salesforce connection {Id} changed while its session was renewed; the rotated refresh token is not kept", c.Id);
        auth.Forget(c.Id);
    }

    /// <summary>
    /// Takes credentials the row already holds. The context that loaded the connection must not write them back: a
    /// later save would undo a rotation another instance stored meanwhile.
    /// </summary>
    void Adopt(SalesforceConnection c, string protectedSecret)
    {
        var entry = db.Entry(c);
        if (entry.State == EntityState.Detached)
        {
            c.ProtectedSecret = protectedSecret;
            return;
        }
        var property = entry.Property(x => x.ProtectedSecret);
        property.CurrentValue = protectedSecret;
        property.OriginalValue = protectedSecret;
        property.IsModified = false;
    }

    async Task<HttpResponseMessage> SendOnceAsync(SalesforceAccess access, HttpMethod method, string path, JsonObject? body, CancellationToken ct)
    {
        using var http = httpFactory.CreateClient(SalesforceAuth.HttpClientName);
        http.Timeout = O.Timeout;
        using var request = new HttpRequestMessage(method, access.InstanceUrl + path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", access.AccessToken);
        request.Headers.Accept.Add(new MediaTypeWithQualityHeaderValue("application/json"));
        if (body is not null) request.Content = new StringContent(body.ToJsonString(), Encoding.UTF8, "application/json");
        return await http.SendAsync(request, ct);
    }

    static async Task<JsonDocument> ReadAsync(HttpResponseMessage res, CancellationToken ct) =>
        await JsonDocument.ParseAsync(await res.Content.ReadAsStreamAsync(ct), default, ct);

    /// <summary>The documented error body is an array of errors; an OAuth-style object or plain text is kept as one error.</summary>
    static async Task<IReadOnlyList<SalesforceError>> ErrorsAsync(HttpResponseMessage res, CancellationToken ct)
    {
        var text = await res.Content.ReadAsStringAsync(ct);
        var errors = new List<SalesforceError>();
        try
        {
            using var doc = JsonDocument.Parse(text);
            var items = doc.RootElement.ValueKind == JsonValueKind.Array ? doc.RootElement.EnumerateArray().ToList() : [doc.RootElement];
            foreach (var e in items.Where(e => e.ValueKind == JsonValueKind.Object))
            {
                var message = Str(e, "message") ?? Str(e, "error_description") ?? "";
                var code = Str(e, "errorCode") ?? Str(e, "error") ?? "HTTP_" + (int)res.StatusCode;
                var fields = e.TryGetProperty("fields", out var f) && f.ValueKind == JsonValueKind.Array
                    ? f.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()!).ToList() : [];
                errors.Add(new SalesforceError(message, code, fields));
            }
        }
        catch (JsonException) { }
        if (errors.Count == 0)
        {
            var snippet = text.Length > 300 ? text[..300] : text;
            errors.Add(new SalesforceError(string.IsNullOrWhiteSpace(snippet) ? res.ReasonPhrase ?? "" : snippet.Trim(), "HTTP_" + (int)res.StatusCode, []));
        }
        return errors;

        static string? Str(JsonElement e, string name) => e.TryGetProperty(name, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    static TimeSpan? RetryAfter(HttpResponseMessage res)
    {
        var h = res.Headers.RetryAfter;
        if (h?.Delta is { } delta) return delta < TimeSpan.Zero ? TimeSpan.Zero : delta;
        if (h?.Date is { } date)
        {
            var wait = date - DateTimeOffset.UtcNow;
            return wait < TimeSpan.Zero ? TimeSpan.Zero : wait;
        }
        return null;
    }

    internal static string Date(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);
}
