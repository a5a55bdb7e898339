using System.Net;
using System.Net.Http.Headers;
using System.Net.Http.Json;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using EmailTracking.Server.Gmail;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.Routing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Gmail;

/// <summary>The server with the Gmail add-on configured against <see cref="FakeGoogle"/>'s signing key.</summary>
public abstract class GmailAddonApp(DatabaseProvider provider) : AppFactory(provider)
{
    public const string BaseUrl = "https://et.test";
    public const string ServiceAccount = "service-123456789@gcp-sa-gsuiteaddons.iam.gserviceaccount.com";
    public const string OAuthClientId = "987654-addon.apps.googleusercontent.com";

    public FakeGoogle Google { get; } = FakeGoogle.Start();

    protected override void ConfigureWebHost(IWebHostBuilder builder)
    {
        base.ConfigureWebHost(builder);
        builder.UseSetting("GmailAddon:PublicBaseUrl", BaseUrl);
        builder.UseSetting("GmailAddon:Audiences:0", BaseUrl + GmailAddonApi.HomepagePath);
        builder.UseSetting("GmailAddon:Audiences:1", BaseUrl + GmailAddonApi.MessagePath);
        builder.UseSetting("GmailAddon:Audiences:2", BaseUrl + GmailAddonApi.ComposePath);
        builder.UseSetting("GmailAddon:ServiceAccountEmail", ServiceAccount);
        builder.UseSetting("GmailAddon:OAuthClientId", OAuthClientId);
        builder.UseSetting("GmailAddon:CertsUrl", Google.CertsUrl);
        // The add-on reads the headers of the message the user has open from the Gmail API: the fake's.
        builder.UseSetting("Mailboxes:Gmail:ApiBaseUri", Google.ApiBaseUri);
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Google.DisposeAsync().AsTask().GetAwaiter().GetResult();
    }
}

public sealed class GmailAddonSqliteApp() : GmailAddonApp(DatabaseProvider.Sqlite);

public sealed class GmailAddonPostgresApp() : GmailAddonApp(DatabaseProvider.Postgres);

/// <summary>
/// The add-on's HTTP endpoints as Gmail calls them: event objects with Google-signed system and user ID tokens, and
/// the cards they answer.
/// </summary>
public abstract class GmailAddonTests(GmailAddonApp app)
{
    FakeGoogle Google => app.Google;

    string SystemToken(string audience = GmailAddonApp.BaseUrl + GmailAddonApi.HomepagePath, string email = GmailAddonApp.ServiceAccount,
        string issuer = "https://accounts.google.com", DateTimeOffset? expires = null, RSA? key = null, bool emailVerified = true) =>
        Google.SignIdToken(audience, email, emailVerified, issuer, expires, key);

    string UserToken(string email, string audience = GmailAddonApp.OAuthClientId) => Google.SignIdToken(audience, email);

    static string Event(string? userIdToken, Dictionary<string, string>? parameters = null, long offsetMs = 0)
    {
        var common = new JsonObject
        {
            ["hostApp"] = "GMAIL", ["platform"] = "WEB", ["userLocale"] = "en-US",
            ["timeZone"] = new JsonObject { ["id"] = "Etc/Test", ["offset"] = offsetMs },
        };
        if (parameters is not null)
        {
            var p = new JsonObject();
            foreach (var (k, v) in parameters) p[k] = v;
            common["parameters"] = p;
        }
        var auth = new JsonObject { ["userOAuthToken"] = "ya29.fake", ["systemIdToken"] = "ignored-here", ["authorizedScopes"] = new JsonArray() };
        if (userIdToken is not null) auth["userIdToken"] = userIdToken;
        return new JsonObject { ["commonEventObject"] = common, ["authorizationEventObject"] = auth }.ToJsonString();
    }

    async Task<HttpResponseMessage> PostAsync(string path, string? systemToken, string body)
    {
        using var client = app.Anonymous(null);
        var request = new HttpRequestMessage(HttpMethod.Post, path) { Content = new StringContent(body, Encoding.UTF8, "application/json") };
        if (systemToken is not null) request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", systemToken);
        return await client.SendAsync(request);
    }

    async Task<JsonNode> CardAsync(string path, string userEmail, Dictionary<string, string>? parameters = null)
    {
        var audience = GmailAddonApp.BaseUrl + path;
        var response = await PostAsync(path, SystemToken(audience), Event(UserToken(userEmail), parameters));
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        Assert.Equal("application/json", response.Content.Headers.ContentType?.MediaType);
        return JsonNode.Parse(text)!;
    }

    static JsonNode PushedCard(JsonNode response) => response["action"]!["navigations"]![0]!["pushCard"]!;
    static JsonNode UpdatedCard(JsonNode response) => response["renderActions"]!["action"]!["navigations"]![0]!["updateCard"]!;

    static IEnumerable<JsonNode> Widgets(JsonNode card) => card["sections"]!.AsArray().SelectMany(s => s!["widgets"]!.AsArray()).Select(w => w!);

    static string? Labelled(JsonNode card, string topLabel) =>
        Widgets(card).Select(w => w["decoratedText"]).FirstOrDefault(d => d?["topLabel"]?.GetValue<string>() == topLabel)?["text"]?.GetValue<string>();

    static List<JsonNode> Buttons(JsonNode card) =>
        Widgets(card).Where(w => w["buttonList"] is not null).SelectMany(w => w["buttonList"]!["buttons"]!.AsArray()).Select(b => b!).ToList();

    int EventCount() => app.WithDb(db => db.Events.Count());

    // ---- request verification ----

    [Fact]
    public async Task A_request_without_a_valid_system_token_is_refused_and_changes_nothing()
    {
        var user = await app.NewUserAsync();
        var body = Event(UserToken(user.Email));
        var path = GmailAddonApi.HomepagePath;
        var aud = GmailAddonApp.BaseUrl + path;
        using var otherKey = RSA.Create(2048);
        var valid = SystemToken(aud);
        var parts = valid.Split('.');
        var claims = JsonNode.Parse(Convert.FromBase64String(parts[1].Replace('-', '+').Replace('_', '/').PadRight((parts[1].Length + 3) / 4 * 4, '=')))!;
        claims["email"] = "attacker@evil.test";
        var tampered = parts[0] + "." + FakeGoogle.B64(Encoding.UTF8.GetBytes(claims.ToJsonString())) + "." + parts[2];
        var unsigned = FakeGoogle.B64(Encoding.UTF8.GetBytes("{\"alg\":\"none\",\"typ\":\"JWT\"}")) + "." + parts[1] + ".";

        var before = EventCount();
        var refused = new Dictionary<string, string?>
        {
            ["missing"] = null,
            ["not a JWT"] = "not-a-token",
            ["wrong signature"] = SystemToken(aud, key: otherKey),
            ["tampered"] = tampered,
            ["unsigned"] = unsigned,
            ["wrong issuer"] = SystemToken(aud, issuer: "https://evil.test"),
            ["wrong audience"] = SystemToken("https://other.test/gmail/homepage"),
            ["another deployment's service account"] = SystemToken(aud, email: "service-999@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"),
            ["unverified email"] = SystemToken(aud, emailVerified: false),
            ["expired"] = SystemToken(aud, expires: DateTimeOffset.UtcNow.AddMinutes(-10)),
            ["the user token in its place"] = UserToken(user.Email),
        };
        foreach (var (what, token) in refused)
        {
            foreach (var p in new[] { GmailAddonApi.HomepagePath, GmailAddonApi.MessagePath, GmailAddonApi.ComposePath })
            {
                var response = await PostAsync(p, token, body);
                Assert.True(response.StatusCode == HttpStatusCode.Unauthorized, $"{what} on {p}: {response.StatusCode}");
            }
        }
        Assert.Equal(before, EventCount());

        // The same request with a good token is served.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(path, valid, body)).StatusCode);
    }

