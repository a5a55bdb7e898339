using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.ViewFeatures;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Connecting a Microsoft 365 / Outlook.com mailbox (sign-in with Microsoft, in the browser) and the two endpoints
/// Microsoft Graph calls: change notifications and lifecycle notifications.
/// </summary>
public static class GraphApi
{
    const string StateCookie = "et_ms_connect";
    const string CallbackPath = "/mailboxes/microsoft/callback";
    static readonly TimeSpan SignInTime = TimeSpan.FromMinutes(15);

    /// <summary>TempData keys the Mailboxes page shows.</summary>
    public const string ConnectedKey = "Connected";
    public const string ProblemKey = "MicrosoftProblem";

    public static void MapGraph(this IEndpointRouteBuilder app)
    {
        app.MapGet("/mailboxes/microsoft/connect", Connect).ExcludeFromDescription();
        app.MapGet(CallbackPath, Callback).ExcludeFromDescription();
        var hooks = app.MapGroup("/hooks/graph").AllowAnonymous().ExcludeFromDescription();
        hooks.MapPost("/notifications", (HttpContext http, CancellationToken ct) => Notifications(http, lifecycle: false, ct));
        hooks.MapPost("/lifecycle", (HttpContext http, CancellationToken ct) => Notifications(http, lifecycle: true, ct));
    }

    sealed record ConnectState(Guid UserId, string Nonce, string Verifier, string RedirectUri);

    static IDataProtector StateProtector(HttpContext http) =>
        http.RequestServices.GetRequiredService<IDataProtectionProvider>().CreateProtector("EmailTracking.Mailboxes.Graph.Connect.v1");

    /// <summary>The signed-in user, from the web app's cookie or an API token (the tests, the CLI).</summary>
    static async Task<CurrentUser?> SignedInAsync(HttpContext http)
    {
        foreach (var scheme in new[] { IdentityConstants.ApplicationScheme, ApiTokenAuthenticationHandler.SchemeName })
        {
            var result = await http.AuthenticateAsync(scheme);
            if (result.Succeeded && CurrentUser.From(result.Principal) is { } me) return me;
        }
        return null;
    }

    static IResult ToLogin(HttpContext http) =>
        Results.Redirect("/login?ReturnUrl=" + Uri.EscapeDataString(http.Request.Path + http.Request.QueryString));

