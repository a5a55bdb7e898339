using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Outlook;
using Microsoft.AspNetCore.Authorization;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Http.Metadata;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.AspNetCore.Mvc.RazorPages.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>
/// Who may call what, for every endpoint and every page handler in the routing table. Each is classified below
/// (<see cref="Rules"/>): one added later and not classified fails <see cref="Every_endpoint_and_page_handler_is_classified"/>.
/// Then, for each: a signed-out caller is refused (401 from the API, the sign-in page otherwise) unless the endpoint is
/// public; a deactivated user's cookie, API token and the Outlook add-in's Microsoft token are refused; a cookie call to the API that changes something
/// without the guard's header is refused; and for each one that acts on an object by id, a user of another team is not
/// told it exists (404, as for an id nobody has) and changes nothing, a member of the same team is refused where only
/// the owner (or an admin) may act, and the owner and, where meant, an admin get through.
/// </summary>
public abstract class AuthorizationSweepTests(OutlookApp app)
{
    const string Password = "Correct-horse-battery-9";

    /// <summary>Who may act.</summary>
    public enum Access
    {
        /// <summary>Anyone, signed in or not (recipients, mail providers, the sign-in pages): listed here on purpose.</summary>
        Public,
        /// <summary>Any signed-in user, on their own things or their team's (no object id).</summary>
        User,
        /// <summary>A team admin, on the team's things (no object id).</summary>
        Admins,
        /// <summary>Only the object's owner; a team admin neither (a mailbox, a token, the sequence that sends from the owner's mailbox).</summary>
        Owner,
        /// <summary>The object's owner or an admin of its team.</summary>
        OwnerOrAdmin,
        /// <summary>Any member of the object's team.</summary>
        Team,
        /// <summary>An admin of the object's team (the team's webhooks, deliveries, members).</summary>
        TeamAdmins,
    }

    /// <param name="Kind">The object the id names (message, content, template, sequence, enrolment, webhook, delivery, token, mailbox, member).</param>
    /// <param name="Field">The handler parameter (query) that carries the id, when not the route's {id}.</param>
    /// <param name="RouteKind">What the route's {id} names when the field names another object (a sequence, for its enrolment).</param>
    /// <param name="Query">More query for the call (a form's other fields).</param>
    /// <param name="Share">The call also names the seeded document's share link by its token (in the route, else as the
    /// form field <c>token</c>).</param>
    public sealed record Rule(Access Access, string? Kind = null, string? Field = null, string? RouteKind = null, string? Query = null, bool Share = false);

    static Rule Public => new(Access.Public);
    static Rule User => new(Access.User);
    static Rule Admins => new(Access.Admins);
    static Rule Owner(string kind, string? field = null, string? query = null) => new(Access.Owner, kind, field, Query: query);
    static Rule OwnerOrAdmin(string kind, string? field = null, string? routeKind = null, string? query = null) => new(Access.OwnerOrAdmin, kind, field, routeKind, query);
    static Rule Team(string kind, string? field = null) => new(Access.Team, kind, field);
    static Rule TeamAdmins(string kind, string? field = null, string? query = null) => new(Access.TeamAdmins, kind, field, Query: query);

