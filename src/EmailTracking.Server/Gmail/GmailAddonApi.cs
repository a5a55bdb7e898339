using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// The Google Workspace add-on's HTTP endpoints. Gmail POSTs an event object; we answer card JSON. Every request must
/// carry our deployment's system ID token; the Gmail user is named by the verified user ID token in the event and
/// mapped to our user through their addresses.
/// </summary>
public static class GmailAddonApi
{
    public const string HomepagePath = "/gmail/homepage";
    public const string MessagePath = "/gmail/message";
    public const string ComposePath = "/gmail/compose";

    /// <summary>An event object is a few kilobytes; the draft body is never in it.</summary>
    const int MaxBodyBytes = 256 * 1024;
    const string UserinfoEmailScope = "https://www.googleapis.com/auth/userinfo.email";

    public static IServiceCollection AddGmailAddon(this IServiceCollection services, IConfiguration config)
    {
        services.AddOptions<GmailAddonOptions>().Bind(config.GetSection(GmailAddonOptions.Section));
        services.AddSingleton<GmailAddonVerifier>();
        services.AddSingleton<GmailAccountLink>();
        services.AddScoped<GmailSentMatch>();
        return services;
    }

    public static void MapGmailAddon(this IEndpointRouteBuilder app)
    {
        // Google is the caller, not a signed-in browser: the tokens checked below are the authentication.
        var g = app.MapGroup("/gmail").AllowAnonymous().ExcludeFromDescription();
        g.MapPost("/homepage", (HttpContext http, CancellationToken ct) => HandleAsync(http, Homepage, HomepageScopes, ct));
        g.MapPost("/message", (HttpContext http, CancellationToken ct) => HandleAsync(http, Message, MessageScopes, ct));
        g.MapPost("/compose", (HttpContext http, CancellationToken ct) => HandleAsync(http, Compose, ComposeScopes, ct));
    }

    const string ExecuteScope = "https://www.googleapis.com/auth/gmail.addons.execute";
    const string MessageMetadataScope = "https://www.googleapis.com/auth/gmail.addons.current.message.metadata";
    const string ComposeScope = "https://www.googleapis.com/auth/gmail.addons.current.action.compose";
    /// <summary>What each endpoint cannot work without (script.locale only refines "today", so it is never insisted on).</summary>
    static readonly string[] HomepageScopes = [ExecuteScope, UserinfoEmailScope];
    static readonly string[] MessageScopes = [ExecuteScope, UserinfoEmailScope, MessageMetadataScope];
    static readonly string[] ComposeScopes = [ExecuteScope, UserinfoEmailScope, ComposeScope];

    /// <summary>
    /// Granular consent: the user may have unticked scopes. The scopes this endpoint needs that the event's
    /// authorizedScopes does not list; none when the event gives no list.
    /// </summary>
    static List<string> MissingScopes(JsonElement ev, string[] needed)
    {
        if (!ev.TryGetProperty("authorizationEventObject", out var auth) || auth.ValueKind != JsonValueKind.Object
            || !auth.TryGetProperty("authorizedScopes", out var list) || list.ValueKind != JsonValueKind.Array || list.GetArrayLength() == 0) return [];
        var granted = list.EnumerateArray().Where(x => x.ValueKind == JsonValueKind.String).Select(x => x.GetString()).ToHashSet(StringComparer.Ordinal);
        return [.. needed.Where(n => !granted.Contains(n))];
    }

    /// <summary>Asks Google to ask the user again for these scopes, then to repeat the request.</summary>
    static IResult RequestScopes(IEnumerable<string> scopes) =>
        TypedResults.Json(new JsonObject { ["requesting_google_scopes"] = new JsonObject { ["scopes"] = new JsonArray([.. scopes.Select(x => (JsonNode)x)]) } });

    /// <summary>A verified request from a Gmail user we know.</summary>
    sealed record AddonRequest(HttpContext Http, JsonElement Event, User User, string GmailUser, CardLinks Links, TimeSpan Offset, bool IsCallback)
    {
        public string? Parameter(string key) =>
            Event.TryGetProperty("commonEventObject", out var c) && c.ValueKind == JsonValueKind.Object
            && c.TryGetProperty("parameters", out var p) && p.ValueKind == JsonValueKind.Object
            && p.TryGetProperty(key, out var v) && v.ValueKind == JsonValueKind.String ? v.GetString() : null;
    }

