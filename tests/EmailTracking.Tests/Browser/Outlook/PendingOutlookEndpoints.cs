using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser.Outlook;

/// <summary>
/// The add-in's own endpoints (/api/outlook/me, /api/outlook/item) are being built on the server side (branch
/// outlook-server). Until they land, the browser tests route them here: each request goes to the real server first,
/// and only a 404 is answered by this stand-in, which derives its answer from the same server's existing API
/// (GET /api/me, GET /api/messages/{id}, with the pane's own Authorization header) and its database. So the panes
/// talk to the real endpoints as soon as they exist, and this file can then be deleted.
/// Nothing here is a fixed answer: counts, plans and recipients come from what the server recorded.
/// </summary>
sealed class PendingOutlookEndpoints(string baseUrl, Func<AppDbContext> openDb)
{
    /// <summary>The user's "track by default" setting, which the existing API does not have yet.</summary>
    public bool TrackByDefault { get; set; } = true;

    /// <summary>Requests answered by the stand-in (path and query), to tell in a failure which side answered.</summary>
    public List<string> StoodIn { get; } = [];

    public async Task HandleAsync(IRoute route)
    {
        var real = await route.FetchAsync();
        if (real.Status != 404)
        {
            await route.FulfillAsync(new RouteFulfillOptions { Response = real });
            return;
        }
        var url = new Uri(route.Request.Url);
        lock (StoodIn) StoodIn.Add(url.PathAndQuery);
        var auth = route.Request.Headers.GetValueOrDefault("authorization");
        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };
        if (auth is not null) api.DefaultRequestHeaders.Authorization = AuthenticationHeaderValue.Parse(auth);
        JsonNode? answer = url.AbsolutePath switch
        {
            "/api/outlook/me" => await MeAsync(api),
            "/api/outlook/item" => await ItemAsync(api, System.Web.HttpUtility.ParseQueryString(url.Query)),
            _ => null,
        };
        if (answer is null)
        {
            await route.FulfillAsync(new RouteFulfillOptions { Status = 404 });
            return;
        }
        await route.FulfillAsync(new RouteFulfillOptions { Status = 200, ContentType = "application/json", Body = answer.ToJsonString() });
    }

    async Task<JsonNode?> MeAsync(HttpClient api)
    {
        var res = await api.GetAsync("/api/me");
        if (!res.IsSuccessStatusCode) return null;
        var me = JsonNode.Parse(await res.Content.ReadAsStringAsync())!;
        var plan = me["plan"]!.GetValue<string>();
        return new JsonObject
        {
            ["email"] = me["email"]!.GetValue<string>(),
            ["plan"] = plan,
            ["trackByDefault"] = TrackByDefault,
            ["contentAllowed"] = plan == "team",
            ["maxRecipients"] = 500, // TrackingOptions.MaxRecipients' default; the server runs with it
        };
    }

    async Task<JsonNode?> ItemAsync(HttpClient api, System.Collections.Specialized.NameValueCollection q)
    {
        Guid? messageId = null;
        await using (var db = openDb())
        {
            var token = q["token"];
            var internetId = q["internetMessageId"]?.Trim('<', '>');
            messageId = await db.Copies.Where(c => (token != null && c.PixelToken == token) || (internetId != null && c.MessageIdHeader == internetId))
                .Select(c => (Guid?)c.TrackedMessageId).FirstOrDefaultAsync();
        }
        if (messageId is null) return new JsonObject { ["kind"] = "none" };
        var res = await api.GetAsync($"/api/messages/{messageId}");
        if (!res.IsSuccessStatusCode) return new JsonObject { ["kind"] = "none" };
        var m = JsonNode.Parse(await res.Content.ReadAsStringAsync())!["message"]!;

        await using var db2 = openDb();
        var documentEvents = await db2.Events.Where(e => e.TrackedMessageId == messageId && e.Verdict == Verdict.Human &&
                                                         (e.Kind == EventKind.DocumentPage || e.Kind == EventKind.Download))
            .Select(e => new { e.RecipientId, e.Kind }).ToListAsync();
        JsonObject Counts(JsonNode c, Func<Guid?, bool> whose) => new()
        {
            ["opens"] = c["opens"]!.GetValue<int>(),
            ["clicks"] = c["clicks"]!.GetValue<int>(),
            ["pagesRead"] = documentEvents.Count(e => e.Kind == EventKind.DocumentPage && whose(e.RecipientId)),
            ["downloads"] = documentEvents.Count(e => e.Kind == EventKind.Download && whose(e.RecipientId)),
            ["replied"] = c["replied"]!.GetValue<bool>(),
            ["lastOpenAt"] = c["lastOpenAt"]?.DeepClone(),
            ["lastClickAt"] = c["lastClickAt"]?.DeepClone(),
            ["machineEvents"] = c["machineOpens"]!.GetValue<int>() + c["machineClicks"]!.GetValue<int>(),
        };
        var recipients = new JsonArray();
        foreach (var r in m["recipients"]!.AsArray())
        {
            var id = Guid.Parse(r!["id"]!.GetValue<string>());
            var counts = Counts(r["counts"]!, e => e == id);
            counts["address"] = r["address"]!.GetValue<string>();
            recipients.Add(counts);
        }
        return new JsonObject
        {
            ["kind"] = "sent",
            ["message"] = new JsonObject
            {
                ["id"] = m["id"]!.GetValue<string>(),
                ["subject"] = m["subject"]!.GetValue<string>(),
                ["sentAt"] = m["sentAt"]?.DeepClone(),
                ["perRecipient"] = m["perRecipient"]!.GetValue<bool>(),
                ["recipients"] = recipients,
                ["everyone"] = Counts(m["counts"]!, _ => true),
            },
        };
    }
}