    static async Task<IResult> Connect(HttpContext http, GraphConnector graph)
    {
        if (await SignedInAsync(http) is not { } me) return ToLogin(http);
        if (!graph.IsConfigured)
        {
            return Results.Problem(statusCode: StatusCodes.Status503ServiceUnavailable, title: "Microsoft 365 is not configured on this server.",
                detail: GraphConnector.NotConfigured);
        }
        var o = graph.Options;
        var redirect = string.IsNullOrWhiteSpace(o.RedirectUri)
            ? $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}{CallbackPath}"
            : o.RedirectUri;
        var nonce = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)).TrimEnd('=').Replace('+', '-').Replace('/', '_');
        var verifier = GraphConnector.NewCodeVerifier();
        // The state in the URL is a random nonce; what it stands for (who started the sign-in, the PKCE verifier)
        // stays in an encrypted, time-limited cookie of this browser. A callback carrying someone else's state, or
        // reaching another user's browser, matches nothing.
        var protector = StateProtector(http).ToTimeLimitedDataProtector();
        var cookie = protector.Protect(JsonSerializer.Serialize(new ConnectState(me.Id, nonce, verifier, redirect)), SignInTime);
        http.Response.Cookies.Append(StateCookie, cookie, new CookieOptions
        {
            HttpOnly = true, Secure = http.Request.IsHttps, SameSite = SameSiteMode.Lax, Path = "/mailboxes/microsoft", MaxAge = SignInTime,
        });
        return Results.Redirect(graph.AuthorizeUrl(redirect, nonce, verifier, http.Request.Query["login_hint"].FirstOrDefault()));
    }

    static async Task<IResult> Callback(HttpContext http, GraphConnector graph, AppDbContext db, MailboxSecrets secrets, MailboxWatcher watcher,
        TimeProvider clock, ILoggerFactory logs, CancellationToken ct)
    {
        if (await SignedInAsync(http) is not { } me) return ToLogin(http);
        var log = logs.CreateLogger(typeof(GraphApi));
        var state = ReadState(http);
        http.Response.Cookies.Delete(StateCookie, new CookieOptions { Path = "/mailboxes/microsoft" });
        var given = http.Request.Query["state"].FirstOrDefault() ?? "";
        if (state is null || state.UserId != me.Id
            || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(given), Encoding.UTF8.GetBytes(state.Nonce)))
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "This sign-in with Microsoft did not start here.",
                detail: "The sign-in expired, was started by another user, or did not come from this browser. Start again from the Mailboxes page.");
        }
        if (http.Request.Query["error"].FirstOrDefault() is { Length: > 0 } error)
        {
            var why = http.Request.Query["error_description"].FirstOrDefault() ?? error;
            return Back(http, problem: $"Microsoft did not connect the mailbox: {(why.Length > 300 ? why[..300] : why)}");
        }
        if (http.Request.Query["code"].FirstOrDefault() is not { Length: > 0 } code)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Microsoft sent no authorization code.");
        }

        GraphSecret secret;
        string? address;
        try
        {
            (secret, address) = await graph.RedeemAsync(code, state.RedirectUri, state.Verifier, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            var problem = GraphConnector.Translate(ex, ct);
            log.LogWarning(ex, "Connecting a Microsoft mailbox failed");
            return Back(http, problem: "The mailbox could not be connected: " + problem.Message);
        }
        address = AccountService.NormalizeAddress(address);
        // Either form of one of the user's addresses (domain in punycode or in Unicode), as registration takes.
        var forms = address is null ? [] : AccountService.StoredForms(address);
        if (address is null || !await db.UserAddresses.AnyAsync(a => a.UserId == me.Id && forms.Contains(a.Address), ct))
        {
            return Back(http, problem: $"The Microsoft account {address ?? "(without an address)"} is not one of your addresses. Add it under Your addresses (/addresses) first, or sign in with another account.");
        }

        var existing = await db.Mailboxes.FirstOrDefaultAsync(m => m.UserId == me.Id && m.Kind == MailboxKind.Graph && forms.Contains(m.Address), ct);
        MailboxConnection? previous = null;
        List<string> previousSubscriptions = [];
        if (existing is not null && secrets.Unprotect<GraphSecret>(existing.ProtectedSecret)?.HomeAccountId != secret.HomeAccountId)
        {
            // Another Microsoft account under the same address: the old delta links and subscriptions are not its own.
            // The old account's subscriptions are ended with its own sign-in, once the new one is kept.
            previous = new MailboxConnection
            {
                Id = existing.Id, TeamId = existing.TeamId, UserId = existing.UserId, Kind = existing.Kind, Address = existing.Address,
                ProtectedSecret = existing.ProtectedSecret,
            };
            previousSubscriptions = await db.MailboxCursors.Where(c => c.ConnectionId == existing.Id && c.Name.StartsWith(GraphWatch.SubscriptionPrefix))
                .Select(c => c.Name.Substring(GraphWatch.SubscriptionPrefix.Length)).ToListAsync(ct);
            await db.MailboxCursors.Where(c => c.ConnectionId == existing.Id).ExecuteDeleteAsync(ct);
        }
        var connection = existing ?? new MailboxConnection
        {
            TeamId = me.TeamId, UserId = me.Id, Kind = MailboxKind.Graph, Address = address, ProtectedSecret = "", CreatedAt = clock.GetUtcNow(),
        };
        connection.ProtectedSecret = secrets.Protect(secret);
        connection.Status = MailboxStatus.Active;
        connection.StatusMessage = null;
        connection.Failures = 0;
        if (existing is null) db.Mailboxes.Add(connection);
        await db.SaveChangesAsync(ct);
        watcher.Restart(connection.Id);
        if (previous is not null && previousSubscriptions.Count > 0) await graph.EndSubscriptionsAsync(previous, previousSubscriptions, ct);
        return Back(http, connected: address);
    }

    static ConnectState? ReadState(HttpContext http)
    {
        if (http.Request.Cookies[StateCookie] is not { Length: > 0 } cookie) return null;
        try
        {
            return JsonSerializer.Deserialize<ConnectState>(StateProtector(http).ToTimeLimitedDataProtector().Unprotect(cookie));
        }
        catch (Exception ex) when (ex is CryptographicException or JsonException)
        {
            return null;
        }
    }

    static IResult Back(HttpContext http, string? connected = null, string? problem = null)
    {
        var tempData = http.RequestServices.GetRequiredService<ITempDataDictionaryFactory>().GetTempData(http);
        if (connected is not null) tempData[ConnectedKey] = connected;
        if (problem is not null) tempData[ProblemKey] = problem;
        tempData.Save();
        return Results.Redirect("/mailboxes");
    }

    /// <summary>
    /// Microsoft Graph's change and lifecycle notifications. The validation handshake echoes the token as text. A
    /// notification counts only when its clientState equals the one stored for its subscription (compared in constant
    /// time); then the mailbox's watch is woken, and lifecycle events are noted for it (subscription removed: subscribe
    /// again; reauthorization required: reauthorize). Anything else is ignored, yet answered 202 like the rest, so that
    /// a stranger learns nothing about which subscriptions exist; a body that is not a notification is a 400. Work is
    /// left to the watch: the answer comes at once, well within Graph's 3 seconds.
    /// </summary>
    static async Task<IResult> Notifications(HttpContext http, bool lifecycle, CancellationToken ct)
    {
        if (http.Request.Query.TryGetValue("validationToken", out var validation))
        {
            // ASP.NET Core has already URL-decoded it, as Graph requires.
            return Results.Text(validation.ToString(), "text/plain", Encoding.UTF8, StatusCodes.Status200OK);
        }
        List<(string Subscription, string ClientState, string? Event)> items;
        try
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, new JsonDocumentOptions { MaxDepth = 16 }, ct);
            // TryGetProperty throws on anything but an object: a body of [], "x", 1 or null is not a notification either.
            if (doc.RootElement.ValueKind != JsonValueKind.Object || !doc.RootElement.TryGetProperty("value", out var value)
                || value.ValueKind != JsonValueKind.Array || value.GetArrayLength() > 1000)
            {
                return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not a Graph notification: a \"value\" array is expected.");
            }
            items = [];
            foreach (var item in value.EnumerateArray())
            {
                if (item.ValueKind != JsonValueKind.Object || !item.TryGetProperty("subscriptionId", out var sub) || sub.ValueKind != JsonValueKind.String)
                {
                    return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Each notification needs a subscriptionId.");
                }
                var clientState = item.TryGetProperty("clientState", out var cs) && cs.ValueKind == JsonValueKind.String ? cs.GetString() ?? "" : "";
                var lifecycleEvent = item.TryGetProperty("lifecycleEvent", out var le) && le.ValueKind == JsonValueKind.String ? le.GetString() : null;
                items.Add((sub.GetString()!, clientState, lifecycleEvent));
            }
        }
        catch (JsonException)
        {
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "The body is not JSON.");
        }
        catch (InvalidOperationException)
        {
            // JsonDocument checks a string's text only when it is read (GetString): an escaped lone surrogate
            // ("\ud800") or bytes that are not UTF-8 throw there, not at parsing. Graph never sends them.
            return Results.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not a Graph notification.",
                detail: "A string in the body is not valid Unicode (a lone surrogate, or bytes that are not UTF-8).");
        }

        var services = http.RequestServices;
        var db = services.GetRequiredService<AppDbContext>();
        var secrets = services.GetRequiredService<MailboxSecrets>();
        var signals = services.GetRequiredService<MailboxSignals>();
        var log = services.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GraphApi));
        // No subscription of ours is longer or holds U+0000, which PostgreSQL refuses even as a query parameter (a 500).
        var names = items.Select(i => GraphWatch.SubscriptionPrefix + i.Subscription).Where(n => n.Length <= 200 && !n.Contains('\0')).Distinct().ToList();
        var rows = await db.MailboxCursors.Where(c => names.Contains(c.Name)).ToListAsync(ct);
        var woken = new HashSet<Guid>();
        var ignored = 0;
        foreach (var (subscription, clientState, lifecycleEvent) in items)
        {
            var row = rows.FirstOrDefault(r => r.Name == GraphWatch.SubscriptionPrefix + subscription);
            var state = row is null ? null : secrets.Unprotect<GraphSubscriptionState>(row.Value);
            if (row is null || state is null
                || !CryptographicOperations.FixedTimeEquals(Encoding.UTF8.GetBytes(clientState), Encoding.UTF8.GetBytes(state.ClientState)))
            {
                ignored++;
                continue;
            }
            if (lifecycle)
            {
                switch (lifecycleEvent)
                {
                    case "subscriptionRemoved":
                        db.MailboxCursors.Remove(row);
                        break;
                    case "reauthorizationRequired":
                        row.Value = secrets.Protect(state with { Reauthorize = true });
                        break;
                }
            }
            woken.Add(row.ConnectionId);
        }
        if (lifecycle) await db.SaveChangesAsync(ct);
        foreach (var id in woken) signals.Poke(id);
        if (ignored > 0) log.LogWarning("Ignored {Count} Graph notification(s) with an unknown subscription or a wrong clientState", ignored);
        return Results.Accepted();
    }
}
