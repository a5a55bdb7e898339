using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Routing;
using Microsoft.Extensions.DependencyInjection;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Api;

/// <summary>
/// Every operation of the server's own OpenAPI document (so one added later is swept too), and the undocumented
/// endpoints that read JSON from programs (the document viewer's beacons, the providers' pushes, the Gmail add-on),
/// called with hostile input by a signed-in user — an admin where a member is refused — on real objects of the user's
/// team, so that the input reaches the endpoint's own code rather than stopping at a 404: malformed JSON, JSON of the
/// wrong shape, each property (nested ones too) of the wrong type, empty, huge, with NUL, lone surrogates or invalid
/// UTF-8, out of range, an unknown enum; route values that are not ids, negative, huge or path traversal; query values
/// that cannot be read or are out of range; wrong content types and missing bodies. Each must be a 4xx (or a success)
/// — never a 5xx but the deliberate "not configured on this server" 503. The failures are collected and listed as a
/// table of operation, input and status, so one run shows them all.
/// </summary>
public abstract class BadInputSweepTests(AppFactory app, ITestOutputHelper output)
{
    /// <summary>One operation: its method, route template, the schema of its JSON body (if any) and its parameters.</summary>
    sealed record Operation(string Method, string Template, JsonNode? Body, string? BodyMediaType, List<Parameter> Parameters, bool Anonymous)
    {
        public string Name => $"{Method} {Template}";
    }

    sealed record Parameter(string Name, string In, JsonNode Schema);

    /// <summary>One hostile request: what it is, its path and query, and its body.</summary>
    sealed record Probe(string Input, string PathAndQuery, Func<HttpContent?> Content);

    const string Raw = "@@raw@@";
    static readonly string Megabyte = new('a', 1 << 20);

    [Fact]
    public async Task Every_operation_answers_hostile_input_with_a_4xx_never_a_5xx()
    {
        var clock = Stopwatch.StartNew();
        var member = await app.NewUserAsync(role: TeamRole.Member);
        var teamName = app.WithDb(db => db.Teams.Where(t => t.Id == member.TeamId).Select(t => t.Name).First());
        var admin = await app.NewUserAsync(team: teamName, role: TeamRole.Admin);
        Assert.Equal(member.TeamId, admin.TeamId);
        var ids = await SeedAsync(member);

        var document = JsonNode.Parse(await app.Anonymous().GetStringAsync("/swagger/v1/swagger.json"))!;
        var operations = Operations(document).Concat(Undocumented()).ToList();
        Assert.True(operations.Count > 55, $"only {operations.Count} operations found");
        // What deletes or revokes goes last, so that the objects the others work on are still there.
        operations = [.. operations.OrderBy(o => o.Method == "DELETE" ? 1 : 0)];

        var failures = new List<(string Operation, string Input, string Status)>();
        var requests = 0;
        var perOperation = new List<int>();
        var anonymous = app.Anonymous();
        foreach (var operation in operations)
        {
            var probes = Probes(operation, document, ids, member).ToList();
            perOperation.Add(probes.Count);
            var client = operation.Anonymous ? anonymous : member.Client;
            if (!operation.Anonymous)
            {
                // Admin-only routes refuse a member: they are swept as an admin.
                using var first = await SendAsync(client, operation, probes[0]);
                if (first.Response?.StatusCode == HttpStatusCode.Forbidden) client = admin.Client;
            }
            foreach (var probe in probes)
            {
                using var result = await SendAsync(client, operation, probe);
                requests++;
                if (result.Failure is { } failure) failures.Add((operation.Name, probe.Input, failure));
            }
        }
        output.WriteLine($"{operations.Count} operations, {requests} requests ({perOperation.Min()}–{perOperation.Max()} per operation) in {clock.Elapsed.TotalSeconds:F1} s");
        var table = string.Join("\n", failures.Select(f => $"| {f.Operation} | {f.Input} | {f.Status} |"));
        if (failures.Count > 0) output.WriteLine("| operation | input | status |\n|---|---|---|\n" + table);
        Assert.True(failures.Count == 0, $"{failures.Count} of {requests} requests answered 5xx:\n| operation | input | status |\n" + table);
    }

    sealed class Result(HttpResponseMessage? response, string? failure) : IDisposable
    {
        public HttpResponseMessage? Response => response;
        public string? Failure => failure;
        public void Dispose() => response?.Dispose();
    }