    /// <summary>
    /// Every endpoint ("METHOD /route") and page handler ("METHOD /route?handler=Name"), classified. HEAD goes with GET.
    /// </summary>
    public static readonly Dictionary<string, Rule> Rules = new()
    {
        // ---- public: recipients' mail clients and browsers, mail providers' push, the add-ins' own sign-in, health ----
        ["GET /healthz"] = Public,
        ["GET /o/{token}"] = Public,
        ["GET /c/{token}"] = Public,
        ["GET /d/{token}"] = Public,
        ["POST /d/{token}/visits"] = Public,
        ["POST /d/{token}/visits/{visitId:guid}/beats"] = Public,
        ["POST /d/{token}/visits/{visitId:guid}/links"] = Public,
        ["GET /d/{token}/file"] = Public,
        ["GET /d/{token}/download"] = Public,
        // A share link's reader gives their address, or the code mailed to it, before the document shows.
        ["POST /d/{token}/reader"] = Public,
        ["POST /d/{token}/code"] = Public,
        ["GET /u/{token}"] = Public,
        ["POST /u/{token}"] = Public,
        // The Gmail add-on's requests carry Google's signed token, checked by the handler.
        ["POST /gmail/homepage"] = Public,
        ["POST /gmail/message"] = Public,
        ["POST /gmail/compose"] = Public,
        ["POST /hooks/gmail/push"] = Public,
        ["POST /hooks/graph/notifications"] = Public,
        ["POST /hooks/graph/lifecycle"] = Public,
        ["GET /api/outlook/config"] = Public,
        ["GET /login"] = Public,
        ["POST /login"] = Public,
        ["GET /setup"] = Public,
        ["POST /setup"] = Public,
        ["GET /forgot-password"] = Public,
        ["POST /forgot-password"] = Public,
        ["GET /reset-password"] = Public,
        ["POST /reset-password"] = Public,
        // The invitation's own page: its link is the proof, for someone who has no password yet.
        ["GET /accept-invitation"] = Public,
        ["POST /accept-invitation"] = Public,
        ["GET /error"] = Public,

        // ---- accounts ----
        ["GET /api/me"] = User,
        ["PUT /api/me/settings"] = User,
        ["GET /api/me/addresses"] = User,
        ["POST /api/me/addresses"] = User,
        ["POST /api/me/addresses/confirmation"] = User,
        ["GET /api/tokens"] = User,
        ["POST /api/tokens"] = User,
        ["DELETE /api/tokens/{id:guid}"] = Owner("token"),
        ["GET /addresses"] = User,
        ["POST /addresses"] = User,
        ["POST /addresses?handler=Confirm"] = User,
        ["GET /addresses/confirm"] = User,
        ["POST /addresses/confirm"] = User,
        // Removes one of the signed-in user's own linked Microsoft accounts (MicrosoftAccountLinkTests: another user's is a 404).
        ["POST /addresses?handler=RemoveMicrosoft"] = User,
        ["GET /password"] = User,
        ["POST /password"] = User,
        ["GET /logout"] = User,
        ["POST /logout"] = User,
        ["GET /tokens"] = User,
        ["POST /tokens?handler=Settings"] = User,
        ["POST /tokens?handler=Create"] = User,
        ["POST /tokens?handler=Revoke"] = Owner("token", field: "id"),
        ["GET /team"] = Admins,
        ["POST /team?handler=Add"] = Admins,
        ["POST /team?handler=Role"] = TeamAdmins("member", field: "id", query: "Role=Admin"),
        ["POST /team?handler=Invite"] = TeamAdmins("member", field: "id"),
        ["POST /team?handler=Revoke"] = TeamAdmins("member", field: "id"),
        ["POST /team?handler=Deactivate"] = TeamAdmins("member", field: "id"),
        ["POST /team?handler=Reactivate"] = TeamAdmins("member", field: "id"),
        ["POST /team?handler=UnlinkMicrosoft"] = TeamAdmins("member", field: "id"),
        // The same, for scripts with a personal API token (TeamApiTests: the add-in's Microsoft token is refused).
        ["GET /api/team/members"] = Admins,
        ["POST /api/team/members"] = Admins,
        ["PATCH /api/team/members/{id:guid}"] = TeamAdmins("member"),
        ["POST /api/team/members/{id:guid}/deactivate"] = TeamAdmins("member"),
        ["POST /api/team/members/{id:guid}/reactivate"] = TeamAdmins("member"),
        ["POST /api/team/members/{id:guid}/invitation"] = TeamAdmins("member"),
        ["DELETE /api/team/members/{id:guid}/invitation"] = TeamAdmins("member"),
        ["DELETE /api/team/members/{id:guid}/microsoft-accounts"] = TeamAdmins("member"),

        // ---- messages and the activity page ----
        ["POST /api/messages"] = User,
        ["POST /api/messages/send"] = User,
        ["GET /api/messages"] = User,
        ["GET /api/messages/{id:guid}"] = OwnerOrAdmin("message"),
        ["POST /api/messages/{id:guid}/sent"] = OwnerOrAdmin("message"),
        // Sends through the owner's mailbox: theirs only, as the send is.
        ["POST /api/messages/{id:guid}/resend"] = Owner("message"),
        ["GET /"] = User,
        ["GET /?handler=Rows"] = OwnerOrAdmin("message", field: "message", query: "Scope=team"),
        ["GET /messages/{id:guid}"] = OwnerOrAdmin("message"),
        ["POST /messages/{id:guid}?handler=Resend"] = Owner("message"),
        ["GET /compose"] = User,
        ["POST /compose"] = User,
        // Compose offers the team's documents to every member of the team.
        ["POST /compose?handler=Document"] = Team("content", field: "DocumentId"),
        ["GET /api/feed"] = User,

        // ---- content ----
        ["POST /api/content"] = User,
        ["GET /api/content"] = User,
        ["GET /api/content/{id:guid}"] = OwnerOrAdmin("content"),
        ["PATCH /api/content/{id:guid}"] = OwnerOrAdmin("content"),
        ["DELETE /api/content/{id:guid}"] = OwnerOrAdmin("content"),
        ["POST /api/content/{id:guid}/links"] = OwnerOrAdmin("content"),
        ["GET /api/content/{id:guid}/links"] = OwnerOrAdmin("content"),
        ["PATCH /api/content/{id:guid}/links/{token}"] = OwnerOrAdmin("content") with { Share = true },
        ["GET /api/content/{id:guid}/pdf"] = OwnerOrAdmin("content"),
        ["GET /api/content/{id:guid}/thumbnails/{page:int}"] = OwnerOrAdmin("content"),
        ["GET /api/content/{id:guid}/stats"] = OwnerOrAdmin("content"),
        ["GET /documents"] = User,
        ["POST /documents?handler=Upload"] = User,
        ["POST /documents?handler=Link"] = OwnerOrAdmin("content", field: "id"),
        ["POST /documents?handler=Preview"] = OwnerOrAdmin("content", field: "id"),
        ["POST /documents?handler=Downloads"] = OwnerOrAdmin("content", field: "id", query: "allow=false"),
        ["POST /documents?handler=Delete"] = OwnerOrAdmin("content", field: "id"),
        ["GET /documents/{id:guid}"] = OwnerOrAdmin("content"),
        ["POST /documents/{id:guid}?handler=NewLink"] = OwnerOrAdmin("content"),
        ["POST /documents/{id:guid}?handler=UpdateLink"] = OwnerOrAdmin("content", query: "downloads=no") with { Share = true },
        ["POST /documents/{id:guid}?handler=ToggleLink"] = OwnerOrAdmin("content", query: "off=true") with { Share = true },

        // ---- mailboxes ----
        ["GET /api/mailboxes"] = User,
        ["POST /api/mailboxes/imap"] = User,
        ["DELETE /api/mailboxes/{id:guid}"] = Owner("mailbox"),
        ["GET /api/mailboxes/{id:guid}/unreadable"] = Owner("mailbox"),
        ["DELETE /api/mailboxes/{id:guid}/unreadable"] = Owner("mailbox"),
        ["GET /mailboxes/gmail/connect"] = User,
        ["GET /mailboxes/gmail/callback"] = User,
        ["GET /mailboxes/microsoft/connect"] = User,
        ["GET /mailboxes/microsoft/callback"] = User,
        ["GET /mailboxes"] = User,
        ["POST /mailboxes?handler=Connect"] = User,
        ["POST /mailboxes?handler=ClearUnreadable"] = Owner("mailbox", field: "id", query: $"upTo={long.MaxValue}"),
        ["POST /mailboxes?handler=Remove"] = Owner("mailbox", field: "id"),
        ["GET /gmail/link"] = User,
        ["POST /gmail/link"] = User,
        ["GET /outlook/link"] = User,
        ["POST /outlook/link"] = User,
        ["GET /api/outlook/me"] = User,
        ["GET /api/outlook/item"] = User,

        // ---- templates, sequences, enrolments, suppressions ----
        ["GET /api/templates"] = User,
        ["POST /api/templates"] = User,
        ["GET /api/templates/{id:guid}"] = Team("template"),
        ["PUT /api/templates/{id:guid}"] = OwnerOrAdmin("template"),
        ["DELETE /api/templates/{id:guid}"] = OwnerOrAdmin("template"),
        ["POST /api/templates/{id:guid}/preview"] = Team("template"),
        ["GET /api/sequences"] = User,
        ["POST /api/sequences"] = User,
        ["GET /api/sequences/{id:guid}"] = OwnerOrAdmin("sequence"),
        ["PUT /api/sequences/{id:guid}"] = Owner("sequence"),
        ["POST /api/sequences/{id:guid}/pause"] = Owner("sequence"),
        ["POST /api/sequences/{id:guid}/resume"] = Owner("sequence"),
        ["GET /api/sequences/{id:guid}/enrolments"] = OwnerOrAdmin("sequence"),
        ["POST /api/sequences/{id:guid}/enrolments"] = Owner("sequence"),
        ["POST /api/sequences/{id:guid}/enrolments/csv"] = Owner("sequence"),
        ["POST /api/enrolments/{id:guid}/stop"] = OwnerOrAdmin("enrolment"),
        ["GET /api/suppressions"] = User,
        ["POST /api/suppressions"] = User,
        ["GET /templates"] = User,
        ["GET /templates/new"] = User,
        ["POST /templates/new?handler=Save"] = User,
        ["POST /templates/new?handler=Preview"] = User,
        ["POST /templates/new?handler=Delete"] = User,
        ["GET /templates/{id:guid}"] = Team("template"),
        ["POST /templates/{id:guid}?handler=Save"] = OwnerOrAdmin("template", query: "Name=Renamed&Subject=Changed&Html=%3Cp%3EChanged%3C%2Fp%3E"),
        ["POST /templates/{id:guid}?handler=Preview"] = Team("template"),
        ["POST /templates/{id:guid}?handler=Delete"] = OwnerOrAdmin("template"),
        ["GET /sequences"] = User,
        ["GET /sequences/new"] = User,
        ["POST /sequences/new"] = User,
        ["GET /sequences/{id:guid}"] = OwnerOrAdmin("sequence"),
        ["POST /sequences/{id:guid}?handler=Pause"] = Owner("sequence"),
        ["POST /sequences/{id:guid}?handler=Resume"] = Owner("sequence"),
        ["POST /sequences/{id:guid}?handler=Enrol"] = Owner("sequence", query: "Person.Email=kevin%40encom.test"),
        ["POST /sequences/{id:guid}?handler=Csv"] = Owner("sequence"),
        ["POST /sequences/{id:guid}?handler=Stop"] = OwnerOrAdmin("enrolment", field: "enrolment", routeKind: "sequence"),
        ["POST /sequences/{id:guid}?handler=Suppress"] = OwnerOrAdmin("enrolment", field: "enrolment", routeKind: "sequence"),
        ["GET /sequences/{id:guid}/edit"] = Owner("sequence"),
        ["POST /sequences/{id:guid}/edit"] = Owner("sequence", query: "Form.Name=Renamed"),

        // ---- webhooks, the delivery log, Salesforce ----
        ["GET /api/webhooks"] = Admins,
        ["POST /api/webhooks"] = Admins,
        ["PUT /api/webhooks/{id:guid}"] = TeamAdmins("webhook"),
        ["DELETE /api/webhooks/{id:guid}"] = TeamAdmins("webhook"),
        ["POST /api/webhooks/{id:guid}/secret"] = TeamAdmins("webhook"),
        ["GET /api/outbox/deliveries"] = Admins,
        ["POST /api/outbox/deliveries/{id:long}/replay"] = TeamAdmins("delivery"),
        ["POST /api/outbox/replay"] = Admins,
        ["GET /webhooks"] = Admins,
        ["POST /webhooks?handler=Create"] = Admins,
        ["GET /webhooks/{id:guid}"] = TeamAdmins("webhook"),
        ["POST /webhooks/{id:guid}?handler=Save"] = TeamAdmins("webhook", query: "Url=https%3A%2F%2Fhooks.example.com%2Fchanged"),
        ["POST /webhooks/{id:guid}?handler=Rotate"] = TeamAdmins("webhook"),
        ["POST /webhooks/{id:guid}?handler=Delete"] = TeamAdmins("webhook"),
        ["GET /webhooks/deliveries"] = Admins,
        ["POST /webhooks/deliveries?handler=Replay"] = TeamAdmins("delivery", field: "id"),
        ["POST /webhooks/deliveries?handler=ReplayAll"] = Admins,
        ["GET /webhooks/deliveries/{id:long}"] = TeamAdmins("delivery"),
        // Members may see whether Salesforce is connected; only admins change it.
        ["GET /api/salesforce"] = User,
        ["PUT /api/salesforce"] = Admins,
        ["DELETE /api/salesforce"] = Admins,
        ["POST /api/salesforce/connect-jwt"] = Admins,
        // The consent flow checks the admin itself and answers with a redirect to the Salesforce page.
        ["GET /salesforce/connect"] = User,
        ["GET /salesforce/callback"] = User,
        ["GET /salesforce"] = User,
        ["POST /salesforce?handler=Settings"] = Admins,
        ["POST /salesforce?handler=Jwt"] = Admins,
        ["POST /salesforce?handler=Disconnect"] = Admins,
    };