    [Fact]
    public async Task A_user_token_that_is_not_valid_for_our_client_is_refused()
    {
        var user = await app.NewUserAsync();
        var path = GmailAddonApi.HomepagePath;
        var system = SystemToken(GmailAddonApp.BaseUrl + path);
        using var otherKey = RSA.Create(2048);
        foreach (var token in new[]
                 {
                     UserToken(user.Email, audience: "another-client.apps.googleusercontent.com"),
                     Google.SignIdToken(GmailAddonApp.OAuthClientId, user.Email, key: otherKey),
                     Google.SignIdToken(GmailAddonApp.OAuthClientId, user.Email, emailVerified: false),
                     Google.SignIdToken(GmailAddonApp.OAuthClientId, user.Email, expires: DateTimeOffset.UtcNow.AddMinutes(-10)),
                     "garbage",
                 })
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await PostAsync(path, system, Event(token))).StatusCode);
        }

        // No user token at all: the user did not grant userinfo.email; Google is asked to ask for it again.
        var missing = await PostAsync(path, system, Event(null));
        Assert.Equal(HttpStatusCode.OK, missing.StatusCode);
        var json = JsonNode.Parse(await missing.Content.ReadAsStringAsync())!;
        Assert.Equal("https://www.googleapis.com/auth/userinfo.email", json["requesting_google_scopes"]!["scopes"]![0]!.GetValue<string>());

        // A body that is not an event object: a 400, never a 500.
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(path, system, "{not json")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PostAsync(path, system, "[1,2]")).StatusCode);
    }

    [Fact]
    public async Task A_scope_the_user_unticked_is_asked_for_again_before_anything_is_done()
    {
        var user = await app.NewUserAsync();
        const string execute = "https://www.googleapis.com/auth/gmail.addons.execute", email = "https://www.googleapis.com/auth/userinfo.email",
            metadata = "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
            compose = "https://www.googleapis.com/auth/gmail.addons.current.action.compose";
        string With(string body, params string[] granted)
        {
            var ev = JsonNode.Parse(body)!;
            ev["authorizationEventObject"]!["authorizedScopes"] = new JsonArray([.. granted.Select(g => (JsonNode)g)]);
            return ev.ToJsonString();
        }
        async Task<JsonNode> Call(string path, string body)
        {
            var res = await PostAsync(path, SystemToken(GmailAddonApp.BaseUrl + path), body);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            return JsonNode.Parse(await res.Content.ReadAsStringAsync())!;
        }
        static List<string> Asked(JsonNode answer) => [.. answer["requesting_google_scopes"]!["scopes"]!.AsArray().Select(x => x!.GetValue<string>())];

        // Compose without the compose scope: asked for it; the draft is not tracked.
        var track = ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: "x", track: true);
        Assert.Equal([compose], Asked(await Call(GmailAddonApi.ComposePath, With(track, execute, email, metadata))));
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
        // An opened message without the metadata scope: asked for it.
        Assert.Equal([metadata], Asked(await Call(GmailAddonApi.MessagePath, With(MessageEvent(UserToken(user.Email), "thread-f:1"), execute, email, compose))));
        // The homepage needs neither.
        Assert.NotNull(PushedCard(await Call(GmailAddonApi.HomepagePath, With(Event(UserToken(user.Email)), execute, email))));
        // All granted: tracked.
        Assert.NotNull((await Call(GmailAddonApi.ComposePath, With(track, execute, email, metadata, compose)))["renderActions"]!["hostAppAction"]);
        Assert.Equal(1, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
    }

    [Fact]
    public async Task Event_fields_of_the_wrong_shape_get_a_card_never_a_server_error()
    {
        var user = await app.NewUserAsync();
        var token = UserToken(user.Email);
        var odd = new[]
        {
            """{"gmail":"x"}""", """{"gmail":{"threadId":5,"messageId":[1],"accessToken":{}}}""", """{"gmail":{"threadId":"thread-f:99999999999999999999999"}}""",
            """{"gmail":{"threadId":"../../etc","toRecipients":"sam@encom.test"}}""", """{"gmail":{"toRecipients":[1,null,{"a":1},"sam@encom.test"]}}""",
            """{"commonEventObject":7}""", """{"commonEventObject":{"parameters":["track"],"formInputs":"x","timeZone":{"offset":"x"}}}""",
            """{"commonEventObject":{"parameters":{"action":"track","message":7},"timeZone":{"offset":1e300}}}""",
            """{"commonEventObject":{"parameters":{"action":"insert-content","message":"6f1c9a52-3b7e-4d0a-9c21-5e8f00b1d2a4"},"formInputs":{"documents":{"stringInputs":{"value":[3,"x"]}}}},"gmail":{"toRecipients":["sam@encom.test"]}}""",
        };
        foreach (var extra in odd)
        {
            foreach (var path in new[] { GmailAddonApi.HomepagePath, GmailAddonApi.MessagePath, GmailAddonApi.ComposePath })
            {
                var ev = JsonNode.Parse(Event(token))!.AsObject();
                foreach (var (k, v) in JsonNode.Parse(extra)!.AsObject()) ev[k] = v?.DeepClone();
                ev["authorizationEventObject"] ??= new JsonObject();
                if (ev["authorizationEventObject"] is JsonObject auth) auth["userIdToken"] = token;
                var res = await PostAsync(path, SystemToken(GmailAddonApp.BaseUrl + path), ev.ToJsonString());
                var text = await res.Content.ReadAsStringAsync();
                Assert.True(res.StatusCode == HttpStatusCode.OK, $"{path} with {extra}: {(int)res.StatusCode} {text}");
                Assert.True(text.Contains("pushCard") || text.Contains("updateCard") || text.Contains("notification") || text.Contains("hostAppAction"), $"{path} with {extra}: {text}");
            }
        }
    }

    // ---- cards ----

    [Fact]
    public async Task A_deactivated_user_gets_a_card_that_says_so_and_none_of_their_mail_until_reactivated()
    {
        var user = await app.NewUserAsync();
        await user.RegisterSimpleAsync();
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, (DateTimeOffset?)Server.Accounts.TeamMembers.DeactivatedUntil)));
        foreach (var parameters in new[] { null, new Dictionary<string, string> { [GmailCards.ActionParameter] = GmailCards.ShowMachinesAction } })
        {
            var response = await CardAsync(GmailAddonApi.HomepagePath, user.Email, parameters);
            var card = parameters is null ? PushedCard(response) : UpdatedCard(response);
            Assert.Equal("Something went wrong", card["header"]!["subtitle"]!.GetValue<string>());
            Assert.Contains("deactivated by a team admin", card.ToJsonString());
            Assert.DoesNotContain("alan@encom.test", card.ToJsonString());
        }

        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, (DateTimeOffset?)null)));
        var home = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, user.Email));
        Assert.NotEqual("Something went wrong", home["header"]!["subtitle"]!.GetValue<string>());
    }

    [Fact]
    public async Task An_unknown_gmail_user_links_their_address_once_through_the_web_app_and_then_gets_their_cards()
    {
        const string password = "Gmail-Link-Test1";
        var user = await app.NewUserAsync(password: password);
        var gmail = $"g{Guid.NewGuid():N}"[..12] + "@gmail.test";

        // Unknown: the card explains and its button opens the web app's link page in a window that reloads the add-on.
        var card = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, gmail));
        Assert.Equal("Link your account", card["header"]!["subtitle"]!.GetValue<string>());
        Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains(gmail) == true);
        var open = Buttons(card).Single(b => b["onClick"]!["openLink"] is not null)["onClick"]!["openLink"]!;
        Assert.Equal("OVERLAY", open["openAs"]!.GetValue<string>());
        Assert.Equal("RELOAD", open["onClose"]!.GetValue<string>());
        var url = new Uri(open["url"]!.GetValue<string>());
        Assert.StartsWith(GmailAddonApp.BaseUrl + GmailAccountLink.PagePath + "?t=", url.AbsoluteUri);
        Assert.DoesNotContain(gmail, url.AbsoluteUri); // the address travels encrypted

        // Not signed in: the page sends the browser to sign in first, and comes back.
        using (var anonymous = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false }))
        {
            var res = await anonymous.GetAsync(url.PathAndQuery);
            Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
            Assert.Contains("/login", res.Headers.Location!.OriginalString);
        }

        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var page = await browser.GetStringAsync(url.PathAndQuery);
        Assert.Contains("data-state=\"Ready\"", page);
        Assert.Contains(gmail, page);
        Assert.Equal(0, app.WithDb(db => db.UserAddresses.Count(a => a.Address == gmail))); // nothing until confirmed

        var confirm = await browser.PostAsync(url.PathAndQuery, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = System.Web.HttpUtility.ParseQueryString(url.Query)["t"]!, ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        var linked = await confirm.Content.ReadAsStringAsync();
        Assert.Equal(HttpStatusCode.OK, confirm.StatusCode);
        Assert.Contains("data-state=\"Linked\"", linked);
        Assert.Equal(user.Id, app.WithDb(db => db.UserAddresses.Single(a => a.Address == gmail).UserId));

        // Once: the add-on now knows the address, and the link page says it is done.
        var home = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, gmail));
        Assert.NotEqual("Link your account", home["header"]!["subtitle"]!.GetValue<string>());
        Assert.Contains("data-state=\"AlreadyYours\"", await browser.GetStringAsync(url.PathAndQuery));
    }

    /// <summary>
    /// An alias anyone added through the API (nothing verified) is not who a Gmail user is: the add-on asks the real
    /// owner to link the address instead of showing them the claimant's activity and tracking their drafts as the claimant's.
    /// </summary>
    [Fact]
    public async Task An_address_someone_merely_added_as_an_alias_does_not_map_its_gmail_user_to_them()
    {
        var squatter = await app.NewUserAsync();
        var victim = $"v{Guid.NewGuid():N}"[..12] + "@gmail.test";
        Assert.Equal(HttpStatusCode.NoContent, (await squatter.Client.PostAsJsonAsync("/api/me/addresses", new { address = victim })).StatusCode);

        var card = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, victim));
        Assert.Equal("Link your account", card["header"]!["subtitle"]!.GetValue<string>());
    }

    [Fact]
    public async Task A_users_own_alias_is_linked_by_confirming_it_on_the_link_page()
    {
        const string password = "Gmail-Link-Test3";
        var user = await app.NewUserAsync(password: password);
        var gmail = $"g{Guid.NewGuid():N}"[..12] + "@gmail.test";
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = gmail })).StatusCode);
        Assert.Equal("Link your account", PushedCard(await CardAsync(GmailAddonApi.HomepagePath, gmail))["header"]!["subtitle"]!.GetValue<string>());

        var path = new Uri(app.Services.GetRequiredService<GmailAccountLink>().Url(GmailAddonApp.BaseUrl, gmail)).PathAndQuery;
        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var page = await browser.GetStringAsync(path);
        Assert.Contains("data-state=\"Ready\"", page);
        var confirm = await browser.PostAsync(path, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = System.Web.HttpUtility.ParseQueryString(new Uri(GmailAddonApp.BaseUrl + path).Query)["t"]!, ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        Assert.Contains("data-state=\"Linked\"", await confirm.Content.ReadAsStringAsync());
        Assert.Equal(1, app.WithDb(db => db.UserAddresses.Count(a => a.Address == gmail)));
        Assert.NotEqual("Link your account", PushedCard(await CardAsync(GmailAddonApi.HomepagePath, gmail))["header"]!["subtitle"]!.GetValue<string>());
        Assert.Contains("data-state=\"AlreadyYours\"", await browser.GetStringAsync(path));
    }

    [Fact]
    public async Task A_link_that_was_altered_expired_or_belongs_to_someone_else_links_nothing()
    {
        const string password = "Gmail-Link-Test2";
        var user = await app.NewUserAsync(password: password);
        var other = await app.NewUserAsync();
        var gmail = $"g{Guid.NewGuid():N}"[..12] + "@gmail.test";
        var links = app.Services.GetRequiredService<GmailAccountLink>();
        using var browser = await WebSignIn.SignInAsync(app, user.Email, password);
        var path = new Uri(links.Url(GmailAddonApp.BaseUrl, gmail)).PathAndQuery;

        // Altered, missing, or too long: a 400 page that says to ask the add-on for a new link.
        foreach (var bad in new[] { path[..^3] + (path[^3] == 'A' ? "B" : "A") + path[^2..], GmailAccountLink.PagePath, GmailAccountLink.PagePath + "?t=" + new string('x', 5000) })
        {
            var res = await browser.GetAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Contains("data-state=\"Invalid\"", await res.Content.ReadAsStringAsync());
        }

        // Expired: made by a clock an hour behind ours.
        var stale = new GmailAccountLink(app.Services.GetRequiredService<Microsoft.AspNetCore.DataProtection.IDataProtectionProvider>(),
            new Microsoft.Extensions.Time.Testing.FakeTimeProvider(DateTimeOffset.UtcNow - GmailAccountLink.Lifetime - TimeSpan.FromMinutes(1)));
        var expired = await browser.GetAsync(new Uri(stale.Url(GmailAddonApp.BaseUrl, gmail)).PathAndQuery);
        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);

        // Someone else's address: said so, and a posted confirmation changes nothing.
        var page = await browser.GetStringAsync(new Uri(links.Url(GmailAddonApp.BaseUrl, other.Email)).PathAndQuery);
        Assert.Contains("data-state=\"SomeoneElses\"", page);
        var post = await browser.PostAsync(GmailAccountLink.PagePath, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = System.Web.HttpUtility.ParseQueryString(new Uri(links.Url(GmailAddonApp.BaseUrl, other.Email)).Query)["t"]!,
            ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        Assert.Contains("data-state=\"SomeoneElses\"", await post.Content.ReadAsStringAsync());
        Assert.Equal(other.Id, app.WithDb(db => db.UserAddresses.Single(a => a.Address == other.Email).UserId));
        Assert.Equal(0, app.WithDb(db => db.UserAddresses.Count(a => a.Address == gmail)));
    }

    static string Antiforgery(string page)
    {
        var token = System.Text.RegularExpressions.Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "no antiforgery token on the page");
        return token;
    }

    [Fact]
    public async Task The_homepage_shows_todays_human_activity_machines_on_demand_and_the_most_engaged_recipients()
    {
        var user = await app.NewUserAsync();
        // A linked alias is the user too: Gmail may be signed in with it.
        using (var scope = app.Services.CreateScope())
            await scope.ServiceProvider.GetRequiredService<EmailTracking.Server.Accounts.AccountService>().LinkVerifiedAddressAsync(user.Id, "Flynn.Alias@Gmail.test");

        // Nothing yet.
        var empty = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, "flynn.alias@gmail.test"));
        Assert.Equal("0", Labelled(empty, "Opens"));
        Assert.Contains(Widgets(empty), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains("yet today") == true);

        var reg = await user.Client.PostAsJsonAsync("/api/messages", new
        {
            from = user.Email, subject = "Proposal", perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test", "alan@encom.test" }, html = "<p>hello <a href=\"https://encom.test/offer\">offer</a></p>",
        });
        Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
        var messageId = Guid.Parse(JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!);
        var other = await app.NewUserAsync(); // someone else's activity never shows
        await app.WithDbAsync(async db =>
        {
            var msg = await db.Messages.Include(m => m.Recipients).SingleAsync(m => m.Id == messageId);
            var sam = msg.Recipients.Single(r => r.Address == "sam@encom.test");
            var alan = msg.Recipients.Single(r => r.Address == "alan@encom.test");
            var now = DateTimeOffset.UtcNow;
            void Add(Recipient r, EventKind kind, Verdict verdict, DateTimeOffset? at = null, Guid? userId = null) => db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = userId ?? msg.UserId, TrackedMessageId = msg.Id, CopyId = r.CopyId, RecipientId = r.Id, Kind = kind,
                OccurredAt = at ?? now, Verdict = verdict, Reason = "test",
            });
            Add(sam, EventKind.Open, Verdict.Human);
            Add(sam, EventKind.Open, Verdict.Human);
            Add(sam, EventKind.Click, Verdict.Human);
            Add(sam, EventKind.DocumentView, Verdict.Human);
            Add(sam, EventKind.DocumentPage, Verdict.Human);
            Add(sam, EventKind.DocumentPage, Verdict.Human);
            Add(sam, EventKind.Download, Verdict.Human);
            Add(alan, EventKind.Open, Verdict.Human);
            Add(alan, EventKind.Reply, Verdict.Human);
            Add(alan, EventKind.Open, Verdict.ProxyPrefetch);
            Add(alan, EventKind.Open, Verdict.ProxyPrefetch);
            Add(alan, EventKind.Click, Verdict.Scanner);
            Add(sam, EventKind.Open, Verdict.Self);               // the sender's own view: neither person nor machine
            Add(sam, EventKind.Open, Verdict.Human, now.AddDays(-2)); // not today
            Add(sam, EventKind.Open, Verdict.Human, userId: other.Id);  // another user's event
            await db.SaveChangesAsync();
        });

        var card = PushedCard(await CardAsync(GmailAddonApi.HomepagePath, user.Email));
        Assert.Equal(GmailCards.Title, card["header"]!["title"]!.GetValue<string>());
        Assert.Equal("3", Labelled(card, "Opens"));
        Assert.Equal("1", Labelled(card, "Link clicks"));
        Assert.Equal("1", Labelled(card, "Document reads"));
        Assert.Equal("1", Labelled(card, "Replies"));
        Assert.Null(Labelled(card, "Machine opens"));
        Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>().StartsWith("3 machine events today") == true);
        Assert.Contains(Widgets(card), w => w["decoratedText"]?["bottomLabel"]?.GetValue<string>() == "2 pages read · 1 download");
        var engaged = card["sections"]!.AsArray().Single(s => s!["header"]?.GetValue<string>() == "Most engaged recipients")!["widgets"]!.AsArray()
            .Select(w => w!["decoratedText"]!["text"]!.GetValue<string>()).ToList();
        Assert.Equal(["sam@encom.test", "alan@encom.test"], engaged);
        Assert.True(GmailCards.CountWidgets(card.AsObject()) <= GmailCards.MaxWidgets);

        // Buttons: refresh and machines call back to the homepage endpoint; the web app opens in a tab.
        var buttons = Buttons(card);
        var show = buttons.Single(b => b["text"]!.GetValue<string>() == "Show machine counts");
        Assert.Equal(GmailAddonApp.BaseUrl + GmailAddonApi.HomepagePath, show["onClick"]!["action"]!["function"]!.GetValue<string>());
        Assert.Equal(GmailCards.ShowMachinesAction, show["onClick"]!["action"]!["parameters"]![0]!["value"]!.GetValue<string>());
        Assert.Contains(buttons, b => b["text"]!.GetValue<string>() == "Refresh" && b["onClick"]!["action"] is not null);
        Assert.Contains(buttons, b => b["onClick"]!["openLink"]?["url"]?.GetValue<string>() == GmailAddonApp.BaseUrl + "/");

        // "Show machine counts": the callback answers the card updated in place, with the machines counted apart.
        var machines = UpdatedCard(await CardAsync(GmailAddonApi.HomepagePath, user.Email,
            new() { [GmailCards.ActionParameter] = GmailCards.ShowMachinesAction }));
        Assert.Equal("3", Labelled(machines, "Opens"));
        Assert.Equal("2", Labelled(machines, "Machine opens"));
        Assert.Equal("1", Labelled(machines, "Machine clicks"));
        Assert.Equal("0", Labelled(machines, "Machine document reads"));
        Assert.Contains(Buttons(machines), b => b["text"]!.GetValue<string>() == "Hide machines");

        // Refresh after a new human open shows it.
        await app.WithDbAsync(async db =>
        {
            var msg = await db.Messages.Include(m => m.Recipients).SingleAsync(m => m.Id == messageId);
            var alan = msg.Recipients.Single(r => r.Address == "alan@encom.test");
            db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = msg.Id, CopyId = alan.CopyId, RecipientId = alan.Id,
                Kind = EventKind.Open, OccurredAt = DateTimeOffset.UtcNow, Verdict = Verdict.Human, Reason = "test",
            });
            await db.SaveChangesAsync();
        });
        var refreshed = UpdatedCard(await CardAsync(GmailAddonApi.HomepagePath, user.Email, new() { [GmailCards.ActionParameter] = GmailCards.RefreshAction }));
        Assert.Equal("4", Labelled(refreshed, "Opens"));
    }

    static string MessageEvent(string userIdToken, string threadId)
    {
        var ev = JsonNode.Parse(Event(userIdToken))!;
        ev["gmail"] = new JsonObject { ["messageId"] = "msg-f:1659728385805497086", ["threadId"] = threadId, ["accessToken"] = "message-token" };
        return ev.ToJsonString();
    }

    [Fact]
    public async Task Opening_a_tracked_conversation_shows_per_recipient_activity_with_machines_apart()
    {
        var user = await app.NewUserAsync();
        var other = await app.NewUserAsync();
        const ulong thread = 0x18c4a2b3c0001234;
        var threadHex = thread.ToString("x");
        async Task<Guid> RegisterAsync(TestUser who, string subject)
        {
            var reg = await who.Client.PostAsJsonAsync("/api/messages", new
            {
                from = who.Email, subject, perRecipient = true, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
                to = new[] { "sam@encom.test", "alan@encom.test" }, html = "<p>hello</p>",
            });
            Assert.Equal(HttpStatusCode.Created, reg.StatusCode);
            var id = Guid.Parse(JsonDocument.Parse(await reg.Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString()!);
            // As the Gmail connector records it once the mail is sent from Gmail.
            await app.WithDbAsync(async db =>
            {
                foreach (var c in db.Copies.Where(c => c.TrackedMessageId == id)) c.ProviderThreadId = threadHex;
                await db.SaveChangesAsync();
            });
            return id;
        }
        var mine = await RegisterAsync(user, "Proposal <v2>");
        await RegisterAsync(other, "Someone else's secret"); // same thread id, another user: never shown
        await app.WithDbAsync(async db =>
        {
            var msg = await db.Messages.Include(m => m.Recipients).SingleAsync(m => m.Id == mine);
            var sam = msg.Recipients.Single(r => r.Address == "sam@encom.test");
            var alan = msg.Recipients.Single(r => r.Address == "alan@encom.test");
            void Add(Recipient r, EventKind kind, Verdict verdict) => db.Events.Add(new TrackingEvent
            {
                TeamId = msg.TeamId, UserId = msg.UserId, TrackedMessageId = msg.Id, CopyId = r.CopyId, RecipientId = r.Id, Kind = kind,
                OccurredAt = DateTimeOffset.UtcNow, Verdict = verdict, Reason = "test",
            });
            Add(sam, EventKind.Open, Verdict.Human);
            Add(sam, EventKind.Click, Verdict.Human);
            Add(sam, EventKind.DocumentPage, Verdict.Human);
            Add(sam, EventKind.DocumentPage, Verdict.Human);
            Add(sam, EventKind.Download, Verdict.Human);
            Add(alan, EventKind.Reply, Verdict.Human);
            Add(alan, EventKind.Open, Verdict.ProxyPrefetch);
            Add(alan, EventKind.Click, Verdict.Scanner);
            Add(alan, EventKind.Open, Verdict.Self); // the sender's own view: no machine's
            await db.SaveChangesAsync();
        });

        var response = await PostAsync(GmailAddonApi.MessagePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.MessagePath),
            MessageEvent(UserToken(user.Email), "thread-f:" + thread));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var card = PushedCard(JsonNode.Parse(await response.Content.ReadAsStringAsync())!);
        var section = card["sections"]![0]!;
        Assert.StartsWith("Proposal &lt;v2&gt; · sent ", section["header"]!.GetValue<string>());
        Assert.Equal("1 open · 1 click · 2 pages read · 1 download", Labelled(card, "sam@encom.test"));
        Assert.Equal("0 opens · 0 clicks · replied", Labelled(card, "alan@encom.test"));
        var alanWidget = Widgets(card).Single(w => w["decoratedText"]?["topLabel"]?.GetValue<string>() == "alan@encom.test");
        Assert.Equal("2 machine events and 1 of your own views set apart", alanWidget["decoratedText"]!["bottomLabel"]!.GetValue<string>());
        Assert.DoesNotContain("secret", card.ToJsonString());

        // A conversation with nothing tracked, the hex form Gmail's API uses, and no thread at all.
        var none = PushedCard(await CardAsync(GmailAddonApi.MessagePath, user.Email));
        Assert.Contains(Widgets(none), w => w["textParagraph"]?["text"]?.GetValue<string>().StartsWith("No tracked email") == true);
        var hex = await PostAsync(GmailAddonApi.MessagePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.MessagePath), MessageEvent(UserToken(user.Email), threadHex));
        Assert.Contains("sam@encom.test", await hex.Content.ReadAsStringAsync());
        var junk = await PostAsync(GmailAddonApi.MessagePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.MessagePath), MessageEvent(UserToken(user.Email), "thread-f:nonsense"));
        Assert.Equal(HttpStatusCode.OK, junk.StatusCode);
        Assert.Contains("No tracked email", await junk.Content.ReadAsStringAsync());
    }

    const string GmailProxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";

    [Fact]
    public async Task Gmail_proxy_fetches_while_the_sender_has_their_own_message_open_count_as_the_senders()
    {
        var user = await app.NewUserAsync();
        const ulong thread = 0x18c4a2b3c0009876;
        async Task<(Guid Message, string Pixel)> SendAsync(string subject, string threadHex)
        {
            var reg = JsonDocument.Parse(await (await user.Client.PostAsJsonAsync("/api/messages", new
            {
                from = user.Email, subject, perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
                to = new[] { "sam@encom.test" }, html = "<p>hello</p>",
            })).Content.ReadAsStringAsync()).RootElement;
            var id = reg.GetProperty("id").GetGuid();
            await app.WithDbAsync(async db =>
            {
                foreach (var c in db.Copies.Where(c => c.TrackedMessageId == id)) c.ProviderThreadId = threadHex;
                await db.SaveChangesAsync();
            });
            return (id, new Uri(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!).PathAndQuery);
        }
        var (opened, openedPixel) = await SendAsync("Opened by the sender", thread.ToString("x"));
        var (other, otherPixel) = await SendAsync("Not opened by the sender", "18c4a2b3c0000001");
        var proxy = app.Anonymous(GmailProxy);
        Verdict LastOpen(Guid message) => app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == message && e.Kind == EventKind.Open)
            .OrderByDescending(e => e.Id).Select(e => e.Verdict).First());

        // Gmail fetches the image while the add-on's request is on its way: the fetch lands first, as a person's open...
        await proxy.GetAsync(openedPixel);
        Assert.Equal(Verdict.Human, LastOpen(opened));
        // ...then the sender's own conversation opens beside it: that fetch was theirs, and so is the next one.
        var response = await PostAsync(GmailAddonApi.MessagePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.MessagePath),
            MessageEvent(UserToken(user.Email), "thread-f:" + thread));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(Verdict.Self, LastOpen(opened));
        // The card counts that open as the sender's own, not as a person's nor as a machine's.
        var everyone = Widgets(PushedCard(JsonNode.Parse(await response.Content.ReadAsStringAsync())!))
            .Single(w => w["decoratedText"]?["topLabel"]?.GetValue<string>() == "Everyone")["decoratedText"]!;
        Assert.StartsWith("0 opens", everyone["text"]!.GetValue<string>());
        Assert.Equal("1 of your own views set apart", everyone["bottomLabel"]!.GetValue<string>());
        await proxy.GetAsync(openedPixel);
        var events = app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == opened && e.Kind == EventKind.Open).OrderBy(e => e.Id).ToList());
        Assert.Equal([Verdict.Self, Verdict.Self], events.Select(e => e.Verdict));
        Assert.Contains("sender viewed the message in Gmail", events[^1].Reason);
        // The fetch first recorded as a person's is taken back, once, for the live feeds that showed it.
        var change = Assert.Single(app.WithDb(db => db.VerdictChanges.Where(c => c.TrackedMessageId == opened).ToList()));
        Assert.Equal((events[0].Id, Verdict.Human, Verdict.Self), (change.EventId, change.From, change.To));

        // The same proxy on a message the sender did not open is the recipient reading it.
        await proxy.GetAsync(otherPixel);
        Assert.Equal(Verdict.Human, LastOpen(other));
    }

    [Fact]
    public async Task A_recipients_first_Gmail_proxy_fetch_after_the_senders_own_is_their_open_not_a_cache_effect()
    {
        var user = await app.NewUserAsync();
        const ulong thread = 0x18c4a2b3c0007777;
        var reg = JsonDocument.Parse(await (await user.Client.PostAsJsonAsync("/api/messages", new
        {
            from = user.Email, subject = "Checked in Sent first", perRecipient = false, sentAt = DateTimeOffset.UtcNow.AddHours(-1),
            to = new[] { "sam@encom.test" }, html = "<p>hello</p>",
        })).Content.ReadAsStringAsync()).RootElement;
        var id = reg.GetProperty("id").GetGuid();
        var pixel = new Uri(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!).PathAndQuery;
        await app.WithDbAsync(async db =>
        {
            foreach (var c in db.Copies.Where(c => c.TrackedMessageId == id)) c.ProviderThreadId = thread.ToString("x");
            await db.SaveChangesAsync();
        });
        var proxy = app.Anonymous(GmailProxy);
        List<Verdict> Opens() => app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == id && e.Kind == EventKind.Open)
            .OrderBy(e => e.Id).Select(e => e.Verdict).ToList());

        // The sender looks at their sent mail in Gmail: the proxy's fetch is theirs.
        Assert.Equal(HttpStatusCode.OK, (await PostAsync(GmailAddonApi.MessagePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.MessagePath),
            MessageEvent(UserToken(user.Email), "thread-f:" + thread))).StatusCode);
        await proxy.GetAsync(pixel);
        Assert.Equal([Verdict.Self], Opens());

        // Later (the sender's view long past), the recipient opens it in Gmail: the first fetch that was not the sender's
        // is the recipient's open. Counted as a repeat of the sender's own fetch, the reader's open was lost.
        await app.WithDbAsync(async db =>
        {
            await db.Messages.Where(m => m.Id == id).ExecuteUpdateAsync(u => u.SetProperty(m => m.SenderViewedAt, DateTimeOffset.UtcNow.AddHours(-1)));
        });
        await proxy.GetAsync(pixel);
        Assert.Equal([Verdict.Self, Verdict.Human], Opens());
        // And Gmail's later fetches of it are its cache at work.
        await proxy.GetAsync(pixel);
        Assert.Equal([Verdict.Self, Verdict.Human, Verdict.ProxyPrefetch], Opens());
    }

    /// <summary>A compose event; a pressed button's parameters as the card gave them (track: the "Track this email" of a new card).</summary>
    static string ComposeEvent(string userIdToken, string[] to, string[] cc, string? subject = null, bool track = false,
        JsonNode? button = null, string[]? documents = null)
    {
        Dictionary<string, string>? parameters = null;
        if (button is not null)
            parameters = button["onClick"]!["action"]!["parameters"]!.AsArray().ToDictionary(p => p!["key"]!.GetValue<string>(), p => p!["value"]!.GetValue<string>());
        else if (track)
            parameters = new() { [GmailCards.ActionParameter] = GmailCards.TrackAction, [GmailCards.MessageParameter] = Guid.NewGuid().ToString() };
        var ev = JsonNode.Parse(Event(userIdToken, parameters))!;
        var inputs = new JsonObject();
        if (subject is not null) inputs[GmailCards.SubjectInput] = new JsonObject { ["stringInputs"] = new JsonObject { ["value"] = new JsonArray(subject) } };
        if (documents is not null) inputs[GmailCards.DocumentsInput] = new JsonObject { ["stringInputs"] = new JsonObject { ["value"] = new JsonArray([.. documents.Select(d => (JsonNode)d)]) } };
        if (inputs.Count > 0) ev["commonEventObject"]!["formInputs"] = inputs;
        ev["gmail"] = new JsonObject
        {
            ["accessToken"] = "draft-token", ["toRecipients"] = new JsonArray([.. to.Select(t => (JsonNode)t)]),
            ["ccRecipients"] = new JsonArray([.. cc.Select(t => (JsonNode)t)]), ["bccRecipients"] = new JsonArray(),
        };
        return ev.ToJsonString();
    }

    async Task<JsonNode> ComposeAsync(string body)
    {
        var response = await PostAsync(GmailAddonApi.ComposePath, SystemToken(GmailAddonApp.BaseUrl + GmailAddonApi.ComposePath), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    [Fact]
    public async Task Track_this_email_registers_the_draft_and_inserts_a_pixel_whose_hit_is_recorded()
    {
        var user = await app.NewUserAsync();
        string[] to = ["Sam Flynn <sam@encom.test>"], cc = ["lora@encom.test"];

        // The compose action opens the card: recipients, what Gmail allows, a subject field and the button.
        var card = PushedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc)));
        Assert.Equal("Track this email", card["header"]!["subtitle"]!.GetValue<string>());
        Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>() == GmailCards.OneBodyNote);
        Assert.Equal("Sam Flynn &lt;sam@encom.test&gt;", Labelled(card, "To"));
        var track = Buttons(card).Single(b => b["text"]!.GetValue<string>() == "Track this email");
        Assert.Equal(GmailAddonApp.BaseUrl + GmailAddonApi.ComposePath, track["onClick"]!["action"]!["function"]!.GetValue<string>());

        // The button: the draft is registered and the pixel inserted at the end of the body.
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, subject: "Proposal for Encom", button: track));
        var update = answer["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!;
        Assert.Equal("INSERT_AT_END", update["type"]!.GetValue<string>());
        var insert = update["insertContents"]![0]!;
        Assert.Equal("MUTABLE_HTML", insert["contentType"]!.GetValue<string>());
        var src = System.Text.RegularExpressions.Regex.Match(insert["content"]!.GetValue<string>(), "src=\"([^\"]+)\"").Groups[1].Value;
        Assert.Matches("/o/[^/]+\\.gif$", src);

        var message = app.WithDb(db => db.Messages.Include(m => m.Recipients).Single(m => m.UserId == user.Id));
        Assert.Equal(MessageSource.GmailAddon, message.Source);
        Assert.Equal("Proposal for Encom", message.Subject);
        Assert.Equal(user.Email, message.FromAddress);
        Assert.False(message.PerRecipient);
        Assert.Equal(["lora@encom.test", "sam@encom.test"], message.Recipients.Select(r => r.Address).Order());

        // Pressed again (the same card): one tracked message, and Gmail says so.
        var again = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, subject: "Proposal for Encom", button: track));
        Assert.Equal("This email is already tracked.", again["renderActions"]!["action"]!["notification"]!["text"]!.GetValue<string>());
        Assert.Equal(1, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));

        // The user sends the draft from Gmail (no mailbox connected here) and later opens it: the add-on reads its headers
        // with the event's tokens, finds the tracked message by sender, recipients and subject, and shows the open.
        var mime = new MimeKit.MimeMessage();
        mime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        mime.To.Add(MimeKit.MailboxAddress.Parse(to[0]));
        mime.Cc.Add(MimeKit.MailboxAddress.Parse(cc[0]));
        mime.Subject = "Proposal for Encom";
        mime.Body = new MimeKit.TextPart("html") { Text = $"<p>Hello</p><img src=\"{src}\" width=\"1\" height=\"1\" alt=\"\">" };
        var sent = Google.SendFromGmailUi(user.Email, mime);

        // A recipient's mail client loads the pixel: an open of that message is recorded.
        var hit = await app.Anonymous().GetAsync(new Uri(src).PathAndQuery);
        Assert.Equal("image/gif", hit.Content.Headers.ContentType?.MediaType);
        var deadline = DateTime.UtcNow.AddSeconds(10);
        while (app.WithDb(db => db.Events.Count(e => e.TrackedMessageId == message.Id && e.Kind == EventKind.Open)) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the open was not recorded");
            await Task.Delay(50);
        }

        var context = PushedCard(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, sent)));
        Assert.StartsWith("1 open", Labelled(context, "Everyone"));
        var copy = app.WithDb(db => db.Copies.Single(c => c.TrackedMessageId == message.Id));
        Assert.Equal(sent.ThreadId, copy.ProviderThreadId);
        Assert.Equal(sent.MessageId, copy.SentMessageIdHeader);
        Assert.Contains(Google.AddonCalls, c => c.Contains("format=metadata"));

        // Opened again: known by its thread now, Gmail is not asked again.
        var calls = Google.AddonCalls.Count;
        Assert.StartsWith("1 open", Labelled(PushedCard(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, sent))), "Everyone"));
        Assert.Equal(calls, Google.AddonCalls.Count);
    }

    /// <summary>
    /// The pixel sits in the draft while the sender writes, and the compose window shows it: at once through Gmail's
    /// image proxy when it is inserted, or from the sender's own browser, again whenever the draft is reopened. None of
    /// that is a recipient's open; the recipient's first proxy fetch after the mail left is.
    /// </summary>
    [Fact]
    public async Task The_compose_windows_own_fetches_of_the_drafts_pixel_are_the_senders_not_opens()
    {
        var user = await app.NewUserAsync();
        const string chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: "Draft pixel", track: true));
        var content = answer["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!["insertContents"]![0]!["content"]!.GetValue<string>();
        var pixel = new Uri(System.Text.RegularExpressions.Regex.Match(content, "src=\"([^\"]+)\"").Groups[1].Value).PathAndQuery;
        var message = app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id));
        async Task<Verdict> FetchAsync(string userAgent)
        {
            var before = app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == message.Id).Select(e => e.Id).ToList());
            await app.Anonymous(userAgent).GetAsync(pixel);
            return app.WithDb(db => db.Events.Single(e => e.TrackedMessageId == message.Id && !before.Contains(e.Id)).Verdict);
        }

        // The compose window shows the inserted pixel through Gmail's proxy: the sender's at once.
        Assert.Equal(Verdict.Self, await FetchAsync(GmailProxy));
        // The draft reopened later in the sender's browser: taken back once Gmail says when the mail left.
        Assert.Equal(Verdict.Human, await FetchAsync(chrome));

        var mime = new MimeKit.MimeMessage();
        mime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        mime.To.Add(MimeKit.MailboxAddress.Parse("sam@encom.test"));
        mime.Subject = "Draft pixel";
        mime.Body = new MimeKit.TextPart("html") { Text = $"<p>Hello</p><img src=\"{GmailAddonApp.BaseUrl}{pixel}\">" };
        // Sent once written (the compose window's view long past, as writing takes a while); the sender then opens it
        // in Gmail, which says when it left: the fetch before that was the sender's.
        Task LongAgo() => app.WithDbAsync(db => db.Messages.Where(m => m.Id == message.Id)
            .ExecuteUpdateAsync(u => u.SetProperty(m => m.SenderViewedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        await LongAgo();
        var sent = Google.SendFromGmailUi(user.Email, mime);
        var card = PushedCard(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, sent)));
        Assert.StartsWith("0 opens", Labelled(card, "Everyone"));
        List<Verdict> Verdicts() => app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == message.Id).OrderBy(e => e.Id).Select(e => e.Verdict).ToList());
        Assert.Equal([Verdict.Self, Verdict.Self], Verdicts());
        Assert.Equal(GmailAddonApi.BeforeSentReason, app.WithDb(db => db.Events.Where(e => e.TrackedMessageId == message.Id).OrderBy(e => e.Id).Skip(1).First().Reason));

        // Later Sam's Gmail shows it: the first proxy fetch that was not the sender's is his open, not a cache effect.
        await LongAgo();
        Assert.Equal(Verdict.Human, await FetchAsync(GmailProxy));
        Assert.Equal([Verdict.Self, Verdict.Self, Verdict.Human], Verdicts());
    }

    /// <summary>The event of the user opening a message in Gmail: its ids as the event gives them (decimal) and the add-on's tokens for it.</summary>
    string OpenedEvent(string userIdToken, string address, FakeGoogle.Message message)
    {
        var (userOAuth, messageToken) = Google.AddonAccess(address, message.Id);
        var ev = JsonNode.Parse(Event(userIdToken))!;
        ev["authorizationEventObject"]!["userOAuthToken"] = userOAuth;
        ev["gmail"] = new JsonObject
        {
            ["messageId"] = "msg-f:" + Convert.ToUInt64(message.Id, 16), ["threadId"] = "thread-f:" + Convert.ToUInt64(message.ThreadId, 16),
            ["accessToken"] = messageToken,
        };
        return ev.ToJsonString();
    }

    [Fact]
    public async Task A_sent_mail_that_does_not_match_a_tracked_draft_or_that_Gmail_will_not_show_stays_untracked()
    {
        var user = await app.NewUserAsync();
        async Task<string> TrackAsync(string subject, string[] to)
        {
            var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, [], subject: subject, track: true));
            return answer["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!["insertContents"]![0]!["content"]!.GetValue<string>();
        }
        await TrackAsync("Quarterly numbers", ["sam@encom.test", "alan@encom.test"]);
        FakeGoogle.Message Send(string subject, params string[] to)
        {
            var mime = new MimeKit.MimeMessage();
            mime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
            foreach (var t in to) mime.To.Add(MimeKit.MailboxAddress.Parse(t));
            mime.Subject = subject;
            mime.Body = new MimeKit.TextPart("plain") { Text = "hi" };
            return Google.SendFromGmailUi(user.Email, mime);
        }
        string NoneText(JsonNode response) => Widgets(PushedCard(response)).First(w => w["textParagraph"] is not null)["textParagraph"]!["text"]!.GetValue<string>();

        // Another subject, fewer recipients, or mail someone else sent: nothing matches.
        foreach (var sent in new[] { Send("Other numbers", "sam@encom.test", "alan@encom.test"), Send("Quarterly numbers", "sam@encom.test") })
        {
            Assert.StartsWith("No tracked email", NoneText(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, sent))));
        }
        var incoming = new MimeKit.MimeMessage();
        incoming.From.Add(MimeKit.MailboxAddress.Parse("sam@encom.test"));
        incoming.To.Add(MimeKit.MailboxAddress.Parse(user.Email));
        incoming.Subject = "Quarterly numbers";
        incoming.Body = new MimeKit.TextPart("plain") { Text = "hi" };
        var received = Google.Deliver(user.Email, incoming);
        Assert.StartsWith("No tracked email", NoneText(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, received))));

        // Gmail refuses the add-on's tokens (or is down): the card still answers, with what is known.
        var good = Send("Quarterly numbers", "alan@encom.test", "sam@encom.test");
        var ev = JsonNode.Parse(OpenedEvent(UserToken(user.Email), user.Email, good))!;
        ev["gmail"]!["accessToken"] = "not-the-message-token";
        Assert.StartsWith("No tracked email", NoneText(await AddonAsync(GmailAddonApi.MessagePath, ev.ToJsonString())));
        Google.FailNext("/messages/", 503);
        Assert.StartsWith("No tracked email", NoneText(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, good))));
        Assert.Equal(0, app.WithDb(db => db.Copies.Count(c => c.TrackedMessage!.UserId == user.Id && c.ProviderThreadId != null)));

        // And the right one, recipients in another order: found.
        Assert.DoesNotContain("No tracked email", (await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, good))).ToJsonString());
        Assert.Equal(good.ThreadId, app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == user.Id).ProviderThreadId));
    }

    [Fact]
    public async Task A_sent_mail_to_a_recipient_tracked_with_a_punycode_domain_is_found_by_its_headers()
    {
        var user = await app.NewUserAsync();
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["Zoe <zoe@xn--r8jz45g.jp>"], [], subject: "Quarterly numbers", track: true));
        Assert.NotNull(answer["renderActions"]!["hostAppAction"]);
        var mime = new MimeKit.MimeMessage();
        mime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        mime.To.Add(new MimeKit.MailboxAddress("Zoe", "zoe@例え.jp"));
        mime.Subject = "Quarterly numbers";
        mime.Body = new MimeKit.TextPart("plain") { Text = "hi" };
        var sent = Google.SendFromGmailUi(user.Email, mime);
        Assert.DoesNotContain("No tracked email", (await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, sent))).ToJsonString());
        Assert.Equal(sent.ThreadId, app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == user.Id).ProviderThreadId));
    }

    [Fact]
    public async Task A_sent_mail_from_a_user_whose_domain_is_in_unicode_is_found_by_its_headers()
    {
        var email = $"u{Guid.NewGuid():N}"[..12] + "@例え.jp";
        Guid userId;
        using (var scope = app.Services.CreateScope())
        {
            userId = (await scope.ServiceProvider.GetRequiredService<Server.Accounts.AccountService>()
                .CreateUserAsync(new Server.Accounts.NewUser(email, $"team-{Guid.NewGuid():N}", Plan.Team, TeamRole.Member, null, null))).User.Id;
        }
        var answer = await ComposeAsync(ComposeEvent(UserToken(email), ["Zoe <zoe@encom.test>"], [], subject: "Quarterly numbers", track: true));
        Assert.NotNull(answer["renderActions"]!["hostAppAction"]);
        // Gmail's From header carries the user's domain in punycode.
        var mime = new MimeKit.MimeMessage();
        mime.From.Add(new MimeKit.MailboxAddress("", email));
        mime.To.Add(new MimeKit.MailboxAddress("Zoe", "zoe@encom.test"));
        mime.Subject = "Quarterly numbers";
        mime.Body = new MimeKit.TextPart("plain") { Text = "hi" };
        var sent = Google.SendFromGmailUi(email, mime);
        Assert.DoesNotContain("No tracked email", (await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(email), email, sent))).ToJsonString());
        Assert.Equal(sent.ThreadId, app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == userId).ProviderThreadId));
    }

    [Fact]
    public async Task Mail_from_the_users_own_alias_with_its_domain_in_punycode_is_not_taken_for_a_recipients_answer()
    {
        var user = await app.NewUserAsync();
        var alias = $"me-{Guid.NewGuid():N}"[..15] + "@例え.jp";
        Assert.True((await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = alias })).IsSuccessStatusCode);
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["Zoe <zoe@encom.test>"], [alias], subject: "Proposal for Encom", track: true));
        Assert.NotNull(answer["renderActions"]!["hostAppAction"]);
        var sentMime = new MimeKit.MimeMessage();
        sentMime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        sentMime.To.Add(new MimeKit.MailboxAddress("Zoe", "zoe@encom.test"));
        sentMime.Cc.Add(new MimeKit.MailboxAddress("Me", alias));
        sentMime.Subject = "Proposal for Encom";
        sentMime.Body = new MimeKit.TextPart("plain") { Text = "Hello" };
        var sent = Google.SendFromGmailUi(user.Email, sentMime);
        // The user answers from the alias (its header has the domain in punycode): their own mail, not the recipient's answer.
        var own = new MimeKit.MimeMessage();
        own.From.Add(new MimeKit.MailboxAddress("Me", alias));
        own.To.Add(MimeKit.MailboxAddress.Parse(user.Email));
        own.Subject = "Re: Proposal for Encom";
        own.InReplyTo = sent.MessageId;
        own.Body = new MimeKit.TextPart("plain") { Text = "A note to myself." };
        var received = Google.Deliver(user.Email, own);
        await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, received));
        Assert.Null(app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == user.Id).ProviderThreadId));
    }

    [Fact]
    public async Task An_answer_from_a_recipient_tracked_with_a_unicode_domain_finds_the_tracked_message()
    {
        var user = await app.NewUserAsync();
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["Zoe <zoe@例え.jp>"], [], subject: "Proposal for Encom", track: true));
        Assert.NotNull(answer["renderActions"]!["hostAppAction"]);
        var sentMime = new MimeKit.MimeMessage();
        sentMime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        sentMime.To.Add(new MimeKit.MailboxAddress("Zoe", "zoe@例え.jp"));
        sentMime.Subject = "Proposal for Encom";
        sentMime.Body = new MimeKit.TextPart("plain") { Text = "Hello" };
        var sent = Google.SendFromGmailUi(user.Email, sentMime);
        // Her answer's From header carries the domain in punycode, as mail does.
        var reply = new MimeKit.MimeMessage();
        reply.From.Add(new MimeKit.MailboxAddress("Zoe", "zoe@例え.jp"));
        reply.To.Add(MimeKit.MailboxAddress.Parse(user.Email));
        reply.Subject = "Re: Proposal for Encom";
        reply.InReplyTo = sent.MessageId;
        reply.Body = new MimeKit.TextPart("plain") { Text = "Thanks." };
        var received = Google.Deliver(user.Email, reply);
        Assert.NotNull(Labelled(PushedCard(await AddonAsync(GmailAddonApi.MessagePath, OpenedEvent(UserToken(user.Email), user.Email, received))), "Everyone"));
        Assert.Equal(received.ThreadId, app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == user.Id).ProviderThreadId));
    }

    [Fact]
    public async Task Opening_the_conversation_on_a_recipients_answer_finds_the_tracked_message_by_its_thread()
    {
        var user = await app.NewUserAsync();
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["Sam Flynn <sam@encom.test>"], ["lora@encom.test"], subject: "Proposal for Encom", track: true));
        var html = answer["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!["insertContents"]![0]!["content"]!.GetValue<string>();
        var sentMime = new MimeKit.MimeMessage();
        sentMime.From.Add(MimeKit.MailboxAddress.Parse(user.Email));
        sentMime.To.Add(MimeKit.MailboxAddress.Parse("sam@encom.test"));
        sentMime.Cc.Add(MimeKit.MailboxAddress.Parse("lora@encom.test"));
        sentMime.Subject = "Proposal for Encom";
        sentMime.Body = new MimeKit.TextPart("html") { Text = "<p>Hello</p>" + html };
        // Sent from Gmail; the user never opens the sent mail itself, and no mailbox is connected.
        var sent = Google.SendFromGmailUi(user.Email, sentMime);
        FakeGoogle.Message Receive(string from, string subject, bool answers)
        {
            var m = new MimeKit.MimeMessage();
            m.From.Add(MimeKit.MailboxAddress.Parse(from));
            m.To.Add(MimeKit.MailboxAddress.Parse(user.Email));
            m.Subject = subject;
            if (answers)
            {
                m.InReplyTo = sent.MessageId;
                m.References.Add(sent.MessageId);
            }
            m.Body = new MimeKit.TextPart("plain") { Text = "Thanks, let's talk." };
            return Google.Deliver(user.Email, m, answers ? null : sent.ThreadId);
        }
        string Opened(FakeGoogle.Message m) => OpenedEvent(UserToken(user.Email), user.Email, m);
        int Threaded() => app.WithDb(db => db.Copies.Count(c => c.TrackedMessage!.UserId == user.Id && c.ProviderThreadId != null));

        // In the same conversation, none of these names the tracked message: someone who was not a recipient, a
        // recipient's mail that answers nothing, and an answer about something else.
        foreach (var other in new[] { Receive("kevin@encom.test", "Re: Proposal for Encom", true), Receive("sam@encom.test", "Proposal for Encom", false),
                     Receive("sam@encom.test", "Re: Lunch", true) })
        {
            var none = Widgets(PushedCard(await AddonAsync(GmailAddonApi.MessagePath, Opened(other)))).First(w => w["textParagraph"] is not null);
            Assert.StartsWith("No tracked email", none["textParagraph"]!["text"]!.GetValue<string>());
        }
        Assert.Equal(0, Threaded());

        // Two tracked emails on that topic to Sam (a fresh follow-up): Sam's answer could answer either, so neither is taken.
        var followUp = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: "Re: Proposal for Encom", track: true));
        Assert.NotNull(followUp["renderActions"]!["hostAppAction"]);
        var ambiguous = Receive("sam@encom.test", "RE: Proposal for Encom", true);
        var unsure = Widgets(PushedCard(await AddonAsync(GmailAddonApi.MessagePath, Opened(ambiguous)))).First(w => w["textParagraph"] is not null);
        Assert.StartsWith("No tracked email", unsure["textParagraph"]!["text"]!.GetValue<string>());
        Assert.Equal(0, Threaded());

        // The cc'd recipient answers from a German client: the conversation is the tracked message's, and its card shows.
        var reply = Receive("Lora <lora@encom.test>", "AW: Proposal for Encom", true);
        Assert.Equal(sent.ThreadId, reply.ThreadId);
        var card = PushedCard(await AddonAsync(GmailAddonApi.MessagePath, Opened(reply)));
        Assert.NotNull(Labelled(card, "Everyone"));
        var copy = app.WithDb(db => db.Copies.Single(c => c.TrackedMessage!.UserId == user.Id && c.TrackedMessage.Subject == "Proposal for Encom"));
        Assert.Equal(sent.ThreadId, copy.ProviderThreadId);
        Assert.Equal(1, Threaded());
        // The answer's In-Reply-To could name a later mail of the conversation: no Message-ID is taken from it.
        Assert.Null(copy.SentMessageIdHeader);
    }

    async Task<JsonNode> AddonAsync(string path, string body)
    {
        var response = await PostAsync(path, SystemToken(GmailAddonApp.BaseUrl + path), body);
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    [Fact]
    public async Task Insert_tracked_content_puts_links_of_the_drafts_tracked_message_at_the_cursor_and_their_reading_shows_beside_it()
    {
        var user = await app.NewUserAsync();
        string[] to = ["sam@encom.test"], cc = [];
        var upload = JsonDocument.Parse(await (await user.Client.UploadAsync(await Documents.PdfAsync(2), "Proposal.pdf")).Content.ReadAsStringAsync()).RootElement;
        var contentId = upload.GetProperty("id").GetGuid();

        // The card lists the library; the documents button carries the same message id as the track button.
        var card = PushedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc)));
        var choices = Widgets(card).Single(w => w["selectionInput"] is not null)["selectionInput"]!;
        Assert.Equal("CHECK_BOX", choices["type"]!.GetValue<string>());
        var choice = Assert.Single(choices["items"]!.AsArray())!;
        Assert.Equal("Proposal.pdf (2 pages)", choice["text"]!.GetValue<string>());
        Assert.Equal(contentId.ToString(), choice["value"]!.GetValue<string>());
        var insertButton = Buttons(card).Single(b => b["text"]!.GetValue<string>() == "Insert tracked content");
        var trackButton = Buttons(card).Single(b => b["text"]!.GetValue<string>() == "Track this email");

        // Nothing chosen: Gmail shows a note and nothing is registered.
        var none = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, button: insertButton, documents: []));
        Assert.Equal("Choose one or more documents first.", none["renderActions"]!["action"]!["notification"]!["text"]!.GetValue<string>());
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));

        // Chosen before tracking: the draft is tracked now, the link and the pixel go in at the cursor.
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, subject: "Our proposal", button: insertButton,
            documents: [contentId.ToString(), Guid.NewGuid().ToString(), "junk"]));
        var update = answer["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!;
        Assert.Equal("IN_PLACE_INSERT", update["type"]!.GetValue<string>());
        var html = update["insertContents"]![0]!["content"]!.GetValue<string>();
        var link = new Uri(System.Text.RegularExpressions.Regex.Match(html, "href=\"([^\"]+)\"").Groups[1].Value).PathAndQuery;
        Assert.Matches("^/d/[^/]+$", link);
        Assert.Contains("Proposal.pdf (2 pages)</a>", html);
        Assert.Matches("<img src=\"[^\"]+/o/[^\"]+\\.gif\"", html);
        var message = app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id));
        Assert.Equal("Our proposal", message.Subject);
        Assert.Equal(trackButton["onClick"]!["action"]!["parameters"]!.AsArray().Single(p => p!["key"]!.GetValue<string>() == GmailCards.MessageParameter)!["value"]!.GetValue<string>(),
            message.Id.ToString());

        // Then "Track this email" on the same card: already tracked, no second message, no second pixel.
        var tracked = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, button: trackButton));
        Assert.Equal("This email is already tracked.", tracked["renderActions"]!["action"]!["notification"]!["text"]!.GetValue<string>());
        // And inserting again adds a link of the same message, without the pixel.
        var second = await ComposeAsync(ComposeEvent(UserToken(user.Email), to, cc, button: insertButton, documents: [contentId.ToString()]));
        Assert.DoesNotContain("<img", second["renderActions"]!["hostAppAction"]!["gmailAction"]!["updateDraftActionMarkup"]!["updateBody"]!["insertContents"]![0]!["content"]!.GetValue<string>());
        Assert.Equal(1, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
        Assert.Equal(2, app.WithDb(db => db.ContentLinks.Count(l => l.TrackedMessageId == message.Id)));

        // The mail left an hour ago (as the connector records it: a reading seconds after sending would be a scanner's)
        // and Sam reads two pages: the conversation card shows it for the message.
        const ulong thread = 0x18c4a2b3c00f0002;
        await app.WithDbAsync(async db =>
        {
            foreach (var c in db.Copies.Where(c => c.TrackedMessageId == message.Id)) c.ProviderThreadId = thread.ToString("x");
            await db.Messages.Where(m => m.Id == message.Id).ExecuteUpdateAsync(u => u.SetProperty(m => m.SentAt, DateTimeOffset.UtcNow.AddHours(-1)));
            await db.SaveChangesAsync();
        });
        using var reader = app.Anonymous("Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36");
        var visit = JsonDocument.Parse(await (await reader.PostAsJsonAsync(link + "/visits", new { })).Content.ReadAsStringAsync()).RootElement;
        var visitId = visit.GetProperty("visitId").GetString();
        await Task.Delay(1200);
        var beat = await reader.PostAsync($"{link}/visits/{visitId}/beats",
            new StringContent("""{"pages":{"1":600,"2":500},"order":[1,2],"current":2}""", Encoding.UTF8, "application/json"));
        Assert.Equal(HttpStatusCode.NoContent, beat.StatusCode);
        var context = PushedCard(await AddonAsync(GmailAddonApi.MessagePath, MessageEvent(UserToken(user.Email), "thread-f:" + thread)));
        Assert.Contains("2 pages read", Labelled(context, "Everyone"));
    }

    /// <summary>
    /// The library as the web app and the Outlook pane show it (ContentStats.Visible): a member's own documents, a team
    /// admin's the team's. A colleague's document is neither listed on a member's compose card nor linked by a press.
    /// </summary>
    [Fact]
    public async Task A_member_is_offered_only_their_own_documents_and_cannot_insert_a_colleagues()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName);
        async Task<Guid> UploadAsync(TestUser who, string name) =>
            JsonDocument.Parse(await (await who.Client.UploadAsync(await Documents.PdfAsync(1), name)).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetGuid();
        var theirs = await UploadAsync(admin, "Board minutes.pdf");
        var mine = await UploadAsync(member, "Price list.pdf");
        static List<string> Offered(JsonNode card) =>
            [.. Widgets(card).Single(w => w["selectionInput"] is not null)["selectionInput"]!["items"]!.AsArray().Select(i => i!["value"]!.GetValue<string>())];

        var card = PushedCard(await ComposeAsync(ComposeEvent(UserToken(member.Email), ["sam@encom.test"], [])));
        Assert.Equal([mine.ToString()], Offered(card));
        Assert.DoesNotContain("Board minutes", card.ToJsonString());

        var insert = Buttons(card).Single(b => b["text"]!.GetValue<string>() == "Insert tracked content");
        var answer = await ComposeAsync(ComposeEvent(UserToken(member.Email), ["sam@encom.test"], [], subject: "x", button: insert, documents: [theirs.ToString()]));
        Assert.Equal("Those documents are no longer in the library.", answer["renderActions"]!["action"]!["notification"]!["text"]!.GetValue<string>());
        Assert.Equal(0, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == theirs)));

        // A team admin is offered the team's, as in the web app.
        Assert.Equal([mine.ToString(), theirs.ToString()], Offered(PushedCard(await ComposeAsync(ComposeEvent(UserToken(admin.Email), ["sam@encom.test"], [])))));
    }

    [Fact]
    public async Task A_solo_user_is_told_why_documents_cannot_be_inserted_and_nothing_is_linked()
    {
        var user = await app.NewUserAsync(plan: Plan.Solo);
        var card = PushedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [])));
        Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains("Team plan") == true);
        Assert.DoesNotContain(Buttons(card), b => b["text"]!.GetValue<string>() == "Insert tracked content");
        Assert.DoesNotContain(Widgets(card), w => w["selectionInput"] is not null);

        // A forged press (the button is not on the card): an error card saying the same, and nothing registered.
        var pressed = UpdatedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], button: new JsonObject
        {
            ["onClick"] = new JsonObject
            {
                ["action"] = new JsonObject
                {
                    ["parameters"] = new JsonArray(
                        new JsonObject { ["key"] = GmailCards.ActionParameter, ["value"] = GmailCards.InsertContentAction },
                        new JsonObject { ["key"] = GmailCards.MessageParameter, ["value"] = Guid.NewGuid().ToString() }),
                },
            },
        }, documents: [Guid.NewGuid().ToString()])));
        Assert.Contains(Widgets(pressed), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains(EmailTracking.Server.Content.ContentLibrary.PlanTitle) == true);
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
    }

    [Fact]
    public async Task A_compose_press_without_the_cards_message_id_or_with_someone_elses_gets_an_error_card()
    {
        var user = await app.NewUserAsync();
        var other = await app.NewUserAsync();
        var theirs = JsonDocument.Parse(await (await other.Client.PostAsJsonAsync("/api/messages", new
        {
            from = other.Email, subject = "theirs", to = new[] { "x@encom.test" }, html = "<p>x</p>", perRecipient = false,
        })).Content.ReadAsStringAsync()).RootElement.GetProperty("id").GetString();
        foreach (var key in new[] { null, "", "not-a-guid", Guid.Empty.ToString(), theirs })
        {
            var parameters = new JsonArray(new JsonObject { ["key"] = GmailCards.ActionParameter, ["value"] = GmailCards.TrackAction });
            if (key is not null) parameters.Add(new JsonObject { ["key"] = GmailCards.MessageParameter, ["value"] = key });
            var button = new JsonObject { ["onClick"] = new JsonObject { ["action"] = new JsonObject { ["parameters"] = parameters } } };
            var card = UpdatedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: "x", button: button)));
            Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains("out of date") == true);
        }
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
        Assert.Equal(1, app.WithDb(db => db.Messages.Count(m => m.UserId == other.Id)));
    }

    /// <summary>
    /// The subject typed in the card is the tracked message's, however long a subject may be (1,000 characters); one
    /// longer gets the card saying why, never a message tracked without its subject (which would match any sent mail).
    /// </summary>
    [Fact]
    public async Task A_long_subject_is_tracked_as_typed_and_one_too_long_is_refused_saying_why()
    {
        var user = await app.NewUserAsync();
        var subject = "Proposal: " + string.Join(" ", Enumerable.Repeat("the grid, its programs and their users", 8));
        Assert.InRange(subject.Length, 201, 1000);
        var answer = await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: subject, track: true));
        Assert.NotNull(answer["renderActions"]!["hostAppAction"]);
        Assert.Equal(subject, app.WithDb(db => db.Messages.Single(m => m.UserId == user.Id).Subject));

        var refused = UpdatedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), ["sam@encom.test"], [], subject: new string('s', 1001), track: true)));
        Assert.Contains(Widgets(refused), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains("longer than 1000") == true);
        Assert.Equal(1, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
    }

    [Fact]
    public async Task A_draft_without_recipients_gets_a_card_saying_so_and_nothing_is_registered()
    {
        var user = await app.NewUserAsync();
        var card = PushedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), [], [])));
        Assert.Contains(Widgets(card), w => w["textParagraph"]?["text"]?.GetValue<string>().StartsWith("Add recipients") == true);
        var pressed = UpdatedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), [], [], subject: "x", track: true)));
        Assert.Contains(Widgets(pressed), w => w["textParagraph"]?["text"]?.GetValue<string>().StartsWith("Add recipients") == true);
        // A malformed address in the draft: an error card, not an HTTP error.
        var bad = UpdatedCard(await ComposeAsync(ComposeEvent(UserToken(user.Email), ["not an address"], [], subject: "x", track: true)));
        Assert.Contains(Widgets(bad), w => w["textParagraph"]?["text"]?.GetValue<string>().Contains("could not be tracked") == true);
        Assert.Equal(0, app.WithDb(db => db.Messages.Count(m => m.UserId == user.Id)));
    }

    // ---- the deployment descriptor ----

    [Fact]
    public async Task Et_writes_a_deployment_whose_every_endpoint_is_served_by_the_server()
    {
        var file = Path.Combine(Directory.CreateTempSubdirectory("et-gmail-").FullName, "deployment.json");
        var code = await EmailTracking.Cli.EtProgram.Main(["gmail-deployment", "--base-url", "https://t.example.com/", "--out", file]);
        Assert.Equal(0, code);
        var d = JsonNode.Parse(await File.ReadAllTextAsync(file))!;
        Assert.DoesNotContain("{{", d.ToJsonString());

        var scopes = d["oauthScopes"]!.AsArray().Select(s => s!.GetValue<string>()).ToList();
        Assert.Equal([
            "https://www.googleapis.com/auth/gmail.addons.execute",
            "https://www.googleapis.com/auth/gmail.addons.current.message.metadata",
            "https://www.googleapis.com/auth/gmail.addons.current.action.compose",
            "https://www.googleapis.com/auth/userinfo.email",
            "https://www.googleapis.com/auth/script.locale",
        ], scopes);
        var common = d["addOns"]!["common"]!;
        Assert.Equal("https://t.example.com/gmail/homepage", common["homepageTrigger"]!["runFunction"]!.GetValue<string>());
        Assert.Equal(["https://t.example.com/"], common["openLinkUrlPrefixes"]!.AsArray().Select(p => p!.GetValue<string>()));
        Assert.True(common["useLocaleFromApp"]!.GetValue<bool>());
        var gmail = d["addOns"]!["gmail"]!;
        var contextual = Assert.Single(gmail["contextualTriggers"]!.AsArray())!;
        Assert.NotNull(contextual["unconditional"]);
        Assert.Equal("https://t.example.com/gmail/message", contextual["onTriggerFunction"]!.GetValue<string>());
        Assert.Equal("METADATA", gmail["composeTrigger"]!["draftAccess"]!.GetValue<string>());
        var action = Assert.Single(gmail["composeTrigger"]!["actions"]!.AsArray())!;
        Assert.Equal("Track this email", action["label"]!.GetValue<string>());

        // Every URL Google calls is a POST endpoint the server maps; the logo is a file the server serves.
        var mapped = app.Services.GetRequiredService<EndpointDataSource>().Endpoints.OfType<RouteEndpoint>()
            .Where(e => e.Metadata.GetMetadata<Microsoft.AspNetCore.Routing.HttpMethodMetadata>()?.HttpMethods.Contains("POST") == true)
            .Select(e => "/" + e.RoutePattern.RawText!.TrimStart('/')).ToHashSet();
        var urls = GmailDeployment.EndpointUrls(d);
        Assert.Equal(3, urls.Count);
        foreach (var url in urls)
        {
            var uri = new Uri(url);
            Assert.Equal("https://t.example.com", uri.GetLeftPart(UriPartial.Authority));
            Assert.Contains(uri.AbsolutePath, mapped);
        }
        var logo = new Uri(common["logoUrl"]!.GetValue<string>());
        Assert.Equal(HttpStatusCode.OK, (await app.Anonymous(null).GetAsync(logo.AbsolutePath)).StatusCode);

        // Not https, or not a URL: refused with a clear message and no file.
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["gmail-deployment", "--base-url", "http://t.example.com"]));
        Assert.Equal(2, await EmailTracking.Cli.EtProgram.Main(["gmail-deployment", "--base-url", "nonsense"]));
    }
}

public sealed class GmailAddonOnSqlite(GmailAddonSqliteApp app) : GmailAddonTests(app), IClassFixture<GmailAddonSqliteApp>;

public sealed class GmailAddonOnPostgres(GmailAddonPostgresApp app) : GmailAddonTests(app), IClassFixture<GmailAddonPostgresApp>;

/// <summary>Without configuration the add-on's endpoints refuse everyone, whatever the token.</summary>
public sealed class GmailAddonNotConfiguredTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Every_request_is_refused()
    {
        await using var google = FakeGoogle.Start();
        using var client = app.Anonymous(null);
        var request = new HttpRequestMessage(HttpMethod.Post, GmailAddonApi.HomepagePath) { Content = new StringContent("{}", Encoding.UTF8, "application/json") };
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", google.SignIdToken("https://et.test/gmail/homepage", "service-1@gcp-sa-gsuiteaddons.iam.gserviceaccount.com"));
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.SendAsync(request)).StatusCode);
    }
}