    async Task<Result> SendAsync(HttpClient client, Operation operation, Probe probe)
    {
        using var request = new HttpRequestMessage(new HttpMethod(operation.Method), probe.PathAndQuery) { Content = probe.Content() };
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(30));
        HttpResponseMessage response;
        try
        {
            // Headers only: the live feed streams until it is closed.
            response = await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        }
        catch (Exception ex)
        {
            return new Result(null, $"{ex.GetType().Name}: {Cut(ex.Message)}");
        }
        var status = (int)response.StatusCode;
        if (status < 500) return new Result(response, null);
        var body = await ReadSomeAsync(response);
        // The one 5xx allowed: a problem saying that something (a mailbox provider, the mail relay) is not configured on
        // this server, which no input can change.
        if (status == 503 && response.Content.Headers.ContentType?.MediaType == "application/problem+json"
            && (body.Contains("not configured", StringComparison.OrdinalIgnoreCase) || body.Contains("no mail relay", StringComparison.OrdinalIgnoreCase)))
            return new Result(response, null);
        return new Result(response, $"{status} {Cut(body)}");
    }

    static async Task<string> ReadSomeAsync(HttpResponseMessage response)
    {
        try
        {
            using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(5));
            return await response.Content.ReadAsStringAsync(timeout.Token);
        }
        catch (Exception ex) when (ex is OperationCanceledException or HttpRequestException or IOException)
        {
            return "";
        }
    }

    static string Cut(string s) => (s.Length > 200 ? s[..200] + "…" : s).ReplaceLineEndings(" ").Replace("|", "\\|");

    // ---- the operations ----

    static IEnumerable<Operation> Operations(JsonNode document)
    {
        foreach (var (path, item) in document["paths"]!.AsObject())
        {
            foreach (var (method, op) in item!.AsObject())
            {
                if (method == "parameters" || op is null) continue;
                var parameters = (op["parameters"]?.AsArray() ?? []).Select(p => new Parameter(
                    p!["name"]!.GetValue<string>(), p["in"]!.GetValue<string>(), p["schema"] ?? new JsonObject { ["type"] = "string" })).ToList();
                JsonNode? body = null;
                string? mediaType = null;
                if (op["requestBody"]?["content"]?.AsObject() is { } content)
                {
                    var (type, media) = content.FirstOrDefault(c => c.Key.Contains("json", StringComparison.Ordinal));
                    if (type is null) (type, media) = content.First();
                    mediaType = type;
                    body = media?["schema"];
                }
                yield return new Operation(method.ToUpperInvariant(), path, body, mediaType, parameters, Anonymous: false);
            }
        }
    }

    /// <summary>
    /// Endpoints left out of the OpenAPI document that still read JSON from programs: the document viewer's beacons,
    /// Gmail's and Graph's pushes, the Gmail add-on. Anonymous, as their callers are; their schemas are written here.
    /// </summary>
    static IEnumerable<Operation> Undocumented()
    {
        static JsonNode Schema(string json) => JsonNode.Parse(json)!;
        var token = new Parameter("token", "path", Schema("""{"type":"string"}"""));
        var visit = new Parameter("visitId", "path", Schema("""{"type":"string","format":"uuid"}"""));
        yield return new Operation("POST", "/d/{token}/visits", null, null, [token], true);
        yield return new Operation("POST", "/d/{token}/visits/{visitId}/beats",
            Schema("""{"type":"object","properties":{"pages":{"type":"object","additionalProperties":{"type":"integer","format":"int64"}},"order":{"type":"array","items":{"type":"integer"}},"current":{"type":"integer"}}}"""),
            "application/json", [token, visit], true);
        yield return new Operation("POST", "/d/{token}/visits/{visitId}/links",
            Schema("""{"type":"object","properties":{"url":{"type":"string"},"page":{"type":"integer"}}}"""), "application/json", [token, visit], true);
        yield return new Operation("POST", "/hooks/gmail/push",
            Schema("""{"type":"object","properties":{"message":{"type":"object","properties":{"data":{"type":"string"},"messageId":{"type":"string"}}},"subscription":{"type":"string"}}}"""),
            "application/json", [], true);
        var graph = Schema("""{"type":"object","properties":{"value":{"type":"array","items":{"type":"object","properties":{"subscriptionId":{"type":"string"},"clientState":{"type":"string"},"changeType":{"type":"string"},"resource":{"type":"string"},"lifecycleEvent":{"type":"string"}}}}}}""");
        yield return new Operation("POST", "/hooks/graph/notifications", graph, "application/json", [], true);
        yield return new Operation("POST", "/hooks/graph/lifecycle", graph.DeepClone(), "application/json", [], true);
        var addon = Schema("""{"type":"object","properties":{"commonEventObject":{"type":"object","properties":{"hostApp":{"type":"string"},"timeZone":{"type":"object","properties":{"id":{"type":"string"},"offset":{"type":"integer"}}},"formInputs":{"type":"object"}}},"authorizationEventObject":{"type":"object","properties":{"userIdToken":{"type":"string"},"userOAuthToken":{"type":"string"}}},"gmail":{"type":"object","properties":{"messageId":{"type":"string"},"accessToken":{"type":"string"}}}}}""");
        foreach (var path in new[] { "/gmail/homepage", "/gmail/message", "/gmail/compose" })
            yield return new Operation("POST", path, addon.DeepClone(), "application/json", [], true);
    }

    // ---- the probes ----

    IEnumerable<Probe> Probes(Operation op, JsonNode document, Dictionary<string, string> ids, TestUser user)
    {
        var route = op.Parameters.Where(p => p.In == "path").ToList();
        var query = op.Parameters.Where(p => p.In == "query").ToList();
        var realRoute = route.ToDictionary(p => p.Name, p => RealRouteValue(op, p, ids));
        string PathWith(Dictionary<string, string> values) =>
            values.Aggregate(op.Template, (path, v) => path.Replace("{" + v.Key + "}", v.Value, StringComparison.Ordinal));
        var path = PathWith(realRoute);
        var schema = op.Body is null ? null : Resolve(op.Body, document);
        var sample = schema is null ? null : Sample(schema, document, ids, user, "", 0);
        var sampleText = sample?.ToJsonString();

        Func<HttpContent?> Json(string? text, string mediaType = "application/json") => () =>
            text is null ? null : new StringContent(text, Encoding.UTF8, MediaTypeHeaderValue.Parse(mediaType));
        Func<HttpContent?> Bytes(byte[] bytes, string mediaType) => () =>
        {
            var c = new ByteArrayContent(bytes);
            c.Headers.ContentType = MediaTypeHeaderValue.Parse(mediaType);
            return c;
        };
        var normal = op.BodyMediaType switch
        {
            null => (Func<HttpContent?>)(() => null),
            "multipart/form-data" => MinimalUpload,
            _ => Json(sampleText),
        };

        // The request as it should be: the sweep starts with it (it tells admin-only routes apart).
        yield return new Probe("valid", path, normal);

        // Route values.
        foreach (var p in route)
        {
            foreach (var (input, value) in RouteValues(p.Schema, document))
                yield return new Probe($"route {p.Name}={Cut(value, 40)} ({input})", PathWith(new(realRoute) { [p.Name] = value }), normal);
        }

        // Query values, one parameter at a time.
        foreach (var p in query)
        {
            foreach (var (input, value) in QueryValues(p.Schema, document))
                yield return new Probe($"query {p.Name}={Cut(value, 40)} ({input})", $"{path}?{p.Name}={value}", normal);
            yield return new Probe($"query {p.Name} twice", $"{path}?{p.Name}=1&{p.Name}=2", normal);
        }

        // The body as a whole.
        var deepArray = new string('[', 10_000) + new string(']', 10_000);
        var deepObject = string.Concat(Enumerable.Repeat("{\"a\":", 10_000)) + "1" + new string('}', 10_000);
        var wholeBodies = new List<(string, Func<HttpContent?>)>
        {
            ("malformed JSON `{`", Json("{")),
            ("JSON array", Json("[]")),
            ("JSON string", Json("\"x\"")),
            ("JSON null", Json("null")),
            ("JSON number", Json("1")),
            ("empty object", Json("{}")),
            ("empty body", Json("")),
            ("no body", () => null),
            ("deeply nested arrays", Json(deepArray)),
            ("deeply nested objects", Json(deepObject)),
            ("trailing garbage", Json((sampleText ?? "{}") + "x")),
            ("invalid UTF-8 body", Bytes([.. "{\"a\":\""u8, 0xff, 0xfe, 0xc0, 0xaf, .. "\"}"u8], "application/json")),
            ("NUL bytes body", Bytes([0, 0, 0, 0], "application/json")),
            ("text/plain", Json(sampleText ?? "{}", "text/plain")),
            ("form", () => new FormUrlEncodedContent(new Dictionary<string, string> { ["a"] = "b", ["file"] = "x" })),
            ("multipart without file", () => new MultipartFormDataContent { { new StringContent("maybe"), "allowDownload" } }),
            ("JSON with charset=latin1", Json(sampleText ?? "{}", "application/json; charset=iso-8859-1")),
            ("JSON with unknown charset", Json(sampleText ?? "{}", "application/json; charset=klingon")),
            ("JSON with quoted charset", Json(sampleText ?? "{}", "application/json; charset=\"utf-8\"")),
            ("JSON with quoted unknown charset", Json(sampleText ?? "{}", "application/json; charset=\"klingon\"")),
            ("1 MB unknown property", Json(Merge(sampleText, "\"zzUnknown\":\"" + Megabyte + "\""))),
        };
        if (op.BodyMediaType is null && op.Method is not ("POST" or "PUT" or "PATCH"))
        {
            // A body where none is read: one hostile example is enough.
            yield return new Probe("unexpected body `{`", path, Json("{"));
            yield break;
        }
        foreach (var (input, content) in wholeBodies) yield return new Probe(input, path, content);

        if (op.BodyMediaType == "multipart/form-data")
        {
            foreach (var (input, content) in UploadProbes()) yield return new Probe(input, path, content);
            yield break;
        }
        if (op.Template.EndsWith("/csv", StringComparison.Ordinal))
        {
            foreach (var (input, content) in CsvProbes()) yield return new Probe(input, path, content);
        }
        if (sample is null || schema is null) yield break;

        // Each property (nested ones too) given hostile values of its type and of other types.
        foreach (var (where, propertySchema) in Properties(schema, document, []))
        {
            foreach (var (input, raw) in ValueMutations(propertySchema, document, where))
            {
                var text = Replace(sample, where, raw);
                if (text is null) continue;
                var name = string.Join('.', where.Select(s => s is int i ? $"[{i}]" : s.ToString()));
                yield return new Probe($"{name} = {input}", path, Json(text));
                if (input == "lone surrogate")
                {
                    // The same lone surrogate as raw (invalid) UTF-8 bytes rather than an escape.
                    var bytes = Encoding.UTF8.GetBytes(Replace(sample, where, "\"" + Raw + "\"")!);
                    var marker = Encoding.UTF8.GetBytes(Raw);
                    var at = bytes.AsSpan().IndexOf(marker);
                    byte[] invalid = [.. bytes[..at], 0xed, 0xa0, 0x80, .. bytes[(at + marker.Length)..]];
                    yield return new Probe($"{name} = surrogate as UTF-8 bytes", path, Bytes(invalid, "application/json"));
                }
            }
            // The valid value (or an array's first item) with a NUL or other control characters at its end (where a URL
            // still reads as one): a value that passes every other check reaches the database, and PostgreSQL text
            // cannot hold U+0000.
            foreach (var at in new object[][] { where, [.. where, 0] })
            {
                if (ValueAt(sample, at) is not JsonValue value || !value.TryGetValue<string>(out var valid) || valid.Length == 0) continue;
                var name = string.Join('.', at.Select(s => s is int i ? $"[{i}]" : s.ToString()));
                foreach (var (input, end) in new[] { ("valid value ending in NUL", "\u0000"), ("valid value ending in control characters", "\r\nBcc: \u0007\u001b") })
                {
                    if (Replace(sample, at, JsonSerializer.Serialize(valid + end)) is { } text)
                        yield return new Probe($"{name} = {input}", path, Json(text));
                }
            }
        }
    }

    /// <summary>The sample's value at <paramref name="where"/>, or null when it has none there.</summary>
    static JsonNode? ValueAt(JsonNode sample, object[] where)
    {
        JsonNode? node = sample;
        foreach (var step in where)
        {
            node = step switch
            {
                string key when node is JsonObject o => o[key],
                int index when node is JsonArray a && a.Count > index => a[index],
                _ => null,
            };
            if (node is null) return null;
        }
        return node;
    }

    static string Cut(string s, int n) => s.Length > n ? s[..n] + "…" : s;

    static string Merge(string? objectText, string property) =>
        objectText is { } t && t.StartsWith('{') && t.Length > 2 ? t[..^1] + "," + property + "}" : "{" + property + "}";

    string RealRouteValue(Operation op, Parameter p, Dictionary<string, string> ids)
    {
        if (p.Name == "token") return ids["document-token"];
        if (p.Name == "visitId") return ids["visit"];
        if (p.Name == "page") return "1";
        var template = op.Template.TrimStart('/');
        var kind = ids.Keys.Where(prefix => template.StartsWith(prefix + "/", StringComparison.Ordinal)).MaxBy(k => k.Length);
        return kind is null ? Guid.NewGuid().ToString() : ids[kind];
    }

    static IEnumerable<(string, string)> RouteValues(JsonNode schema, JsonNode document)
    {
        var s = Resolve(schema, document);
        var type = s["type"]?.GetValue<string>();
        var format = s["format"]?.GetValue<string>();
        yield return ("path traversal", "..%2F..%2Fetc%2Fpasswd");
        yield return ("negative", "-1");
        yield return ("huge number", "99999999999999999999");
        // No %00: Kestrel refuses a path with NUL in it (400) before any endpoint, and the in-memory server cannot carry it.
        yield return ("lone surrogate", "%ED%A0%80");
        yield return ("10k characters", new string('a', 10_000));
        if (format == "uuid")
        {
            yield return ("not a GUID", "not-a-guid");
            yield return ("empty GUID", Guid.Empty.ToString());
            yield return ("unknown GUID", Guid.NewGuid().ToString());
        }
        else if (type == "integer")
        {
            yield return ("zero", "0");
            yield return ("int32 overflow", "2147483648");
            yield return ("int64 max", "9223372036854775807");
            yield return ("not a number", "x");
            yield return ("exponent", "1e9");
        }
        else
        {
            yield return ("unknown token", "AAAAAAAAAAAAAAAAAAAAAAAA");
        }
    }

    static IEnumerable<(string, string)> QueryValues(JsonNode schema, JsonNode document)
    {
        var s = Resolve(schema, document);
        var type = s["type"]?.GetValue<string>();
        var format = s["format"]?.GetValue<string>();
        yield return ("empty", "");
        yield return ("NUL", "%00");
        yield return ("lone surrogate", "%ED%A0%80");
        yield return ("10k characters", new string('a', 10_000));
        switch (type, format)
        {
            case ("integer", _) or ("number", _):
                foreach (var v in new[] { "-1", "0", "1e9", "-2147483648", "2147483647", "2147483648", "9223372036854775807", "99999999999999999999", "1.5", "x" })
                    yield return ("number", v);
                break;
            case ("boolean", _):
                yield return ("not a boolean", "maybe");
                break;
            case ("string", "date-time"):
                foreach (var v in new[] { "yesterday", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00%2B14:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "-1", "2025-02-30" })
                    yield return ("date", v);
                break;
            case ("string", "uuid"):
                yield return ("not a GUID", "not-a-guid");
                yield return ("empty GUID", Guid.Empty.ToString());
                break;
            default:
                yield return ("unknown value", "martian");
                yield return ("number", "-1");
                break;
        }
    }

    // ---- bodies ----

    static JsonNode Resolve(JsonNode schema, JsonNode document)
    {
        for (var i = 0; i < 10; i++)
        {
            if (schema["$ref"]?.GetValue<string>() is { } reference)
                schema = document["components"]!["schemas"]![reference.Split('/')[^1]]!;
            else if ((schema["allOf"] ?? schema["oneOf"] ?? schema["anyOf"])?.AsArray() is { Count: > 0 } any)
                schema = any[0]!;
            else break;
        }
        return schema;
    }

    static bool IsObject(JsonNode s) => s["type"]?.GetValue<string>() == "object" || s["properties"] is not null;

    /// <summary>A body the endpoint should accept, or at least read to the end: real ids and the user's own address where named.</summary>
    static JsonNode? Sample(JsonNode schema, JsonNode document, Dictionary<string, string> ids, TestUser user, string name, int depth)
    {
        var s = Resolve(schema, document);
        if (s["enum"]?.AsArray() is { Count: > 0 } values) return values[0]!.DeepClone();
        if (IsObject(s))
        {
            var o = new JsonObject();
            if (depth > 4) return o;
            foreach (var (key, value) in s["properties"]?.AsObject() ?? [])
                o[key] = Sample(value!, document, ids, user, key, depth + 1);
            if (s["properties"] is null && s["additionalProperties"] is JsonObject additional)
                o["1"] = Sample(additional, document, ids, user, "", depth + 1);
            return o;
        }
        var lower = name.ToLowerInvariant();
        switch (s["type"]?.GetValue<string>())
        {
            case "array":
                var item = Sample(s["items"] ?? new JsonObject(), document, ids, user, lower is "to" or "cc" or "bcc" or "recipients" ? "recipient" : name, depth + 1);
                return new JsonArray(item);
            case "integer":
            case "number":
                return lower.Contains("port") ? 1 : lower.Contains("days") ? 1 : 1;
            case "boolean":
                return true;
            case "string":
                if (s["format"]?.GetValue<string>() == "date-time") return DateTimeOffset.UtcNow.AddHours(-1).ToString("O");
                if (s["format"]?.GetValue<string>() == "uuid")
                    return ids.TryGetValue(lower, out var id) ? id : Guid.NewGuid().ToString();
                return lower switch
                {
                    "from" or "address" => user.Email,
                    "recipient" or "email" => "alan@encom.test",
                    "host" => "mail.invalid",
                    // A name, not an address: the webhook guard refuses private and documentation addresses, and nothing
                    // is resolved or sent here (Isolate), so that a webhook's other fields reach the database too.
                    "url" => "https://example.com/hook",
                    "timezone" => "Europe/Paris",
                    "windowstart" => "09:00",
                    "windowend" => "17:00",
                    "html" => "<p>Hi <a href=\"https://example.com/\">there</a></p>",
                    "subject" => "Hello {{ first_name }}",
                    "eventtypes" => "message.opened",
                    _ => "x",
                };
            default:
                return "x";
        }
    }

    /// <summary>Every property of the body, nested objects and the first item of arrays of objects included.</summary>
    static IEnumerable<(object[] Where, JsonNode Schema)> Properties(JsonNode schema, JsonNode document, object[] where)
    {
        if (where.Length > 6) yield break;
        var s = Resolve(schema, document);
        foreach (var (key, value) in s["properties"]?.AsObject() ?? [])
        {
            object[] here = [.. where, key];
            yield return (here, value!);
            var v = Resolve(value!, document);
            if (IsObject(v))
            {
                foreach (var inner in Properties(v, document, here)) yield return inner;
            }
            else if (v["type"]?.GetValue<string>() == "array" && v["items"] is { } items && IsObject(Resolve(items, document)))
            {
                foreach (var inner in Properties(items, document, [.. here, 0])) yield return inner;
            }
        }
    }

    /// <summary>Raw JSON values put in one property: other types, out of range, huge, NUL, lone surrogates.</summary>
    static IEnumerable<(string Input, string Raw)> ValueMutations(JsonNode schema, JsonNode document, object[] where)
    {
        var s = Resolve(schema, document);
        var type = s["type"]?.GetValue<string>() ?? (IsObject(s) ? "object" : "string");
        var format = s["format"]?.GetValue<string>();
        yield return ("null", "null");
        if (s["enum"] is not null)
        {
            yield return ("unknown enum name", "\"martian\"");
            yield return ("unknown enum number", "99");
            yield return ("negative enum number", "-1");
            yield return ("enum number as string", "\"99\"");
            yield return ("object", "{}");
            yield break;
        }
        switch (type)
        {
            case "string":
                yield return ("number where string", "12345");
                yield return ("object where string", "{}");
                yield return ("array where string", "[\"x\"]");
                yield return ("boolean where string", "true");
                yield return ("empty string", "\"\"");
                yield return ("whitespace", "\"   \"");
                yield return ("1 MB string", "\"" + Megabyte + "\"");
                yield return ("NUL", "\"a\\u0000b\"");
                yield return ("lone surrogate", "\"\\ud800\"");
                yield return ("lone low surrogate", "\"x\\udc00y\"");
                yield return ("control characters and RTL override", "\"\\u0001\\u001f\\u202e\\r\\nBcc: x@y.test\"");
                if (format == "date-time")
                {
                    foreach (var v in new[] { "yesterday", "0001-01-01T00:00:00Z", "0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59Z", "9999-12-31T23:59:59-14:00", "2025-02-30T00:00:00Z" })
                        yield return ($"date {v}", $"\"{v}\"");
                }
                else if (format == "uuid")
                {
                    yield return ("not a GUID", "\"not-a-guid\"");
                    yield return ("empty GUID", $"\"{Guid.Empty}\"");
                    yield return ("unknown GUID", $"\"{Guid.NewGuid()}\"");
                }
                else
                {
                    yield return ("address-like oddities", "\"a@@b..test\"");
                    yield return ("URL-like oddities", "\"javascript:alert(1)//http://[::1\"");
                    yield return ("time-like oddities", "\"25:99\"");
                    yield return ("time zone-like oddities", "\"../../etc/passwd\"");
                    yield return ("Liquid", "\"{{ x | truncate: 99999999999 }}{% for i in (1..99999999) %}{% endfor %}\"");
                }
                break;
            case "integer":
            case "number":
                yield return ("string where number", "\"x\"");
                yield return ("numeric string", "\"5\"");
                yield return ("object where number", "{}");
                yield return ("array where number", "[1]");
                yield return ("boolean where number", "true");
                foreach (var v in new[] { "-1", "0", "1.5", "1e9", "-2147483649", "2147483648", "9223372036854775807", "-9223372036854775808", "99999999999999999999", "1e400", "-0" })
                    yield return ($"number {v}", v);
                break;
            case "boolean":
                yield return ("string where boolean", "\"yes\"");
                yield return ("number where boolean", "1");
                yield return ("object where boolean", "{}");
                break;
            case "array":
                yield return ("object where array", "{}");
                yield return ("string where array", "\"x\"");
                yield return ("number where array", "1");
                yield return ("empty array", "[]");
                yield return ("array of null", "[null]");
                yield return ("array of arrays", "[[]]");
                yield return ("array of numbers", "[1, -1, 99999999999999999999]");
                yield return ("array of 1 MB strings", "[\"" + Megabyte + "\"]");
                yield return ("array with NUL", "[\"a\\u0000b@x.test\"]");
                yield return ("array with lone surrogate", "[\"\\ud800@x.test\"]");
                yield return ("10,000 items", "[" + string.Join(',', Enumerable.Repeat(ItemText(s, document), 10_000)) + "]");
                break;
            case "object":
                yield return ("array where object", "[]");
                yield return ("string where object", "\"x\"");
                yield return ("number where object", "1");
                yield return ("empty object", "{}");
                if (s["additionalProperties"] is JsonObject)
                {
                    yield return ("map key not a number", "{\"x\": 1}");
                    yield return ("map key negative", "{\"-1\": 1}");
                    yield return ("map key huge", "{\"99999999999999999999\": 1}");
                    yield return ("map value negative", "{\"1\": -1}");
                    yield return ("map value huge", "{\"1\": 9223372036854775807}");
                    yield return ("map value string", "{\"1\": \"x\"}");
                    yield return ("map key NUL", "{\"\\u0000\": \"a\\u0000b\"}");
                    yield return ("map key lone surrogate", "{\"\\ud800\": \"\\udc00\"}");
                    yield return ("map of 10,000 keys", "{" + string.Join(',', Enumerable.Range(1, 10_000).Select(i => $"\"{i}\": 1")) + "}");
                }
                break;
        }
    }

    static string ItemText(JsonNode arraySchema, JsonNode document)
    {
        var items = arraySchema["items"] is { } i ? Resolve(i, document) : new JsonObject();
        return items["type"]?.GetValue<string>() switch
        {
            "string" => "\"a@b.test\"",
            "integer" or "number" => "1",
            _ => "{}",
        };
    }

    /// <summary>The sample with the value at <paramref name="where"/> replaced by raw JSON text; null if the sample has no such place.</summary>
    static string? Replace(JsonNode sample, object[] where, string raw)
    {
        var root = sample.DeepClone();
        JsonNode? parent = root;
        for (var i = 0; i < where.Length - 1; i++)
        {
            parent = where[i] switch
            {
                string key when parent is JsonObject o => o[key],
                int index when parent is JsonArray a && a.Count > index => a[index],
                _ => null,
            };
            if (parent is null) return null;
        }
        switch (where[^1], parent)
        {
            case (string key, JsonObject o): o[key] = Raw; break;
            case (int index, JsonArray a) when a.Count > index: a[index] = Raw; break;
            default: return null;
        }
        return root.ToJsonString().Replace("\"" + Raw + "\"", raw, StringComparison.Ordinal);
    }

    // ---- uploads and CSV ----

    static readonly byte[] Pdf = MinimalPdf();

    static HttpContent MinimalUpload() => Upload(Pdf, "deck.pdf");

    static MultipartFormDataContent Upload(byte[] bytes, string name, string? allowDownload = null)
    {
        var form = new MultipartFormDataContent();
        var file = new ByteArrayContent(bytes);
        file.Headers.ContentType = new MediaTypeHeaderValue("application/octet-stream");
        // Written by hand: HttpClient refuses a file name with NUL or a lone surrogate, which a hostile client sends anyway.
        file.Headers.TryAddWithoutValidation("Content-Disposition", $"form-data; name=\"file\"; filename=\"{name}\"");
        form.Add(file);
        if (allowDownload is not null) form.Add(new StringContent(allowDownload), "allowDownload");
        return form;
    }

    static IEnumerable<(string, Func<HttpContent?>)> UploadProbes()
    {
        yield return ("upload: allowDownload not a boolean", () => Upload(Pdf, "deck.pdf", "maybe"));
        yield return ("upload: empty file", () => Upload([], "deck.pdf"));
        yield return ("upload: NUL in the file name", () => Upload(Pdf, "de\0ck.pdf"));
        yield return ("upload: lone surrogate in the file name", () => Upload(Pdf, "de\ud800ck.pdf"));
        yield return ("upload: 10k-character file name", () => Upload(Pdf, new string('a', 10_000) + ".pdf"));
        yield return ("upload: path traversal file name", () => Upload(Pdf, "../../etc/passwd"));
        yield return ("upload: not a PDF", () => Upload("hello"u8.ToArray(), "deck.pdf"));
        yield return ("upload: truncated PDF", () => Upload(Pdf[..(Pdf.Length / 2)], "deck.pdf"));
        yield return ("upload: two files", () =>
        {
            var form = Upload(Pdf, "a.pdf");
            form.Add(new ByteArrayContent(Pdf), "file", "b.pdf");
            return form;
        });
        yield return ("upload: multipart without boundary", () =>
        {
            var c = new ByteArrayContent("--x\r\n"u8.ToArray());
            c.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data");
            return c;
        });
        yield return ("upload: broken multipart", () =>
        {
            var c = new ByteArrayContent("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.pdf\"\r\n\r\n%PDF"u8.ToArray());
            c.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=b");
            return c;
        });
    }

    static IEnumerable<(string, Func<HttpContent?>)> CsvProbes()
    {
        static Func<HttpContent?> Csv(string text) => () => new StringContent(text, Encoding.UTF8, "text/csv");
        static Func<HttpContent?> CsvBytes(byte[] bytes) => () =>
        {
            var c = new ByteArrayContent(bytes);
            c.Headers.ContentType = new MediaTypeHeaderValue("text/csv");
            return c;
        };
        yield return ("CSV: header only", Csv("email\n"));
        yield return ("CSV: no email column", Csv("name\nx\n"));
        yield return ("CSV: NUL", Csv("email,first name\na\0b@x.test,\0\n"));
        yield return ("CSV: lone surrogate bytes", CsvBytes([.. "email,first name\na@x.test,"u8, 0xed, 0xa0, 0x80, (byte)'\n']));
        yield return ("CSV: invalid UTF-8", CsvBytes([.. "email\n"u8, 0xff, 0xfe, (byte)'\n']));
        yield return ("CSV: unclosed quote", Csv("email,first name\n\"a@x.test,Alan\n"));
        yield return ("CSV: 1 MB field", Csv("email,first name\na@x.test," + Megabyte + "\n"));
        yield return ("CSV: bad time zone", Csv("email,time zone\na@x.test,../../etc/passwd\n"));
        yield return ("CSV: 10,000 columns", Csv(string.Join(',', Enumerable.Range(0, 10_000).Select(i => $"c{i}")) + ",email\n"));
        yield return ("CSV: broken multipart", () =>
        {
            var c = new ByteArrayContent("--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"people.csv\"\r\n\r\nemail\n"u8.ToArray());
            c.Headers.TryAddWithoutValidation("Content-Type", "multipart/form-data; boundary=b");
            return c;
        });
        yield return ("CSV: in a form", () =>
        {
            var form = new MultipartFormDataContent();
            form.Add(new ByteArrayContent("email\na\0@x.test\n"u8.ToArray()), "file", "people.csv");
            return form;
        });
    }

    /// <summary>A one-page PDF written by hand, with a correct cross-reference table.</summary>
    static byte[] MinimalPdf()
    {
        var objects = new[]
        {
            "<< /Type /Catalog /Pages 2 0 R >>",
            "<< /Type /Pages /Kids [3 0 R] /Count 1 >>",
            "<< /Type /Page /Parent 2 0 R /MediaBox [0 0 200 200] /Contents 4 0 R /Resources << >> >>",
            "<< /Length 0 >>\nstream\n\nendstream",
        };
        var sb = new StringBuilder("%PDF-1.4\n");
        var offsets = new List<int>();
        for (var i = 0; i < objects.Length; i++)
        {
            offsets.Add(sb.Length);
            sb.Append($"{i + 1} 0 obj\n{objects[i]}\nendobj\n");
        }
        var xref = sb.Length;
        sb.Append($"xref\n0 {objects.Length + 1}\n0000000000 65535 f \n");
        foreach (var o in offsets) sb.Append($"{o:D10} 00000 n \n");
        sb.Append($"trailer\n<< /Size {objects.Length + 1} /Root 1 0 R >>\nstartxref\n{xref}\n%%EOF\n");
        return Encoding.ASCII.GetBytes(sb.ToString());
    }

    // ---- real objects ----

    /// <summary>One object of each kind a route names, owned by <paramref name="owner"/> (a member) in their team, by route prefix; and by body property name.</summary>
    async Task<Dictionary<string, string>> SeedAsync(TestUser owner)
    {
        var message = (await owner.RegisterSimpleAsync()).GetProperty("id").GetGuid();
        var now = DateTimeOffset.UtcNow;
        var mailbox = new MailboxConnection
        {
            TeamId = owner.TeamId, UserId = owner.Id, Kind = MailboxKind.Imap, Address = owner.Email, ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = now,
        };
        var template = new MailTemplate { TeamId = owner.TeamId, UserId = owner.Id, Name = "First", Subject = "Hello {{ first_name }}", Html = "<p>Hi</p>", CreatedAt = now, UpdatedAt = now };
        var sequence = new Sequence { TeamId = owner.TeamId, UserId = owner.Id, Name = "Outreach", MailboxId = mailbox.Id, TimeZone = "UTC", CreatedAt = now };
        sequence.Steps.Add(new SequenceStep { TemplateId = template.Id });
        var enrolment = new Enrolment
        {
            SequenceId = sequence.Id, TeamId = owner.TeamId, UserId = owner.Id, Address = "flynn@flynnsarcade.test", Domain = "flynnsarcade.test",
            Fields = "{}", TimeZone = "UTC", UnsubscribeToken = $"{Guid.NewGuid():N}", NextAt = now.AddDays(1), CreatedAt = now, UpdatedAt = now,
        };
        var webhook = new WebhookEndpoint { TeamId = owner.TeamId, Url = "https://192.0.2.1/hook", ProtectedSecret = "unused", EventTypes = "reply", CreatedAt = now };
        var delivery = new OutboxDelivery
        {
            TeamId = owner.TeamId, TargetKind = "webhook", TargetId = webhook.Id, EventType = "reply", IdempotencyKey = $"{Guid.NewGuid():N}", Payload = "{}",
            State = DeliveryState.Dead, CreatedAt = now, NextAttemptAt = now,
        };
        await app.WithDbAsync(async db =>
        {
            db.AddRange(mailbox, template, sequence, enrolment, webhook, delivery);
            await db.SaveChangesAsync();
        });

        // A second token, for DELETE /api/tokens/{id}: the one the sweep signs in with stays.
        var token = await owner.Client.PostAsync("/api/tokens", new StringContent("{\"name\":\"sweep\"}", Encoding.UTF8, "application/json"));
        var tokenId = JsonDocument.Parse(await token.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!;

        // A real document, its share link and a visit, so that the viewer's beacons reach their code.
        var upload = await owner.Client.PostAsync("/api/content", MinimalUpload());
        var uploaded = await upload.Content.ReadAsStringAsync();
        Assert.True(upload.IsSuccessStatusCode, $"upload: {(int)upload.StatusCode} {uploaded}");
        var content = JsonDocument.Parse(uploaded).RootElement.GetProperty("id").GetString()!;
        var link = await owner.Client.PostAsync($"/api/content/{content}/links", null);
        var linkText = await link.Content.ReadAsStringAsync();
        Assert.True(link.IsSuccessStatusCode, $"link: {(int)link.StatusCode} {linkText}");
        var documentToken = new Uri(JsonDocument.Parse(linkText).RootElement.GetProperty("url").GetString()!).AbsolutePath.Split('/')[^1];
        var visit = await app.Anonymous().PostAsync($"/d/{documentToken}/visits", null);
        var visitText = await visit.Content.ReadAsStringAsync();
        Assert.True(visit.IsSuccessStatusCode, $"visit: {(int)visit.StatusCode} {visitText}");
        var visitId = JsonDocument.Parse(visitText).RootElement.GetProperty("visitId").GetString() ?? Guid.NewGuid().ToString();

        // Another member of the team, for the Team API's routes (deactivating the one the sweep signs in with would end it).
        var teamName = app.WithDb(db => db.Teams.Where(t => t.Id == owner.TeamId).Select(t => t.Name).First());
        var teammate = await app.NewUserAsync(team: teamName);

        return new()
        {
            ["api/team/members"] = teammate.Id.ToString(),
            ["api/messages"] = message.ToString(),
            ["api/mailboxes"] = mailbox.Id.ToString(),
            ["api/content"] = content,
            ["api/templates"] = template.Id.ToString(),
            ["api/sequences"] = sequence.Id.ToString(),
            ["api/enrolments"] = enrolment.Id.ToString(),
            ["api/webhooks"] = webhook.Id.ToString(),
            ["api/outbox/deliveries"] = delivery.Id.ToString(),
            ["api/tokens"] = tokenId,
            ["document-token"] = documentToken,
            ["visit"] = visitId,
            // Body properties that name an object.
            ["mailboxid"] = mailbox.Id.ToString(),
            ["templateid"] = template.Id.ToString(),
            ["target"] = webhook.Id.ToString(),
        };
    }

    /// <summary>
    /// The server for the sweep: nothing it does may reach the outside network. Host names resolve to nothing, the
    /// background workers (webhooks, sequences, mailbox watches) do not run, and Salesforce's login is a closed local port.
    /// </summary>
    internal static void Isolate(IWebHostBuilder builder)
    {
        builder.UseSetting("Outbox:Enabled", "false");
        builder.UseSetting("Sequences:Enabled", "false");
        builder.UseSetting("Mailboxes:Watch", "false");
        builder.UseSetting("Salesforce:LoginUrl", "http://127.0.0.1:9");
        builder.ConfigureServices(s => s.PostConfigure<MailboxOptions>(o =>
            o.Resolve = (host, _) => Task.FromException<IPAddress[]>(new SocketException((int)SocketError.HostNotFound))));
    }
}

public sealed class BadInputSweepSqliteApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => BadInputSweepTests.Isolate(builder);
}

public sealed class BadInputSweepPostgresApp() : AppFactory(DatabaseProvider.Postgres)
{
    protected override void Configure(IWebHostBuilder builder) => BadInputSweepTests.Isolate(builder);
}

public sealed class BadInputSweepOnSqlite(BadInputSweepSqliteApp app, ITestOutputHelper output) : BadInputSweepTests(app, output), IClassFixture<BadInputSweepSqliteApp>;

public sealed class BadInputSweepOnPostgres(BadInputSweepPostgresApp app, ITestOutputHelper output) : BadInputSweepTests(app, output), IClassFixture<BadInputSweepPostgresApp>;