    /// <summary>One way in: an endpoint's method, or a page's handler.</summary>
    public sealed record Entry(string Key, string Method, RouteEndpoint Endpoint, string? Handler, bool IsPage)
    {
        /// <summary>The API's endpoints, which answer 401 rather than sending the browser to sign in.</summary>
        public bool IsApi => Key.Split(' ')[1].StartsWith("/api/", StringComparison.Ordinal);
        /// <summary>Signed in by the API policy: a token, or the cookie with the guard's header when it changes something.</summary>
        public bool TakesToken => Endpoint.Metadata.GetOrderedMetadata<IAuthorizeData>().Any(a => a.Policy == Auth.ApiPolicy);
        /// <summary>Takes a form only (a file upload): it is sent one, not JSON, or routing refuses the content type first.</summary>
        public bool TakesForm => Endpoint.Metadata.GetMetadata<IAcceptsMetadata>() is { ContentTypes: var types } && types.Contains("multipart/form-data");
        public bool ChangesSomething => Method is not ("GET" or "HEAD");
    }

    /// <summary>Every endpoint's methods and every page's handlers, as the routing table and the page loader see them.</summary>
    async Task<List<Entry>> EntriesAsync()
    {
        var loader = app.Services.GetRequiredService<PageLoader>();
        var entries = new List<Entry>();
        foreach (var endpoint in Routes.Endpoints(app))
        {
            var route = "/" + (endpoint.RoutePattern.RawText ?? "").Trim('/');
            if (endpoint.Metadata.GetMetadata<PageActionDescriptor>() is { } page)
            {
                var compiled = await loader.LoadAsync(page, endpoint.Metadata);
                // A page without a GET handler still renders for GET.
                if (!compiled.HandlerMethods.Any(h => h.HttpMethod == "Get")) entries.Add(new Entry($"GET {route}", "GET", endpoint, null, IsPage: true));
                foreach (var handler in compiled.HandlerMethods)
                {
                    // PageModel's own filter methods (OnPageHandlerSelected) look like handlers of a verb PAGE; no request reaches them.
                    if (handler.MethodInfo.GetBaseDefinition().DeclaringType == typeof(PageModel)) continue;
                    var method = handler.HttpMethod.ToUpperInvariant();
                    var key = $"{method} {route}" + (handler.Name is null ? "" : $"?handler={handler.Name}");
                    entries.Add(new Entry(key, method, endpoint, handler.Name, IsPage: true));
                }
                continue;
            }
            foreach (var method in endpoint.Metadata.GetMetadata<HttpMethodMetadata>()?.HttpMethods ?? ["GET"])
            {
                if (method == "HEAD") continue; // answered as GET
                entries.Add(new Entry($"{method} {route}", method, endpoint, null, IsPage: false));
            }
        }
        return entries;
    }