    static async Task<IResult> HandleAsync(HttpContext http, Func<AddonRequest, CancellationToken, Task<JsonObject>> render, string[] scopes,
        CancellationToken ct)
    {
        var verifier = http.RequestServices.GetRequiredService<GmailAddonVerifier>();
        var log = http.RequestServices.GetRequiredService<ILoggerFactory>().CreateLogger(typeof(GmailAddonApi));
        try
        {
            if (!await verifier.IsFromOurDeploymentAsync(http.Request.Headers.Authorization.ToString(), ct)) return TypedResults.Unauthorized();
        }
        catch (HttpRequestException ex)
        {
            // Google's signing keys could not be fetched: not the caller's fault, and nothing was decided.
            log.LogWarning(ex, "Could not fetch the keys to check a Gmail add-on request");
            return TypedResults.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }

        if (http.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } limit) limit.MaxRequestBodySize = MaxBodyBytes;
        if (http.Request.ContentLength > MaxBodyBytes) return TypedResults.StatusCode(StatusCodes.Status413PayloadTooLarge);
        JsonElement ev;
        try
        {
            using var doc = await JsonDocument.ParseAsync(http.Request.Body, default, ct);
            if (doc.RootElement.ValueKind != JsonValueKind.Object) throw new JsonException("the event object is not a JSON object");
            ev = doc.RootElement.Clone();
        }
        catch (BadHttpRequestException ex)
        {
            return TypedResults.Problem(statusCode: ex.StatusCode, title: "The event object could not be read.", detail: ex.Message);
        }
        catch (JsonException ex)
        {
            return TypedResults.Problem(statusCode: StatusCodes.Status400BadRequest, title: "Not a Gmail add-on event object.", detail: ex.Message);
        }

        var links = Links(http);
        var userIdToken = ev.TryGetProperty("authorizationEventObject", out var auth) && auth.ValueKind == JsonValueKind.Object
            && auth.TryGetProperty("userIdToken", out var t) && t.ValueKind == JsonValueKind.String ? t.GetString() : null;
        // Only granted with userinfo.email (granular consent lets the user untick it): ask Google to ask again.
        if (string.IsNullOrEmpty(userIdToken)) return RequestScopes([UserinfoEmailScope]);
        if (MissingScopes(ev, scopes) is { Count: > 0 } missing) return RequestScopes(missing);
        string? email;
        try
        {
            email = await verifier.UserEmailAsync(userIdToken, ct);
        }
        catch (HttpRequestException ex)
        {
            log.LogWarning(ex, "Could not fetch the keys to check a Gmail add-on user");
            return TypedResults.StatusCode(StatusCodes.Status503ServiceUnavailable);
        }
        if (email is null) return TypedResults.Unauthorized();

        var isCallback = ev.TryGetProperty("commonEventObject", out var common) && common.ValueKind == JsonValueKind.Object
            && common.TryGetProperty("parameters", out var ps) && ps.ValueKind == JsonValueKind.Object && ps.EnumerateObject().Any();
        var address = AccountService.NormalizeAddress(email);
        var db = http.RequestServices.GetRequiredService<AppDbContext>();
        // Only the user whose email it is, or who linked it: an alias anyone may add would map its real owner to them.
        var user = address is null ? null : await AccountService.SignsInAs(db, address).AsNoTracking().FirstOrDefaultAsync(ct);
        if (user is null)
        {
            var linkUrl = http.RequestServices.GetRequiredService<GmailAccountLink>().Url(links.WebAppUrl, address ?? email);
            var card = GmailCards.LinkAccount(email, linkUrl, links);
            return TypedResults.Json(isCallback ? GmailCards.Update(card) : GmailCards.Push(card));
        }

        // A deactivated account (the Team page; an administrator's lock) is refused here as everywhere else: the add-on
        // signs nobody in with a cookie or a token, so nothing else would stop it showing and registering their mail.
        if (Auth.IsShut(user.LockoutEnd, http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow()))
        {
            var closed = GmailCards.Error("This EmailTracking account has been deactivated by a team admin: ask them to reactivate it.", links);
            return TypedResults.Json(isCallback ? GmailCards.Update(closed) : GmailCards.Push(closed));
        }