    [Fact]
    public async Task Every_endpoint_and_page_handler_is_classified()
    {
        var entries = await EntriesAsync();
        var keys = entries.Select(e => e.Key).ToHashSet();
        var unclassified = keys.Where(k => !Rules.ContainsKey(k)).Order(StringComparer.Ordinal).ToList();
        var gone = Rules.Keys.Where(k => !keys.Contains(k)).Order(StringComparer.Ordinal).ToList();
        Assert.True(unclassified.Count == 0,
            $"{unclassified.Count} endpoints or page handlers are not classified. Say who may call each in {nameof(AuthorizationSweepTests)}.{nameof(Rules)} " +
            "(Public only for what recipients, providers or signed-out people must reach; an id of an object needs its kind, so the sweep tries it " +
            "as another team, another member and an admin):\n" + string.Join("\n", unclassified));
        Assert.True(gone.Count == 0, $"{nameof(Rules)} names what the server no longer maps; remove it:\n" + string.Join("\n", gone));
    }

    // ---- the people ----

    /// <summary>A user with their API token and a browser signed in as them. The browser sends the cookies it was given
    /// at sign-in with every request, whatever the server answers later (a browser kept open, or a copied cookie).</summary>
    sealed record Person(TestUser User, HttpClient Browser, string Antiforgery);