        var request = new AddonRequest(http, ev, user, address!, links, Offset(ev), isCallback);
        return TypedResults.Json(await render(request, ct));
    }

    static async Task<JsonObject> Homepage(AddonRequest r, CancellationToken ct)
    {
        var db = r.Http.RequestServices.GetRequiredService<AppDbContext>();
        var clock = r.Http.RequestServices.GetRequiredService<TimeProvider>();
        var options = r.Http.RequestServices.GetRequiredService<IOptionsMonitor<GmailAddonOptions>>().CurrentValue;
        var now = clock.GetUtcNow().ToOffset(r.Offset);
        var since = new DateTimeOffset(now.Date, r.Offset).ToUniversalTime();
        var today = await TodayAsync(db, r.User, since, Math.Clamp(options.TopRecipients, 0, 20), ct);
        var showMachines = r.Parameter(GmailCards.ActionParameter) == GmailCards.ShowMachinesAction;
        var card = GmailCards.Homepage(today, showMachines, r.Links, r.Offset);
        return r.IsCallback ? GmailCards.Update(card) : GmailCards.Push(card);
    }

    /// <summary>
    /// The card beside an opened message: the tracked messages of its conversation, found by Gmail's thread id (which
    /// the Gmail connector records for mail it sent or saw sent), with what each recipient did.
    /// </summary>
    static async Task<JsonObject> Message(AddonRequest r, CancellationToken ct)
    {
        var thread = GmailId(r.Event, "threadId");
        var db = r.Http.RequestServices.GetRequiredService<AppDbContext>();
        var messages = new List<ConversationMessage>();
        if (thread is not null)
        {
            var ids = await db.Copies.Where(c => c.ProviderThreadId == thread)
                .Join(db.Messages.Where(m => m.UserId == r.User.Id && m.TeamId == r.User.TeamId), c => c.TrackedMessageId, m => m.Id, (c, m) => m.Id)
                .Distinct().ToListAsync(ct);
            if (ids.Count == 0 && !r.IsCallback && GmailId(r.Event, "messageId") is { } messageHex
                && StringField(r.Event, "authorizationEventObject", "userOAuthToken") is { } userToken
                && StringField(r.Event, "gmail", "accessToken") is { } messageToken
                && await r.Http.RequestServices.GetRequiredService<GmailSentMatch>().MatchAsync(r.User, messageHex, thread, userToken, messageToken, ct) is { } matched)
            {
                ids.Add(matched);
            }
            if (ids.Count > 0 && !r.IsCallback)
            {
                await RecordSenderViewAsync(db, r.Http.RequestServices.GetRequiredService<Tracking.VerdictCorrections>(), ids,
                    r.Http.RequestServices.GetRequiredService<TimeProvider>().GetUtcNow(), ct);
            }
            if (ids.Count > 0)
            {
                var summaries = await Messages.MessageStats.SummarizeAsync(db,
                    db.Messages.Where(m => ids.Contains(m.Id)).OrderByDescending(m => m.SentAt ?? m.CreatedAt), ct);
                var docs = await Messages.MessageStats.DocumentCountsAsync(db, ids, ct);
                RecipientActivity Of(string who, Guid message, Guid? recipient, Messages.Counts c) => new(who, c.Opens, c.Clicks,
                    docs.PagesRead(message, recipient), docs.Downloads(message, recipient), c.Replied, c.LastOpenAt, c.LastClickAt, c.MachineEvents, c.OwnViews);
                messages.AddRange(summaries.Take(GmailCards.MaxConversationMessages).Select(m => new ConversationMessage(m.Subject, m.SentAt, m.PerRecipient,
                    [.. m.Recipients.Select(x => Of(x.Address, m.Id, x.Id, x.Counts))], Of("Everyone", m.Id, null, m.Counts))));
            }
        }
        var card = GmailCards.Conversation(messages, r.Links, r.Offset);
        return r.IsCallback ? GmailCards.Update(card) : GmailCards.Push(card);
    }

    /// <summary>
    /// The sender has their own tracked mail open in Gmail: Gmail now fetches its images through its proxy, which hides
    /// the sender's device. The moment is kept, so that proxy fetches in the next seconds count as the sender's
    /// (TrackingApi), and the ones that arrived just before this request are marked so now.
    /// </summary>
    static async Task RecordSenderViewAsync(AppDbContext db, Tracking.VerdictCorrections corrections, List<Guid> messages, DateTimeOffset now,
        CancellationToken ct)
    {
        await db.Messages.Where(m => messages.Contains(m.Id)).ExecuteUpdateAsync(s => s.SetProperty(m => m.SenderViewedAt, now), ct);
        var from = now - Tracking.SenderView.Before;
        await corrections.RemarkAsync(events => events.Events
            .Where(e => e.TrackedMessageId != null && messages.Contains(e.TrackedMessageId.Value) && e.Kind == EventKind.Open && e.OccurredAt >= from
                        && e.UserAgent != null && (e.UserAgent.Contains("GoogleImageProxy") || e.UserAgent.Contains("ggpht.com"))),
            Verdict.Self, Tracking.SenderView.Reason, ct);
        // A draft tracked from the compose card holds its pixel while the sender writes: the compose window loads it
        // (again when the draft is reopened), from the sender's own browser or through Gmail's proxy. Nobody else has
        // the mail before it leaves, so an open before the time Gmail says it was sent is the sender's.
        if (await PreSendOpens(db, messages).AnyAsync(ct)) await corrections.RemarkAsync(d => PreSendOpens(d, messages), Verdict.Self, BeforeSentReason, ct);
    }

    public const string BeforeSentReason = "loaded before the mail was sent: the sender's own compose window showing the draft";

    /// <summary>Opens of compose-tracked messages earlier than the send time Gmail gave them (its connector or the add-on recorded it).</summary>
    static IQueryable<TrackingEvent> PreSendOpens(AppDbContext db, List<Guid> messages) =>
        from e in db.Events
        join m in db.Messages on e.TrackedMessageId equals m.Id
        where messages.Contains(m.Id) && m.Source == MessageSource.GmailAddon && m.SentAt != null && e.Kind == EventKind.Open
              && e.Verdict == Verdict.Human && e.OccurredAt < m.SentAt
        select e;

    static string? StringField(JsonElement ev, string obj, string field) =>
        ev.TryGetProperty(obj, out var o) && o.ValueKind == JsonValueKind.Object && o.TryGetProperty(field, out var v)
        && v.ValueKind == JsonValueKind.String && v.GetString() is { Length: > 0 and <= 4096 } text ? text : null;

    /// <summary>
    /// Gmail's id from the event in the Gmail API's form: events carry <c>thread-f:</c>/<c>msg-f:</c> and a decimal
    /// number, the API (and what the connector stored) the same number in lower-case hex.
    /// </summary>
    public static string? GmailId(JsonElement ev, string field)
    {
        if (!ev.TryGetProperty("gmail", out var g) || g.ValueKind != JsonValueKind.Object || !g.TryGetProperty(field, out var v)
            || v.ValueKind != JsonValueKind.String) return null;
        var text = v.GetString() ?? "";
        var colon = text.IndexOf(':');
        if (colon >= 0)
        {
            return ulong.TryParse(text.AsSpan(colon + 1), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out var n)
                ? n.ToString("x", System.Globalization.CultureInfo.InvariantCulture)
                : null;
        }
        return text.Length is > 0 and <= 64 && text.All(char.IsAsciiHexDigit) ? text.ToLowerInvariant() : null;
    }

    /// <summary>
    /// The compose action. The trigger answers the card, whose buttons carry the id the draft's tracked message gets.
    /// "Track this email" registers the draft (recipients from the draft's metadata, the subject typed in the card) as
    /// one shared copy and inserts its pixel; "Insert tracked content" inserts links of that copy to the chosen documents,
    /// registering the draft first (pixel included) when it is not tracked yet.
    /// </summary>
    static async Task<JsonObject> Compose(AddonRequest r, CancellationToken ct)
    {
        var draft = Recipients(r.Event);
        var services = r.Http.RequestServices;
        var db = services.GetRequiredService<AppDbContext>();
        var me = new CurrentUser(r.User.Id, r.User.TeamId, r.User.Role, r.User.Email ?? "");
        var action = r.Parameter(GmailCards.ActionParameter);
        if (action is not (GmailCards.TrackAction or GmailCards.InsertContentAction))
        {
            return GmailCards.Push(GmailCards.Compose(draft, await LibraryAsync(db, services, me, ct), Guid.NewGuid(), r.Links));
        }
        if (!Guid.TryParse(r.Parameter(GmailCards.MessageParameter), out var key) || key == Guid.Empty)
        {
            return GmailCards.Update(GmailCards.Error("This card is out of date. Close it and open EmailTracking from the compose window again.", r.Links));
        }
        if (draft.Count == 0) return GmailCards.Update(GmailCards.Compose(draft, ComposeLibraryNone, key, r.Links));

        var existing = await db.Messages.Where(m => m.Id == key).Select(m => new { m.UserId, m.TeamId }).FirstOrDefaultAsync(ct);
        if (existing is not null && (existing.UserId != me.Id || existing.TeamId != me.TeamId))
        {
            return GmailCards.Update(GmailCards.Error("This card is out of date. Close it and open EmailTracking from the compose window again.", r.Links));
        }
        var tracking = services.GetRequiredService<IOptions<TrackingOptions>>().Value;
        var urls = TrackingUrls.For(r.Http, tracking);

        if (action == GmailCards.TrackAction)
        {
            if (existing is not null) return GmailCards.Notify("This email is already tracked.");
            var (copy, error) = await RegisterDraftAsync(r, draft, key, me, db, tracking, urls, ct);
            return copy is null ? GmailCards.Update(GmailCards.Error("This draft could not be tracked: " + error, r.Links)) : GmailCards.InsertPixel(copy.PixelUrl);
        }

        // Insert tracked content.
        if (await services.GetRequiredService<Content.ContentLibrary>().CheckPlanAsync(me, ct) is { } refused)
        {
            return GmailCards.Update(GmailCards.Error($"{refused.Title}. {refused.Detail}", r.Links));
        }
        var chosen = FormInputs(r.Event, GmailCards.DocumentsInput).Select(v => Guid.TryParse(v, out var id) ? id : Guid.Empty)
            .Where(id => id != Guid.Empty).Distinct().Take(GmailCards.MaxLibraryChoices).ToList();
        if (chosen.Count == 0) return GmailCards.Notify("Choose one or more documents first.");
        var items = await Content.ContentStats.Visible(db, me).AsNoTracking().Where(c => chosen.Contains(c.Id) && c.DeletedAt == null).ToListAsync(ct);
        if (items.Count == 0) return GmailCards.Notify("Those documents are no longer in the library.");
        // In the order the library lists them, as the user saw them.
        items = [.. items.OrderByDescending(c => c.CreatedAt)];

        string? pixel = null;
        Guid copyId;
        if (existing is null)
        {
            var (copy, error) = await RegisterDraftAsync(r, draft, key, me, db, tracking, urls, ct);
            if (copy is null) return GmailCards.Update(GmailCards.Error("This draft could not be tracked: " + error, r.Links));
            pixel = copy.PixelUrl;
            copyId = copy.Id;
        }
        else
        {
            copyId = await db.Copies.Where(c => c.TrackedMessageId == key).OrderBy(c => c.Id).Select(c => c.Id).FirstAsync(ct);
        }
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var created = items.Select(item => new ContentLink
        {
            Token = Tokens.NewTrackingToken(), ContentId = item.Id, TeamId = me.TeamId, UserId = me.Id,
            TrackedMessageId = key, CopyId = copyId, CreatedAt = now,
        }).ToList();
        db.ContentLinks.AddRange(created);
        await db.SaveChangesAsync(ct);
        return GmailCards.InsertContent([.. created.Zip(items, (link, item) => new DocumentInsert(Content.ContentLinks.Url(urls, link.Token), item.Name, item.PageCount))], pixel);
    }

    static readonly ComposeLibrary ComposeLibraryNone = new(null, []);

    /// <summary>The documents the compose card offers, newest first, or why the team's plan does not offer any.</summary>
    static async Task<ComposeLibrary> LibraryAsync(AppDbContext db, IServiceProvider services, CurrentUser me, CancellationToken ct)
    {
        if (await services.GetRequiredService<Content.ContentLibrary>().CheckPlanAsync(me, ct) is not null)
        {
            return new ComposeLibrary("Tracked documents come with the Team plan: your team is on the Solo plan. An administrator can move it " +
                                      "to the Team plan (et teams plan).", []);
        }
        // The library as the web app and the Outlook pane show it: a member's own documents, an admin's the team's.
        var docs = await Content.ContentStats.Visible(db, me).AsNoTracking().Where(c => c.DeletedAt == null)
            .OrderByDescending(c => c.CreatedAt).Take(GmailCards.MaxLibraryChoices)
            .Select(c => new LibraryDocument(c.Id, c.Name, c.PageCount)).ToListAsync(ct);
        return new ComposeLibrary(null, docs);
    }

    /// <summary>The draft as one shared copy under the card's id: its body is not ours to read (metadata access), so the pixel is all it holds.</summary>
    static async Task<(Messages.MessagesApi.CopyResponse? Copy, string? Error)> RegisterDraftAsync(AddonRequest r, DraftRecipients draft, Guid id,
        CurrentUser me, AppDbContext db, TrackingOptions tracking, TrackingUrls urls, CancellationToken ct)
    {
        var request = new Messages.MessagesApi.RegisterRequest(r.GmailUser, FormInput(r.Event, GmailCards.SubjectInput, int.MaxValue) ?? "",
            [.. draft.To], [.. draft.Cc], [.. draft.Bcc], Html: "<p></p>", PerRecipient: false, Source: MessageSource.GmailAddon);
        try
        {
            var clock = r.Http.RequestServices.GetRequiredService<TimeProvider>();
            var (response, errors) = await Messages.MessagesApi.RegisterAsync(request, me, db, tracking, urls, clock, ct, id);
            if (response is null) return (null, string.Join(" ", errors!.SelectMany(e => e.Value)));
            // The pixel goes into the draft now, and the compose window shows it at once, through Gmail's image proxy
            // like any image of a message: that fetch is the sender's (no one else has a draft), see SenderView.
            await db.Messages.Where(m => m.Id == id).ExecuteUpdateAsync(s => s.SetProperty(m => m.SenderViewedAt, clock.GetUtcNow()), ct);
            return (response.Copies[0], null);
        }
        catch (DbUpdateException)
        {
            // Both buttons at once (a double click): the other request registered it.
            return (null, "it is being tracked already; try again in a moment.");
        }
    }

    static DraftRecipients Recipients(JsonElement ev)
    {
        List<string> List(string name)
        {
            var list = new List<string>();
            if (ev.TryGetProperty("gmail", out var g) && g.ValueKind == JsonValueKind.Object && g.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array)
                foreach (var x in a.EnumerateArray())
                    if (x.ValueKind == JsonValueKind.String && !string.IsNullOrWhiteSpace(x.GetString())) list.Add(x.GetString()!);
            return list;
        }
        return new DraftRecipients(List("toRecipients"), List("ccRecipients"), List("bccRecipients"));
    }

    /// <summary>A text input's value: formInputs.{name}.stringInputs.value[0].</summary>
    /// <remarks>
    /// The subject is not cut short here: one dropped for its length would track the draft with no subject, which the
    /// sent-mail match takes as any subject; registration says when it is too long.
    /// </remarks>
    static string? FormInput(JsonElement ev, string name, int maxLength) => FormInputs(ev, name, maxLength).FirstOrDefault();

    /// <summary>A widget's values (a checkbox list gives one per ticked box): formInputs.{name}.stringInputs.value.</summary>
    static List<string> FormInputs(JsonElement ev, string name, int maxLength = 200)
    {
        var values = new List<string>();
        if (ev.TryGetProperty("commonEventObject", out var c) && c.ValueKind == JsonValueKind.Object
            && c.TryGetProperty("formInputs", out var f) && f.ValueKind == JsonValueKind.Object
            && f.TryGetProperty(name, out var i) && i.ValueKind == JsonValueKind.Object
            && i.TryGetProperty("stringInputs", out var si) && si.ValueKind == JsonValueKind.Object
            && si.TryGetProperty("value", out var v) && v.ValueKind == JsonValueKind.Array)
        {
            foreach (var x in v.EnumerateArray())
                if (x.ValueKind == JsonValueKind.String && x.GetString() is { Length: > 0 } text && text.Length <= maxLength) values.Add(text);
        }
        return values;
    }

    static readonly EventKind[] Engagement = [EventKind.Open, EventKind.Click, EventKind.DocumentView, EventKind.DocumentPage, EventKind.Download, EventKind.Reply];
    static readonly Verdict[] Machines = [Verdict.ProxyPrefetch, Verdict.Scanner, Verdict.Bot];

    /// <summary>
    /// The user's own events since local midnight (their messages', and their documents' read through a share link outside
    /// any message): people counted, machines apart, the sender's own views neither.
    /// </summary>
    public static async Task<TodayActivity> TodayAsync(AppDbContext db, User user, DateTimeOffset since, int top, CancellationToken ct)
    {
        var mine = db.Events.Where(e => e.UserId == user.Id && e.TeamId == user.TeamId && e.OccurredAt >= since && Engagement.Contains(e.Kind));
        var groups = await mine.GroupBy(e => new { e.Kind, e.Verdict }).Select(g => new { g.Key.Kind, g.Key.Verdict, Count = g.Count() }).ToListAsync(ct);
        ActivityCounts Count(Func<Verdict, bool> which)
        {
            int N(EventKind k) => groups.Where(g => g.Kind == k && which(g.Verdict)).Sum(g => g.Count);
            return new ActivityCounts(N(EventKind.Open), N(EventKind.Click), N(EventKind.DocumentView), N(EventKind.DocumentPage), N(EventKind.Download), N(EventKind.Reply));
        }
        var humans = Count(v => v == Verdict.Human);
        var machines = Count(v => Machines.Contains(v)) with { Replies = 0 };

        var engaged = await mine.Where(e => e.Verdict == Verdict.Human && e.RecipientId != null)
            .GroupBy(e => e.RecipientId!.Value)
            .Select(g => new { RecipientId = g.Key, Events = g.Count(), Last = g.Max(e => e.OccurredAt) })
            .ToListAsync(ct);
        var ids = engaged.Select(e => e.RecipientId).ToList();
        var addresses = await db.Recipients.Where(x => ids.Contains(x.Id)).Select(x => new { x.Id, x.Address }).ToDictionaryAsync(x => x.Id, x => x.Address, ct);
        // One person may be a recipient of several messages: add them up by address.
        var topRecipients = engaged.Where(e => addresses.ContainsKey(e.RecipientId))
            .GroupBy(e => addresses[e.RecipientId])
            .Select(g => new EngagedRecipient(g.Key, g.Sum(x => x.Events), g.Max(x => x.Last)))
            .OrderByDescending(e => e.Events).ThenByDescending(e => e.LastAt).ThenBy(e => e.Address, StringComparer.Ordinal)
            .Take(top).ToList();
        return new TodayActivity(since, humans, machines, topRecipients);
    }

    /// <summary>The user's UTC offset from the event (milliseconds; only with useLocaleFromApp and script.locale), else UTC.</summary>
    static TimeSpan Offset(JsonElement ev)
    {
        if (ev.TryGetProperty("commonEventObject", out var c) && c.ValueKind == JsonValueKind.Object
            && c.TryGetProperty("timeZone", out var tz) && tz.ValueKind == JsonValueKind.Object
            && tz.TryGetProperty("offset", out var o) && o.ValueKind == JsonValueKind.Number && o.TryGetInt64(out var ms)
            && Math.Abs(ms) <= 14 * 3_600_000)
        {
            // DateTimeOffset takes whole minutes.
            return TimeSpan.FromMinutes(ms / 60_000);
        }
        return TimeSpan.Zero;
    }

    /// <summary>Links in cards use the public base URL the deployment was written for, never a proxy's inner host.</summary>
    static CardLinks Links(HttpContext http)
    {
        var o = http.RequestServices.GetRequiredService<IOptionsMonitor<GmailAddonOptions>>().CurrentValue;
        var tracking = http.RequestServices.GetRequiredService<IOptions<TrackingOptions>>().Value;
        var baseUrl = (!string.IsNullOrWhiteSpace(o.PublicBaseUrl) ? o.PublicBaseUrl
            : !string.IsNullOrWhiteSpace(tracking.PublicBaseUrl) ? tracking.PublicBaseUrl
            : $"{http.Request.Scheme}://{http.Request.Host}{http.Request.PathBase}").TrimEnd('/');
        return new CardLinks(baseUrl + HomepagePath, baseUrl + "/", baseUrl + ComposePath);
    }
}