    async Task<Person> PersonAsync(string team, TeamRole role)
    {
        var user = await app.NewUserAsync(team: team, role: role, password: Password);
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = false });
        var jar = new Dictionary<string, string>();
        using var form = await SendAsync(browser, jar, new HttpRequestMessage(HttpMethod.Get, "/login"));
        using var signIn = await SendAsync(browser, jar, new HttpRequestMessage(HttpMethod.Post, "/login")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["Email"] = user.Email, ["Password"] = Password, ["__RequestVerificationToken"] = Antiforgery(await form.Content.ReadAsStringAsync()),
            }),
        });
        Assert.Equal("/", signIn.Headers.Location?.OriginalString);
        using var page = await SendAsync(browser, jar, new HttpRequestMessage(HttpMethod.Get, "/password"));
        var antiforgery = Antiforgery(await page.Content.ReadAsStringAsync());
        browser.DefaultRequestHeaders.Add("Cookie", string.Join("; ", jar.Select(c => $"{c.Key}={c.Value}")));
        return new Person(user, browser, antiforgery);
    }

    /// <summary>Sends with the cookies in <paramref name="jar"/> and keeps those the answer sets.</summary>
    static async Task<HttpResponseMessage> SendAsync(HttpClient client, Dictionary<string, string> jar, HttpRequestMessage request)
    {
        if (jar.Count > 0) request.Headers.Add("Cookie", string.Join("; ", jar.Select(c => $"{c.Key}={c.Value}")));
        var response = await client.SendAsync(request);
        foreach (var set in response.Headers.TryGetValues("Set-Cookie", out var values) ? values : [])
        {
            var pair = set.Split(';')[0];
            var eq = pair.IndexOf('=');
            jar[pair[..eq]] = pair[(eq + 1)..];
        }
        return response;
    }

    static string Antiforgery(string page)
    {
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.NotEmpty(token);
        return token;
    }

    // ---- the objects ----

    /// <summary>One object of each kind owned by <paramref name="owner"/> (of the team's, for the team's own), by kind.</summary>
    async Task<Dictionary<string, string>> SeedAsync(TestUser owner, string team, bool member = false)
    {
        var now = DateTimeOffset.UtcNow;
        var message = (await owner.RegisterSimpleAsync()).GetProperty("id").GetGuid();
        var mailbox = new MailboxConnection
        {
            TeamId = owner.TeamId, UserId = owner.Id, Kind = MailboxKind.Imap, Address = $"box-{Guid.NewGuid():N}@sender.test", ProtectedSecret = "unused",
            Status = MailboxStatus.Disabled, CreatedAt = now,
        };
        var unreadable = new UnreadableMessage { ConnectionId = mailbox.Id, UserId = owner.Id, ProviderId = $"{Guid.NewGuid():N}", Reason = "unreadable", SeenAt = now };
        var content = new ContentItem
        {
            TeamId = owner.TeamId, UserId = owner.Id, Name = "deck.pdf", FileType = ContentFileType.Pdf, OriginalSha256 = new string('0', 64),
            OriginalSize = 1, PdfSha256 = new string('0', 64), PdfSize = 1, PageCount = 1, CreatedAt = now,
        };
        var share = new ContentLink { Token = $"{Guid.NewGuid():N}", ContentId = content.Id, TeamId = owner.TeamId, UserId = owner.Id, CreatedAt = now };
        var template = new MailTemplate { TeamId = owner.TeamId, UserId = owner.Id, Name = "First", Subject = "Hello", Html = "<p>Hi</p>", CreatedAt = now, UpdatedAt = now };
        var sequence = new Sequence { TeamId = owner.TeamId, UserId = owner.Id, Name = "Outreach", MailboxId = mailbox.Id, TimeZone = "UTC", CreatedAt = now };
        sequence.Steps.Add(new SequenceStep { TemplateId = template.Id });
        var enrolment = new Enrolment
        {
            SequenceId = sequence.Id, TeamId = owner.TeamId, UserId = owner.Id, Address = $"flynn-{Guid.NewGuid():N}@flynnsarcade.test", Domain = "flynnsarcade.test",
            Fields = "{}", TimeZone = "UTC", UnsubscribeToken = $"{Guid.NewGuid():N}", NextAt = now.AddDays(1), CreatedAt = now, UpdatedAt = now,
        };
        var webhook = new WebhookEndpoint { TeamId = owner.TeamId, Url = "https://hooks.example.com/et", ProtectedSecret = "unused", EventTypes = "reply", CreatedAt = now };
        var delivery = new OutboxDelivery
        {
            TeamId = owner.TeamId, TargetKind = "webhook", TargetId = webhook.Id, EventType = "reply", IdempotencyKey = $"{Guid.NewGuid():N}", Payload = "{}",
            State = DeliveryState.Dead, CreatedAt = now, NextAttemptAt = now,
        };
        await app.WithDbAsync(async db =>
        {
            db.AddRange(mailbox, unreadable, content, share, template, sequence, enrolment, webhook, delivery);
            if (!await db.SalesforceConnections.AnyAsync(c => c.TeamId == owner.TeamId))
            {
                db.Add(new SalesforceConnection
                {
                    TeamId = owner.TeamId, ConnectedByUserId = owner.Id, InstanceUrl = "https://encom.my.salesforce.test", ProtectedSecret = "unused",
                    AuthKind = SalesforceAuthKind.WebServer, CreatedAt = now,
                });
            }
            await db.SaveChangesAsync();
        });
        // A token of its own to revoke (the owner's client goes on with the one it has).
        // The document's PDF and first page's thumbnail, for the previews to show.
        var store = app.Services.GetRequiredService<ContentStore>();
        if (!store.Exists(content.PdfSha256))
        {
            Directory.CreateDirectory(Path.GetDirectoryName(store.ObjectPath(content.PdfSha256))!);
            await File.WriteAllTextAsync(store.ObjectPath(content.PdfSha256), "%PDF-1.4\n%%EOF\n");
        }
        if (store.ThumbnailPath(content.PdfSha256, 1) is null)
        {
            var thumbnails = Directory.CreateTempSubdirectory("et-thumbs-").FullName;
            await File.WriteAllBytesAsync(Path.Combine(thumbnails, "1.png"), [0x89, (byte)'P', (byte)'N', (byte)'G']);
            store.AddThumbnails(content.PdfSha256, thumbnails);
        }
        var token = new ApiToken { UserId = owner.Id, Name = "seeded", Prefix = "et_seeded", Hash = Guid.NewGuid().ToByteArray(), CreatedAt = now };
        await app.WithDbAsync(db =>
        {
            db.Add(token);
            return db.SaveChangesAsync();
        });
        var ids = new Dictionary<string, string>
        {
            ["message"] = $"{message}", ["mailbox"] = $"{mailbox.Id}", ["content"] = $"{content.Id}", ["template"] = $"{template.Id}",
            ["sequence"] = $"{sequence.Id}", ["enrolment"] = $"{enrolment.Id}", ["webhook"] = $"{webhook.Id}", ["delivery"] = $"{delivery.Id}",
            ["token"] = $"{token.Id}", ["share"] = share.Token,
        };
        if (member) ids["member"] = $"{(await app.NewUserAsync(team: team)).Id}";
        return ids;
    }

    /// <summary>Ids nobody has, of each kind.</summary>
    static readonly Dictionary<string, string> Nobodys = new()
    {
        ["message"] = $"{Guid.NewGuid()}", ["mailbox"] = $"{Guid.NewGuid()}", ["content"] = $"{Guid.NewGuid()}", ["template"] = $"{Guid.NewGuid()}",
        ["sequence"] = $"{Guid.NewGuid()}", ["enrolment"] = $"{Guid.NewGuid()}", ["webhook"] = $"{Guid.NewGuid()}", ["delivery"] = "987654321",
        ["token"] = $"{Guid.NewGuid()}", ["member"] = $"{Guid.NewGuid()}", ["share"] = $"{Guid.NewGuid():N}",
    };

    /// <summary>Everything a call could change of one team's, as text to compare.</summary>
    string Snapshot(Guid team) => app.WithDb(db => string.Join("\n", new IEnumerable<string>[]
    {
        db.Messages.AsNoTracking().Where(x => x.TeamId == team).Select(m => $"message {m.Id} {m.Subject} {m.SentAt}").AsEnumerable(),
        db.Mailboxes.AsNoTracking().Where(x => x.TeamId == team).Select(m => $"mailbox {m.Id} {m.Status} {m.Address}").AsEnumerable(),
        db.UnreadableMessages.AsNoTracking().Where(u => db.Mailboxes.Any(m => m.Id == u.ConnectionId && m.TeamId == team)).Select(u => $"unreadable {u.Id}").AsEnumerable(),
        db.Contents.AsNoTracking().Where(x => x.TeamId == team).Select(c => $"content {c.Id} {c.Name} {c.AllowDownload} {c.DeletedAt}").AsEnumerable(),
        db.ContentLinks.AsNoTracking().Where(x => x.TeamId == team).Select(l => $"link {l.Id} {l.ExpiresAt} {l.DisabledAt} {l.AllowDownload} {l.EmailGate}").AsEnumerable(),
        db.Templates.AsNoTracking().Where(x => x.TeamId == team).Select(t => $"template {t.Id} {t.Name} {t.Subject} {t.Html}").AsEnumerable(),
        db.Sequences.AsNoTracking().Where(x => x.TeamId == team).Select(s => $"sequence {s.Id} {s.Name} {s.Status} {s.MailboxId}").AsEnumerable(),
        db.Enrolments.AsNoTracking().Where(x => x.TeamId == team).Select(e => $"enrolment {e.Id} {e.State} {e.StopReason}").AsEnumerable(),
        db.Suppressions.AsNoTracking().Where(x => x.TeamId == team).Select(s => $"suppression {s.Address}").AsEnumerable(),
        db.Webhooks.AsNoTracking().Where(x => x.TeamId == team).Select(w => $"webhook {w.Id} {w.Url} {w.ProtectedSecret} {w.Enabled}").AsEnumerable(),
        db.OutboxDeliveries.AsNoTracking().Where(x => x.TeamId == team).Select(d => $"delivery {d.Id} {d.State} {d.Attempts}").AsEnumerable(),
        db.SalesforceConnections.AsNoTracking().Where(x => x.TeamId == team).Select(c => $"salesforce {c.Id} {c.Status} {c.LogOpens} {c.LogSent}").AsEnumerable(),
        db.Users.AsNoTracking().Where(x => x.TeamId == team).Select(u => $"user {u.Id} {u.Role} {u.LockoutEnd} {u.PasswordHash}").AsEnumerable(),
        db.ApiTokens.AsNoTracking().Where(x => x.User!.TeamId == team).Select(t => $"token {t.Id} {t.RevokedAt}").AsEnumerable(),
    }.SelectMany(x => x).Order(StringComparer.Ordinal)));

    static string Changes(string before, string after) =>
        string.Join("; ", after.Split('\n').Except(before.Split('\n')).Select(l => "now " + l).Concat(before.Split('\n').Except(after.Split('\n')).Select(l => "was " + l)));

    // ---- the calls ----

    enum Credential { None, Token, AddinToken, Cookie, CookieWithoutGuard }

    /// <summary>The path of <paramref name="entry"/> with ids from <paramref name="ids"/>, and the rule's query.</summary>
    static string PathFor(Entry entry, Rule rule, IReadOnlyDictionary<string, string> ids)
    {
        var routeKind = rule.RouteKind ?? rule.Kind;
        var path = Routes.Path(entry.Endpoint.RoutePattern, p => p.Name == "id" && routeKind is not null ? ids[routeKind] : p.Name == "token" ? (rule.Share ? ids["share"] : "none") : p.Name == "visitId" ? $"{Guid.NewGuid()}" : "1");
        var query = new List<string>();
        if (entry.Handler is not null) query.Add($"handler={entry.Handler}");
        if (rule.Field is not null) query.Add($"{rule.Field}={ids[rule.Kind!]}");
        if (rule.Share && !entry.Endpoint.RoutePattern.Parameters.Any(p => p.Name == "token")) query.Add($"token={ids["share"]}");
        if (rule.Query is not null) query.Add(rule.Query);
        return query.Count == 0 ? path : path + "?" + string.Join('&', query);
    }

    async Task<HttpResponseMessage> CallAsync(Entry entry, string path, Person? who, Credential credential)
    {
        using var request = new HttpRequestMessage(new HttpMethod(entry.Method), path);
        HttpClient client;
        switch (credential)
        {
            case Credential.None:
                client = app.Anonymous(userAgent: null);
                break;
            case Credential.Token when entry.TakesToken:
                client = who!.User.Client;
                break;
            case Credential.AddinToken when entry.TakesToken:
                client = app.AsMicrosoftUser(who!.User.Email);
                break;
            default:
                client = who!.Browser;
                if (credential != Credential.CookieWithoutGuard && entry.TakesToken) request.Headers.Add(CookieApiGuard.Header, "1");
                break;
        }
        if (entry.ChangesSomething)
        {
            if (entry.IsPage || entry.TakesForm)
            {
                var fields = new Dictionary<string, string>();
                if (credential == Credential.Cookie && who is not null && entry.IsPage) fields["__RequestVerificationToken"] = who.Antiforgery;
                request.Content = entry.IsPage ? new FormUrlEncodedContent(fields) : new MultipartFormDataContent();
            }
            else
            {
                request.Content = new StringContent("{}", Encoding.UTF8, "application/json");
            }
        }
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(20));
        // Headers only: a feed that lets the caller in streams until it is closed.
        return await client.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
    }

    static bool ToSignIn(HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Redirect && response.Headers.Location?.OriginalString is { } to
        && (to.StartsWith("/login", StringComparison.Ordinal) || to.StartsWith("http://localhost/login", StringComparison.Ordinal));

    /// <summary>Turned away as signed out: 401 from the API, the sign-in page from the rest.</summary>
    static bool SignedOut(Entry entry, HttpResponseMessage response) =>
        response.StatusCode == HttpStatusCode.Unauthorized || (!entry.IsApi && ToSignIn(response));

    static string Describe(HttpResponseMessage response) =>
        $"{(int)response.StatusCode}{(response.Headers.Location is { } to ? " to " + to.OriginalString : "")}";

    sealed record World(string TeamA, Person Owner, Person Member, Person Admin, Person StrangerMember, Person StrangerAdmin);

    async Task<World> WorldAsync()
    {
        var a = $"authz-a-{Guid.NewGuid():N}";
        var b = $"authz-b-{Guid.NewGuid():N}";
        // The first user of a team is its admin.
        var admin = await PersonAsync(a, TeamRole.Admin);
        var owner = await PersonAsync(a, TeamRole.Member);
        var member = await PersonAsync(a, TeamRole.Member);
        var strangerAdmin = await PersonAsync(b, TeamRole.Admin);
        var strangerMember = await PersonAsync(b, TeamRole.Member);
        Assert.Equal(owner.User.TeamId, admin.User.TeamId);
        Assert.NotEqual(owner.User.TeamId, strangerAdmin.User.TeamId);
        // Team B has objects of its own too, so that a lookup which forgets the team would find something.
        await SeedAsync(strangerMember.User, b);
        return new World(a, owner, member, admin, strangerMember, strangerAdmin);
    }

    [Fact]
    public async Task Signed_out_callers_are_refused_everywhere_but_the_public_endpoints()
    {
        var world = await WorldAsync();
        var ids = await SeedAsync(world.Owner.User, world.TeamA, member: true);
        var before = Snapshot(world.Owner.User.TeamId);
        var problems = new List<string>();
        foreach (var entry in await EntriesAsync())
        {
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Access == Access.Public) continue;
            using var response = await CallAsync(entry, PathFor(entry, rule, ids), null, Credential.None);
            if (!SignedOut(entry, response)) problems.Add($"{entry.Key}: {Describe(response)}");
        }
        Assert.True(problems.Count == 0, $"Signed out, these answered:\n" + string.Join("\n", problems));
        Assert.Equal(before, Snapshot(world.Owner.User.TeamId));
    }

    [Fact]
    public async Task A_deactivated_users_cookie_api_token_and_addin_token_are_refused_everywhere()
    {
        var world = await WorldAsync();
        var gone = await PersonAsync(world.TeamA, TeamRole.Admin);
        var ids = await SeedAsync(gone.User, world.TeamA, member: true);
        // Their cookie, tokens and antiforgery token worked a moment ago.
        Assert.Equal(HttpStatusCode.OK, (await gone.User.Client.GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.AsMicrosoftUser(gone.User.Email).GetAsync("/api/me")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await gone.Browser.GetAsync("/tokens")).StatusCode);
        using (var scope = app.Services.CreateScope())
        {
            var admin = new CurrentUser(world.Admin.User.Id, world.Admin.User.TeamId, TeamRole.Admin, world.Admin.User.Email);
            await scope.ServiceProvider.GetRequiredService<TeamMembers>().DeactivateAsync(admin, gone.User.Id);
        }
        var before = Snapshot(world.Owner.User.TeamId);
        var problems = new List<string>();
        foreach (var entry in await EntriesAsync())
        {
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Access == Access.Public) continue;
            var path = PathFor(entry, rule, ids);
            foreach (var credential in new[] { Credential.Cookie, Credential.Token, Credential.AddinToken })
            {
                if (credential != Credential.Cookie && !entry.TakesToken) continue; // the web app's pages take no token
                using var response = await CallAsync(entry, path, gone, credential);
                // The add-in's token is Microsoft's and still valid: it is refused with a 403 whose reason the pane shows.
                var refused = credential == Credential.AddinToken
                    ? response.StatusCode == HttpStatusCode.Forbidden && (await response.Content.ReadAsStringAsync()).Contains("\"reason\":\"locked\"", StringComparison.Ordinal)
                    : SignedOut(entry, response);
                if (!refused) problems.Add($"{entry.Key} with the {credential}: {Describe(response)}");
            }
        }
        Assert.True(problems.Count == 0, $"A deactivated user was let in:\n" + string.Join("\n", problems));
        Assert.Equal(before, Snapshot(world.Owner.User.TeamId));
    }

    [Fact]
    public async Task A_cookie_call_that_changes_something_without_the_guard_is_refused_and_changes_nothing()
    {
        var world = await WorldAsync();
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var entry in await EntriesAsync())
        {
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Access == Access.Public || !entry.ChangesSomething) continue;
            // As the one who could do it: the owner for their own things, an admin for the rest.
            var who = rule.Access is Access.Owner ? world.Owner : world.Admin;
            var ids = await SeedAsync(world.Owner.User, world.TeamA, member: rule.Kind == "member");
            var before = Snapshot(world.Owner.User.TeamId);
            using var response = await CallAsync(entry, PathFor(entry, rule, ids), who, Credential.CookieWithoutGuard);
            checkedCount++;
            // The API's guard answers 403 with its problem; a page's form without its antiforgery token is a 400.
            var refused = entry.TakesToken
                ? response.StatusCode == HttpStatusCode.Forbidden && (await response.Content.ReadAsStringAsync()).Contains("Cross-site request refused.", StringComparison.Ordinal)
                : response.StatusCode == HttpStatusCode.BadRequest;
            if (!refused) problems.Add($"{entry.Key}: {Describe(response)}");
            else if (Snapshot(world.Owner.User.TeamId) is var after && after != before) problems.Add($"{entry.Key}: refused, but it changed {Changes(before, after)}");
        }
        Assert.True(checkedCount > 60, $"only {checkedCount} calls that change something");
        Assert.True(problems.Count == 0, $"Without the header (API) or the antiforgery token (pages):\n" + string.Join("\n", problems));
    }

    /// <summary>Refused: the API says 403 or 404, a page too, or (a form) shows itself again or goes back, having changed nothing.</summary>
    static bool Refused(Entry entry, HttpResponseMessage response) =>
        response.StatusCode is HttpStatusCode.NotFound or HttpStatusCode.Forbidden
        || (entry.IsPage && entry.ChangesSomething && response.StatusCode is HttpStatusCode.OK or HttpStatusCode.Redirect);

    /// <summary>Let through: past the checks of who may act (a 400 about the request's content is past them).</summary>
    static bool LetThrough(HttpResponseMessage response) =>
        response.StatusCode is not (HttpStatusCode.Unauthorized or HttpStatusCode.Forbidden or HttpStatusCode.NotFound) && !ToSignIn(response);

    [Fact]
    public async Task Another_team_is_not_told_an_object_exists_and_changes_nothing()
    {
        var world = await WorldAsync();
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var entry in await EntriesAsync())
        {
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Kind is null) continue;
            foreach (var stranger in new[] { world.StrangerAdmin, world.StrangerMember })
            {
                var ids = await SeedAsync(world.Owner.User, world.TeamA, member: rule.Kind == "member");
                var before = Snapshot(world.Owner.User.TeamId);
                var credential = entry.TakesToken ? Credential.Token : Credential.Cookie;
                using var theirs = await CallAsync(entry, PathFor(entry, rule, ids), stranger, credential);
                using var nobodys = await CallAsync(entry, PathFor(entry, rule, Nobodys), stranger, credential);
                checkedCount++;
                var who = stranger == world.StrangerAdmin ? "another team's admin" : "another team's member";
                // The convention: another team's object is not found, as one that does not exist; a member asking for
                // what only admins see is told so whatever the id.
                var expected = !entry.IsPage || !entry.ChangesSomething
                    ? stranger == world.StrangerMember && rule.Access is Access.TeamAdmins ? HttpStatusCode.Forbidden : HttpStatusCode.NotFound
                    : nobodys.StatusCode;
                if (theirs.StatusCode != expected || theirs.StatusCode != nobodys.StatusCode)
                    problems.Add($"{entry.Key} by {who}: {Describe(theirs)} (an id nobody has: {Describe(nobodys)})");
                if (Snapshot(world.Owner.User.TeamId) is var after && after != before)
                    problems.Add($"{entry.Key} by {who}: changed team A's things: {Changes(before, after)}");
            }
        }
        Assert.True(checkedCount > 60, $"only {checkedCount} calls with an id");
        Assert.True(problems.Count == 0, $"{problems.Count} problems in {checkedCount} calls:\n" + string.Join("\n", problems));
    }

    [Fact]
    public async Task In_a_team_only_the_owner_or_an_admin_acts_where_the_code_says_so()
    {
        var world = await WorldAsync();
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var entry in await EntriesAsync())
        {
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Access is Access.Public or Access.User) continue;
            var credential = entry.TakesToken ? Credential.Token : Credential.Cookie;
            foreach (var (who, name) in new[] { (world.Owner, "the owner (a member)"), (world.Member, "another member"), (world.Admin, "an admin") })
            {
                var allowed = rule.Access switch
                {
                    Access.Admins or Access.TeamAdmins => who == world.Admin,
                    Access.Owner => who == world.Owner,
                    Access.OwnerOrAdmin => who != world.Member,
                    Access.Team => true,
                    _ => throw new InvalidOperationException(),
                };
                var ids = await SeedAsync(world.Owner.User, world.TeamA, member: rule.Kind == "member");
                var before = Snapshot(world.Owner.User.TeamId);
                using var response = await CallAsync(entry, PathFor(entry, rule, ids), who, credential);
                checkedCount++;
                if (allowed && !LetThrough(response)) problems.Add($"{entry.Key} by {name}: refused ({Describe(response)}), but should be let through");
                if (!allowed && !Refused(entry, response)) problems.Add($"{entry.Key} by {name}: {Describe(response)}, but should be refused");
                if (!allowed && Snapshot(world.Owner.User.TeamId) is var after && after != before)
                    problems.Add($"{entry.Key} by {name}: refused, yet it changed {Changes(before, after)}");
            }
        }
        Assert.True(checkedCount > 150, $"only {checkedCount} calls");
        Assert.True(problems.Count == 0, $"{problems.Count} problems in {checkedCount} calls:\n" + string.Join("\n", problems));
    }

    /// <summary>
    /// A member signed in to the web app who posts an admins' form is told so on the page (403), as the Team and Webhooks
    /// pages do, not sent to the sign-in page as if signed out (what an authorization Forbid does with the cookie).
    /// </summary>
    [Fact]
    public async Task A_member_posting_an_admins_form_is_told_it_is_for_admins_not_sent_to_sign_in()
    {
        var world = await WorldAsync();
        var problems = new List<string>();
        var checkedCount = 0;
        foreach (var entry in await EntriesAsync())
        {
            if (!entry.IsPage || !entry.ChangesSomething) continue;
            if (!Rules.TryGetValue(entry.Key, out var rule) || rule.Access is not (Access.Admins or Access.TeamAdmins)) continue;
            var ids = await SeedAsync(world.Owner.User, world.TeamA, member: rule.Kind == "member");
            using var response = await CallAsync(entry, PathFor(entry, rule, ids), world.Member, Credential.Cookie);
            checkedCount++;
            if (ToSignIn(response) || response.StatusCode != HttpStatusCode.Forbidden)
                problems.Add($"{entry.Key} by a member: {Describe(response)}, but should be the page's 403");
        }
        Assert.True(checkedCount >= 3, $"only {checkedCount} calls");
        Assert.True(problems.Count == 0, $"{problems.Count} problems in {checkedCount} calls:\n" + string.Join("\n", problems));
    }
}

/// <summary>
/// With the Outlook add-in's Microsoft sign-in (a test issuer), and no background work (outbox, sequences, mailbox
/// watches): what changes in the database is what the calls changed.
/// </summary>
public sealed class AuthorizationSweepSqliteApp() : OutlookApp(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        BadInputSweepTests.Isolate(builder);
    }
}

public sealed class AuthorizationSweepPostgresApp() : OutlookApp(DatabaseProvider.Postgres)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        BadInputSweepTests.Isolate(builder);
    }
}

public sealed class AuthorizationSweepOnSqlite(AuthorizationSweepSqliteApp app) : AuthorizationSweepTests(app), IClassFixture<AuthorizationSweepSqliteApp>;

public sealed class AuthorizationSweepOnPostgres(AuthorizationSweepPostgresApp app) : AuthorizationSweepTests(app), IClassFixture<AuthorizationSweepPostgresApp>;
