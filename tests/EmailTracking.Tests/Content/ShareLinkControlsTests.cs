using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Api;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Content;

/// <summary>A document, share links with settings, and a reader's browser that keeps cookies.</summary>
public abstract class ShareLinkTestBase(AppFactory app)
{
    protected const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    protected static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>A user with a 3-page document (downloads allowed).</summary>
    protected async Task<(TestUser User, Guid ContentId)> DocumentAsync(TeamRole role = TeamRole.Member, string? team = null)
    {
        var user = await app.NewUserAsync(team: team, role: role);
        var item = await user.UploadOkAsync(await Documents.PdfAsync(3), "Proposal.pdf");
        return (user, item.GetProperty("id").GetGuid());
    }

    /// <summary>A share link made with these settings (JSON), aged an hour: a visit seconds after a link is made reads as a scanner's.</summary>
    protected async Task<JsonElement> LinkAsync(TestUser user, Guid contentId, string? settings = null)
    {
        var res = await user.Client.PostAsync($"/api/content/{contentId}/links",
            settings is null ? null : new StringContent(settings, Encoding.UTF8, "application/json"));
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.StatusCode == HttpStatusCode.Created, $"{(int)res.StatusCode} {text}");
        var link = JsonDocument.Parse(text).RootElement.Clone();
        var token = link.GetProperty("token").GetString()!;
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        return link;
    }

    protected static string PathOf(JsonElement link) => "/d/" + link.GetProperty("token").GetString();

    /// <summary>A reader's browser: keeps cookies, follows no redirects.</summary>
    protected HttpClient Reader(string userAgent = Chrome)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        client.DefaultRequestHeaders.TryAddWithoutValidation("User-Agent", userAgent);
        return client;
    }

    /// <summary>
    /// Posts a gate form as the reader's browser does: with the antiforgery token of the gate's page, fetched once per
    /// browser (the token stays good with the browser's cookie). A link without a gate page (unknown, closed) gets none.
    /// </summary>
    protected static async Task<HttpResponseMessage> PostFormAsync(HttpClient client, string path, params (string Name, string Value)[] fields)
    {
        var token = await FormTokenAsync(client, path);
        return await PostRawFormAsync(client, path, token is null ? fields : [.. fields, (FormTokenField, token)]);
    }

    /// <summary>A form post with exactly these fields: no antiforgery token unless one is among them.</summary>
    protected static Task<HttpResponseMessage> PostRawFormAsync(HttpClient client, string path, params (string Name, string Value)[] fields) =>
        client.PostAsync(path, new FormUrlEncodedContent(fields.Select(f => new KeyValuePair<string, string>(f.Name, f.Value))));

    protected const string FormTokenField = "__RequestVerificationToken";
    static readonly System.Runtime.CompilerServices.ConditionalWeakTable<HttpClient, string> FormTokens = new();

    /// <summary>The antiforgery token on the gate's page of the link that <paramref name="path"/> posts to, for this browser.</summary>
    protected static async Task<string?> FormTokenAsync(HttpClient client, string path)
    {
        if (FormTokens.TryGetValue(client, out var known)) return known;
        var page = await client.GetAsync(string.Join('/', path.Split('/').Take(3)));
        var match = Regex.Match(await page.Content.ReadAsStringAsync(), $"name=\"{FormTokenField}\" value=\"([^\"]+)\"");
        if (!match.Success) return null;
        var token = System.Net.WebUtility.HtmlDecode(match.Groups[1].Value);
        FormTokens.AddOrUpdate(client, token);
        return token;
    }

    protected static Task<HttpResponseMessage> PatchAsync(TestUser user, Guid contentId, string token, string json) =>
        user.Client.PatchAsync($"/api/content/{contentId}/links/{token}", new StringContent(json, Encoding.UTF8, "application/json"));

    protected int Events(Guid contentId) => app.WithDb(db => db.Events.Count(e => e.ContentId == contentId));
    protected int Visits(Guid contentId) => app.WithDb(db => db.DocumentVisits.Count(v => v.ContentId == contentId));
}

/// <summary>
/// Share links the owner controls: an expiry, turning a link off and on, a download choice of the link's own, and a
/// reader who must give their address before the document shows.
/// </summary>
public abstract class ShareLinkControlsTests(AppFactory app) : ShareLinkTestBase(app)
{
    readonly AppFactory app = app;

    [Fact]
    public async Task Links_are_made_listed_and_changed_with_their_settings_and_bad_settings_are_refused_by_name_leaving_nothing()
    {
        var (user, contentId) = await DocumentAsync();
        var end = DateTimeOffset.UtcNow.AddDays(7);
        var gated = await LinkAsync(user, contentId, $$"""{"expiresAt":"{{end.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}}","allowDownload":false,"requireEmail":true}""");
        Assert.True(gated.GetProperty("requireEmail").GetBoolean());
        Assert.False(gated.GetProperty("verifyEmail").GetBoolean());
        Assert.False(gated.GetProperty("downloadsAllowed").GetBoolean());
        Assert.Equal(end.ToUnixTimeSeconds(), gated.GetProperty("expiresAt").GetDateTimeOffset().ToUnixTimeSeconds());
        var plain = await LinkAsync(user, contentId);
        Assert.False(plain.GetProperty("requireEmail").GetBoolean());
        Assert.True(plain.GetProperty("downloadsAllowed").GetBoolean());
        Assert.Equal(JsonValueKind.Null, plain.GetProperty("allowDownload").ValueKind);

        // Bad settings: each a 400 naming what is wrong, and no link made.
        var before = app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId));
        foreach (var (body, says) in new[]
        {
            ("""{"requireEmai":true}""", "requireEmai"),
            ("""{"expiresAt":"2020-01-01T00:00:00Z"}""", "past"),
            ("""{"expiresAt":"next tuesday"}""", "expiresAt"),
            ("""{"expiresAt":"2030-01-01T00:00:00"}""", "zone"),
            ("""{"requireEmail":"yes"}""", "requireEmail"),
            ("""{"requireEmail":false,"verifyEmail":true}""", "requireEmail"),
            ("""{"allowDownload":""", "JSON"),
            ("""[1]""", "JSON"),
            // Escapes no string can hold (a lone surrogate), in a value and in a name: the settings' shape, not a 500.
            ("""{"expiresAt":"\ud800"}""", "settings"),
            ("""{"expiresAt":"2030-01-01T00:00:00\udc00Z"}""", "settings"),
            ("""{"\ud800":true}""", "settings"),
        })
        {
            var res = await user.Client.PostAsync($"/api/content/{contentId}/links", new StringContent(body, Encoding.UTF8, "application/json"));
            var (status, title, detail) = await res.ProblemAsync();
            Assert.True(status == 400, $"{body}: {status} {title}");
            Assert.Contains(says, title + " " + detail, StringComparison.OrdinalIgnoreCase);
        }
        Assert.Equal(before, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId)));

        // The list: share links only, newest first, with their settings.
        var list = await user.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/links");
        Assert.Equal([plain.GetProperty("token").GetString(), gated.GetProperty("token").GetString()],
            list.EnumerateArray().Select(l => l.GetProperty("token").GetString()));

        // A change keeps what it leaves out; null takes an expiry away and gives the download choice back to the document.
        var token = gated.GetProperty("token").GetString()!;
        var changed = await PatchAsync(user, contentId, token, """{"disabled":true}""");
        var json = await changed.Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(json.GetProperty("disabled").GetBoolean());
        Assert.True(json.GetProperty("requireEmail").GetBoolean());
        Assert.Equal(JsonValueKind.String, json.GetProperty("expiresAt").ValueKind);
        json = await (await PatchAsync(user, contentId, token, """{"disabled":false,"expiresAt":null,"allowDownload":null,"requireEmail":false}""")).Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(json.GetProperty("disabled").GetBoolean());
        Assert.Equal(JsonValueKind.Null, json.GetProperty("expiresAt").ValueKind);
        Assert.True(json.GetProperty("downloadsAllowed").GetBoolean());
        Assert.False(json.GetProperty("requireEmail").GetBoolean());
        Assert.Equal(HttpStatusCode.BadRequest, (await PatchAsync(user, contentId, token, """{"disabled":"no"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await PatchAsync(user, contentId, token, "")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await PatchAsync(user, contentId, "nosuchtokennosuchtoken", """{"disabled":true}""")).StatusCode);
    }

    [Fact]
    public async Task Only_the_owner_or_a_team_admin_sees_or_changes_a_link_and_a_recipients_link_in_a_message_is_not_a_share_link()
    {
        var (admin, _) = await DocumentAsync(TeamRole.Admin);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var (owner, contentId) = await DocumentAsync(team: teamName);
        var colleague = await app.NewUserAsync(team: teamName);
        var stranger = await app.NewUserAsync(role: TeamRole.Admin);
        var link = await LinkAsync(owner, contentId);
        var token = link.GetProperty("token").GetString()!;

        foreach (var other in new[] { colleague, stranger })
        {
            Assert.Equal(HttpStatusCode.NotFound, (await other.Client.GetAsync($"/api/content/{contentId}/links")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await PatchAsync(other, contentId, token, """{"disabled":true}""")).StatusCode);
            Assert.Equal(HttpStatusCode.NotFound, (await other.Client.PostAsync($"/api/content/{contentId}/links", null)).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(admin, contentId, token, """{"disabled":true}""")).StatusCode);
        Assert.NotNull(app.WithDb(db => db.ContentLinks.Single(l => l.Token == token).DisabledAt));

        // The recipient's own link, made when a message holding the share link is registered: not listed, not changed here.
        var reg = await owner.RegisterSimpleAsync($"<p><a href=\"{link.GetProperty("url").GetString()}\">proposal</a></p>", to: ["alan@encom.test"]);
        var recipientLink = ContentTestApi.Token(ContentTestApi.DocumentLinks(reg.GetProperty("copies")[0].GetProperty("html").GetString()!).Single());
        Assert.Equal(HttpStatusCode.NotFound, (await PatchAsync(owner, contentId, recipientLink, """{"requireEmail":true}""")).StatusCode);
        var list = await owner.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/links");
        Assert.Equal([token], list.EnumerateArray().Select(l => l.GetProperty("token").GetString()));
    }

    [Fact]
    public async Task An_expired_or_turned_off_link_says_so_with_410_everywhere_and_records_nothing_until_turned_on_again()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId);
        var path = PathOf(link);
        var token = link.GetProperty("token").GetString()!;
        var reader = Reader();
        var visit = (await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("visitId").GetString();
        var eventsBefore = Events(contentId);
        var visitsBefore = Visits(contentId);

        await PatchAsync(user, contentId, token, """{"disabled":true}""");
        var page = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.Gone, page.StatusCode);
        Assert.Contains("This link has been turned off — ask the sender for a new one.", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Gone, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.PostAsync($"{path}/visits/{visit}/beats",
            new StringContent("""{"pages":{"1":900},"order":[1],"current":1}""", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.PostAsJsonAsync($"{path}/visits/{visit}/links", new { url = "https://encom.test/", page = 1 })).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.GetAsync(path + "/file")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.GetAsync($"{path}/download?visit={visit}")).StatusCode);
        Assert.Equal(eventsBefore, Events(contentId));
        Assert.Equal(visitsBefore, Visits(contentId));
        Assert.Equal(0, app.WithDb(db => db.DocumentVisits.Where(v => v.ContentId == contentId).Sum(v => v.Downloads + v.MaxPage)));

        await PatchAsync(user, contentId, token, """{"disabled":false}""");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(path)).StatusCode);
        Assert.Equal(eventsBefore + 1, Events(contentId));

        // Expired: the time has passed (set in the database, as a clock would move).
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        page = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.Gone, page.StatusCode);
        Assert.Contains("This link has expired — ask the sender for a new one.", await page.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Gone, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        Assert.Equal(eventsBefore + 1, Events(contentId));
        var listed = (await user.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/links"))[0];
        Assert.True(listed.GetProperty("expired").GetBoolean());

        // A token nobody made: 404, nothing recorded.
        Assert.Equal(HttpStatusCode.NotFound, (await reader.GetAsync("/d/AAAAAAAAAAAAAAAAAAAAAA")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await PostFormAsync(reader, "/d/AAAAAAAAAAAAAAAAAAAAAA/reader", ("email", "dana@example.com"))).StatusCode);
    }

    [Fact]
    public async Task The_viewers_410s_say_by_their_reason_whether_the_link_was_turned_off_or_expired_or_the_document_removed()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId);
        var path = PathOf(link);
        var token = link.GetProperty("token").GetString()!;
        var reader = Reader();
        var visit = (await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("visitId").GetString();

        // The viewer's script reads "reason" (the titles are words for people): each fetch it makes after the page loaded.
        async Task AssertGoneAsync(string reason)
        {
            foreach (var res in new[]
            {
                await reader.PostAsJsonAsync(path + "/visits", new { }),
                await reader.GetAsync(path + "/file"),
                await reader.PostAsync($"{path}/visits/{visit}/beats", new StringContent("""{"pages":{"1":900},"order":[1],"current":1}""", Encoding.UTF8, "application/json")),
            })
            {
                Assert.Equal(HttpStatusCode.Gone, res.StatusCode);
                var problem = await res.Content.ReadFromJsonAsync<JsonElement>();
                Assert.Equal(reason, problem.GetProperty("reason").GetString());
            }
        }

        await PatchAsync(user, contentId, token, """{"disabled":true}""");
        await AssertGoneAsync("turned-off");
        await PatchAsync(user, contentId, token, """{"disabled":false}""");
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        await AssertGoneAsync("expired");
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, (DateTimeOffset?)null)));
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/content/{contentId}")).StatusCode);
        var removed = await reader.PostAsJsonAsync(path + "/visits", new { });
        Assert.Equal(HttpStatusCode.Gone, removed.StatusCode);
        Assert.Equal("removed", (await removed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("reason").GetString());
        removed = await reader.GetAsync(path + "/file");
        Assert.Equal("removed", (await removed.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("reason").GetString());
    }

    [Fact]
    public async Task A_recipients_link_made_from_a_share_link_stops_when_the_share_link_is_turned_off_or_expires_and_works_again_when_it_is_on()
    {
        var (user, contentId) = await DocumentAsync();
        var share = await LinkAsync(user, contentId);
        var shareToken = share.GetProperty("token").GetString()!;
        var reg = await user.RegisterSimpleAsync($"<p><a href=\"{share.GetProperty("url").GetString()}\">proposal</a></p>", to: ["alan@encom.test"]);
        var path = "/d/" + ContentTestApi.Token(ContentTestApi.DocumentLinks(reg.GetProperty("copies")[0].GetProperty("html").GetString()!).Single());
        // Read an hour after the message was registered, as a recipient would (not a gateway's check on delivery).
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.ContentId == contentId)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        var reader = Reader();
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(path)).StatusCode);
        var visit = (await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("visitId").GetString();
        var events = Events(contentId);

        // The share link turned off: the recipient's copy says so everywhere, and records nothing.
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, """{"disabled":true}""")).StatusCode);
        var page = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.Gone, page.StatusCode);
        Assert.Contains("This link has been turned off — ask the sender for a new one.", await page.Content.ReadAsStringAsync());
        var refused = await reader.PostAsJsonAsync(path + "/visits", new { });
        Assert.Equal(HttpStatusCode.Gone, refused.StatusCode);
        Assert.Equal("turned-off", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.Gone, (await reader.GetAsync(path + "/file")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.GetAsync($"{path}/download?visit={visit}")).StatusCode);
        Assert.Equal(HttpStatusCode.Gone, (await reader.PostAsync($"{path}/visits/{visit}/beats",
            new StringContent("""{"pages":{"1":900},"order":[1],"current":1}""", Encoding.UTF8, "application/json"))).StatusCode);
        Assert.Equal(events, Events(contentId));

        // On again: the copy works again.
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, """{"disabled":false}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(path)).StatusCode);
        Assert.Equal(events + 1, Events(contentId));

        // The share link's expiry, set after the message was registered, holds for the copy too once it has passed.
        var soon = DateTimeOffset.UtcNow.AddDays(1);
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, $$"""{"expiresAt":"{{soon.UtcDateTime:yyyy-MM-ddTHH:mm:ssZ}}"}""")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(path)).StatusCode);
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == shareToken)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        page = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.Gone, page.StatusCode);
        Assert.Contains("This link has expired — ask the sender for a new one.", await page.Content.ReadAsStringAsync());
        Assert.Equal("expired", (await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("reason").GetString());
        Assert.Equal(events + 2, Events(contentId));
    }

    [Fact]
    public async Task A_recipients_link_made_from_a_share_link_follows_the_share_links_download_choice_as_it_stands_now()
    {
        var (user, contentId) = await DocumentAsync();
        var share = await LinkAsync(user, contentId);
        var shareToken = share.GetProperty("token").GetString()!;
        var reg = await user.RegisterSimpleAsync($"<p><a href=\"{share.GetProperty("url").GetString()}\">proposal</a></p>", to: ["alan@encom.test"]);
        var path = "/d/" + ContentTestApi.Token(ContentTestApi.DocumentLinks(reg.GetProperty("copies")[0].GetProperty("html").GetString()!).Single());
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.ContentId == contentId)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        var reader = Reader();

        // The share link set to reading only after the message went out: the recipient's copy, with no choice of its
        // own, is reading only too (the document still allows downloads).
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, """{"allowDownload":false}""")).StatusCode);
        var visit = await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(visit.GetProperty("allowDownload").GetBoolean());
        Assert.Equal(JsonValueKind.Null, visit.GetProperty("downloadUrl").ValueKind);
        var refused = await reader.GetAsync($"{path}/download?visit={visit.GetProperty("visitId").GetString()}");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("The sender shares this document for reading only.", await refused.Content.ReadAsStringAsync());

        // Allowed again: the copy downloads again.
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, """{"allowDownload":true}""")).StatusCode);
        visit = await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.True(visit.GetProperty("allowDownload").GetBoolean());
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(visit.GetProperty("downloadUrl").GetString()!)).StatusCode);

        // The share link back to the document's choice, and the document set to reading only: the copy follows it.
        Assert.Equal(HttpStatusCode.OK, (await PatchAsync(user, contentId, shareToken, """{"allowDownload":null}""")).StatusCode);
        await user.Client.PatchAsJsonAsync($"/api/content/{contentId}", new { allowDownload = false });
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync(path + "/download")).StatusCode);
    }

    [Fact]
    public async Task A_links_own_download_choice_overrides_the_documents()
    {
        var (user, contentId) = await DocumentAsync();
        var closed = await LinkAsync(user, contentId, """{"allowDownload":false}""");
        var reader = Reader();
        var visit = await (await reader.PostAsJsonAsync(PathOf(closed) + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>();
        Assert.False(visit.GetProperty("allowDownload").GetBoolean());
        Assert.Equal(JsonValueKind.Null, visit.GetProperty("downloadUrl").ValueKind);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync(PathOf(closed) + "/download")).StatusCode);

        await user.Client.PatchAsJsonAsync($"/api/content/{contentId}", new { allowDownload = false });
        var open = await LinkAsync(user, contentId, """{"allowDownload":true}""");
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(PathOf(open) + "/download")).StatusCode);
        var plain = await LinkAsync(user, contentId);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync(PathOf(plain) + "/download")).StatusCode);
    }

    [Fact]
    public async Task A_reader_asked_for_their_address_is_named_by_it_as_given_and_not_verified_and_the_gate_records_nothing()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"requireEmail":true}""");
        var path = PathOf(link);
        using var feed = await Sse.OpenAsync(user.Client, "/api/feed?after=0");

        // The gate: a form, no script, its own policy; a scanner fetching it and a browser opening it record nothing.
        var reader = Reader();
        var gate = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, gate.StatusCode);
        var html = await gate.Content.ReadAsStringAsync();
        Assert.Contains("id=\"gate-email-input\"", html);
        Assert.DoesNotContain("<script", html);
        Assert.Contains("form-action 'self'", gate.Headers.GetValues("Content-Security-Policy").Single());
        Assert.Equal(HttpStatusCode.OK, (await app.Anonymous("Mozilla/5.0 (compatible; Barracuda Sentinel)").GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await app.Anonymous(null).GetAsync(path)).StatusCode);
        // Past the gate without an address: the visit, the file and the download are refused.
        var refused = await reader.PostAsJsonAsync(path + "/visits", new { });
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("email", (await refused.ProblemAsync()).Title);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync(path + "/file")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.GetAsync(path + "/download")).StatusCode);
        // A forged cookie is no address.
        var forged = app.Anonymous(Chrome);
        forged.DefaultRequestHeaders.Add("Cookie", "et_reader=dana@example.com");
        Assert.Equal(HttpStatusCode.Forbidden, (await forged.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        // Malformed addresses: the form again, saying why, nothing kept.
        foreach (var bad in new[] { "", "dana", "dana@", "Dana <dana@example.com>", "a@b.com, c@d.com", new string('x', 400) + "@example.com" })
        {
            var res = await PostFormAsync(reader, path + "/reader", ("email", bad));
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Contains("id=\"gate-error\"", await res.Content.ReadAsStringAsync());
            Assert.False(res.Headers.Contains("Set-Cookie"), bad);
        }
        Assert.Equal(0, Events(contentId));
        Assert.Equal(0, Visits(contentId));

        // The address given: back to the link, now the viewer, and what the reader does is theirs.
        var given = await PostFormAsync(reader, path + "/reader", ("email", " Dana@Example.com "));
        Assert.Equal(HttpStatusCode.Redirect, given.StatusCode);
        Assert.Equal(path, given.Headers.Location?.OriginalString);
        var viewer = await reader.GetAsync(path);
        Assert.Equal(HttpStatusCode.OK, viewer.StatusCode);
        Assert.Contains("/viewer/assets/", await viewer.Content.ReadAsStringAsync());
        var visit = (await (await reader.PostAsJsonAsync(path + "/visits", new { })).Content.ReadFromJsonAsync<JsonElement>()).GetProperty("visitId").GetString();
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(path + "/file")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await reader.PostAsync($"{path}/visits/{visit}/beats",
            new StringContent("""{"pages":{"1":900,"2":400},"order":[1,2],"current":2}""", Encoding.UTF8, "application/json"))).StatusCode);

        var events = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId).OrderBy(e => e.Id).ToList());
        Assert.Equal([EventKind.DocumentView, EventKind.DocumentPage, EventKind.DocumentPage], events.Select(e => e.Kind));
        Assert.All(events, e => Assert.Equal(("dana@example.com", false, Verdict.Human), (e.ReaderEmail, e.ReaderVerified, e.Verdict)));
        var stored = app.WithDb(db => db.DocumentVisits.Single(v => v.ContentId == contentId));
        Assert.Equal(("dana@example.com", false), (stored.ReaderEmail, stored.ReaderVerified));

        // The owner's live feed, the statistics and the list name her.
        var first = await feed.NextAsync(Patience);
        Assert.Equal("dana@example.com", first.Data.GetProperty("reader").GetString());
        Assert.False(first.Data.GetProperty("readerVerified").GetBoolean());
        var stats = await user.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/stats");
        var readerRow = Assert.Single(stats.GetProperty("readers").EnumerateArray());
        Assert.Equal("dana@example.com (given by the reader, not verified)", readerRow.GetProperty("reader").GetString());
        Assert.Equal(1300, readerRow.GetProperty("activeMs").GetInt64());
        var listed = (await user.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/links"))[0];
        Assert.Equal((1, 1), (listed.GetProperty("reads").GetInt32(), listed.GetProperty("readers").GetInt32()));
    }

    [Fact]
    public async Task An_address_posted_to_the_gate_from_another_site_is_refused_with_400_and_names_no_reader()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"requireEmail":true}""");
        var path = PathOf(link);
        var reader = Reader();
        var gate = await (await reader.GetAsync(path)).Content.ReadAsStringAsync();
        Assert.Contains($"name=\"{FormTokenField}\"", gate);
        var attacker = Reader();
        var attackersToken = await FormTokenAsync(attacker, path);
        Assert.NotNull(attackersToken);

        // Another site's form: no token, or the attacker's own (which is not this browser's); and a browser without
        // the cookie at all. Each: the gate's page again with 400, saying so, and no reader remembered.
        foreach (var (client, fields) in new (HttpClient, (string, string)[])[]
        {
            (reader, [("email", "mallory@example.com")]),
            (reader, [("email", "mallory@example.com"), (FormTokenField, attackersToken!)]),
            (reader, [("email", "mallory@example.com"), (FormTokenField, "forged")]),
            (Reader(), [("email", "mallory@example.com"), (FormTokenField, attackersToken!)]),
            (reader, [("another", "1")]),
        })
        {
            var res = await PostRawFormAsync(client, path + "/reader", fields);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            var html = await res.Content.ReadAsStringAsync();
            Assert.Contains("This form was not sent from this page", html);
            Assert.Contains("id=\"gate-email-input\"", html);
            Assert.DoesNotContain("mallory", html);
            Assert.False(res.Headers.TryGetValues("Set-Cookie", out var cookies) && cookies.Any(c => c.StartsWith("et_reader", StringComparison.Ordinal)));
        }
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        Assert.Contains("id=\"gate-email-input\"", await (await reader.GetAsync(path)).Content.ReadAsStringAsync());
        Assert.Equal(0, Events(contentId));
        Assert.Equal(0, Visits(contentId));

        // The gate's own form, with its token, names the reader.
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/reader", ("email", "dana@example.com"))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        Assert.Equal("dana@example.com", app.WithDb(db => db.DocumentVisits.Single(v => v.ContentId == contentId).ReaderEmail));
    }

    [Fact]
    public async Task The_document_pages_expiry_is_read_in_the_offset_the_pages_script_sends_UTC_without_it_and_a_malformed_offset_is_refused()
    {
        const string password = "Correct-Horse-9";
        var user = await app.NewUserAsync(password: password);
        var item = await user.UploadOkAsync(await Documents.PdfAsync(1), "Proposal.pdf");
        var contentId = item.GetProperty("id").GetGuid();
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var login = await browser.GetStringAsync("/login");
        Assert.Equal(HttpStatusCode.Redirect, (await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = user.Email, ["Password"] = password,
            ["__RequestVerificationToken"] = Regex.Match(login, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value,
        }))).StatusCode);
        var page = await browser.GetStringAsync($"/documents/{contentId}");
        var antiforgery = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var year = DateTime.UtcNow.Year + 1;

        Task<HttpResponseMessage> NewLinkAsync(string expires, string? offset) => browser.PostAsync($"/documents/{contentId}?handler=NewLink",
            new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["expires"] = expires, ["downloads"] = "document", ["reader"] = "none", ["__RequestVerificationToken"] = antiforgery,
                ["offset"] = offset ?? "",
            }));
        List<DateTimeOffset?> Stored() => app.WithDb(db => db.ContentLinks.Where(l => l.ContentId == contentId).Select(l => l.ExpiresAt).ToList());

        // 18:00 in Berlin in winter (the browser says -60) and in summer (-120); 18:00 with no offset is UTC.
        Assert.Equal(HttpStatusCode.Redirect, (await NewLinkAsync($"{year}-01-15T18:00", "-60")).StatusCode);
        Assert.Contains(new DateTimeOffset(year, 1, 15, 17, 0, 0, TimeSpan.Zero), Stored());
        Assert.Equal(HttpStatusCode.Redirect, (await NewLinkAsync($"{year}-07-15T18:00", "-120")).StatusCode);
        Assert.Contains(new DateTimeOffset(year, 7, 15, 16, 0, 0, TimeSpan.Zero), Stored());
        Assert.Equal(HttpStatusCode.Redirect, (await NewLinkAsync($"{year}-01-15T18:00", null)).StatusCode);
        Assert.Contains(new DateTimeOffset(year, 1, 15, 18, 0, 0, TimeSpan.Zero), Stored());

        // A malformed offset: the page again with 400 and the reason, and no link made.
        var count = app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId));
        foreach (var bad in new[] { "Europe/Berlin", "-60.5", "9000" })
        {
            var res = await NewLinkAsync($"{year}-01-15T18:00", bad);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            Assert.Contains("is not a time-zone offset", System.Net.WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync()));
        }
        Assert.Equal(count, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId)));
    }

    /// <summary>
    /// The document page's link forms. 31 December 9999 typed west of UTC is past the last time there is: it was an error
    /// page (500), and is now refused saying so; a refused new link's form comes back as it was filled in (it came back
    /// empty). A link whose expiry has seconds (made with the API or an add-in) shows it to the minute, and saving its
    /// other settings keeps that expiry: taken for a new one, it was refused as past once the link had expired, so the
    /// link's downloads and reader could not be changed here at all.
    /// </summary>
    [Fact]
    public async Task The_document_pages_link_forms_refuse_an_impossible_expiry_plainly_keep_what_was_chosen_and_keep_an_expiry_with_seconds()
    {
        const string password = "Correct-Horse-9";
        var user = await app.NewUserAsync(password: password);
        var item = await user.UploadOkAsync(await Documents.PdfAsync(1), "Proposal.pdf");
        var contentId = item.GetProperty("id").GetGuid();
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false, HandleCookies = true });
        var login = await browser.GetStringAsync("/login");
        Assert.Equal(HttpStatusCode.Redirect, (await browser.PostAsync("/login", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Email"] = user.Email, ["Password"] = password,
            ["__RequestVerificationToken"] = Regex.Match(login, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value,
        }))).StatusCode);
        var antiforgery = Regex.Match(await browser.GetStringAsync($"/documents/{contentId}"), "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Task<HttpResponseMessage> PostAsync(string handler, string expires, string offset, string downloads, string reader) =>
            browser.PostAsync($"/documents/{contentId}?handler={handler}", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["expires"] = expires, ["offset"] = offset, ["downloads"] = downloads, ["reader"] = reader, ["__RequestVerificationToken"] = antiforgery,
            }));
        int Links() => app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId));
        static string NewLinkForm(string html) => Regex.Match(html, "<form[^>]*id=\"new-share-link\".*?</form>", RegexOptions.Singleline).Value;
        var before = Links();

        // The last minute of 9999 in New York (the browser's offset: +300): later than any time there is.
        var res = await PostAsync("NewLink", "9999-12-31T23:59", "300", "no", "email");
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        var html = System.Net.WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains("'9999-12-31T23:59' is later than any time this server can keep", html);
        var form = NewLinkForm(html);
        Assert.Contains("<option value=\"no\" selected=\"selected\">forbidden</option>", form);
        Assert.Contains("<option value=\"email\" selected=\"selected\">asks for their email</option>", form);
        // And a time already past, in Berlin in winter: refused in the page's words, the time kept (in UTC, which the
        // page's script shows in the reader's zone again) with the rest of the form.
        var lastYear = DateTime.UtcNow.Year - 1;
        res = await PostAsync("NewLink", $"{lastYear}-01-15T18:00", "-60", "yes", "email");
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        html = System.Net.WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains($"The expiry ({lastYear}-01-15T18:00) is in the past.", html);
        form = NewLinkForm(html);
        Assert.Contains($"id=\"new-link-expires\" value=\"{lastYear}-01-15T17:00\"", form);
        Assert.Contains("<option value=\"yes\" selected=\"selected\">allowed</option>", form);
        Assert.Contains("<option value=\"email\" selected=\"selected\">asks for their email</option>", form);
        Assert.Equal(before, Links());

        // Links whose expiries have seconds, as the API keeps them: one to come, one past.
        var now = DateTimeOffset.UtcNow;
        var minute = now.AddTicks(-(now.UtcTicks % TimeSpan.TicksPerMinute));
        var (coming, past) = (minute.AddDays(3).AddSeconds(43), minute.AddMinutes(-5).AddSeconds(43));
        var comingLink = (await LinkAsync(user, contentId, $$"""{"expiresAt":"{{coming:O}}"}""")).GetProperty("token").GetString()!;
        var pastLink = (await LinkAsync(user, contentId, $$"""{"expiresAt":"{{minute.AddDays(1):O}}"}""")).GetProperty("token").GetString()!;
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == pastLink).ExecuteUpdateAsync(u => u.SetProperty(l => l.ExpiresAt, past)));
        var page = await browser.GetStringAsync($"/documents/{contentId}");
        foreach (var (token, expiry) in new[] { (comingLink, coming), (pastLink, past) })
        {
            // The form shows it to the minute, and posts it back so (here without the page's script: in UTC).
            var shown = Regex.Match(page, $"form=\"link-form-{token}\" value=\"([^\"]*)\"").Groups[1].Value;
            Assert.Equal(expiry.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", System.Globalization.CultureInfo.InvariantCulture), shown);
            res = await browser.PostAsync($"/documents/{contentId}?handler=UpdateLink&token={token}", new FormUrlEncodedContent(new Dictionary<string, string>
            {
                ["expires"] = shown, ["offset"] = "", ["downloads"] = "no", ["reader"] = "none", ["__RequestVerificationToken"] = antiforgery,
            }));
            Assert.True(res.StatusCode == HttpStatusCode.Redirect, System.Net.WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync()));
            var stored = app.WithDb(db => db.ContentLinks.Single(l => l.Token == token));
            Assert.False(stored.AllowDownload);
            Assert.Equal(expiry, stored.ExpiresAt);
        }

        // A change of that link's expiry to a past time is refused as before, the form as it was filled in.
        res = await browser.PostAsync($"/documents/{contentId}?handler=UpdateLink&token={comingLink}", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["expires"] = $"{lastYear}-03-01T09:30", ["offset"] = "", ["downloads"] = "yes", ["reader"] = "email", ["__RequestVerificationToken"] = antiforgery,
        }));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        html = System.Net.WebUtility.HtmlDecode(await res.Content.ReadAsStringAsync());
        Assert.Contains($"The expiry ({lastYear}-03-01T09:30) is in the past.", html);
        Assert.Contains($"form=\"link-form-{comingLink}\" value=\"{lastYear}-03-01T09:30\"", html);
        Assert.Equal(coming, app.WithDb(db => db.ContentLinks.Single(l => l.Token == comingLink).ExpiresAt));
    }

    [Fact]
    public async Task Verifying_readers_is_refused_with_a_clear_reason_when_the_server_has_no_relay()
    {
        var (user, contentId) = await DocumentAsync();
        var before = app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId));
        var res = await user.Client.PostAsync($"/api/content/{contentId}/links", new StringContent("""{"requireEmail":true,"verifyEmail":true}""", Encoding.UTF8, "application/json"));
        var (status, title, detail) = await res.ProblemAsync();
        Assert.Equal(400, status);
        Assert.Contains("Mail:Smtp:Host", detail);
        Assert.Equal(before, app.WithDb(db => db.ContentLinks.Count(l => l.ContentId == contentId)));
        var link = await LinkAsync(user, contentId, """{"requireEmail":true}""");
        Assert.Equal(HttpStatusCode.BadRequest, (await PatchAsync(user, contentId, link.GetProperty("token").GetString()!, """{"verifyEmail":true}""")).StatusCode);
        Assert.Equal(ReaderEmailGate.Email, app.WithDb(db => db.ContentLinks.Single(l => l.Token == link.GetProperty("token").GetString()).EmailGate));
    }
}

/// <summary>The mailed code, with the server's relay: a fake one on a loopback port that keeps what it is sent.</summary>
public abstract class ShareLinkVerifyTests(MailRelayApp app) : ShareLinkTestBase(app)
{
    readonly MailRelayApp app = app;

    /// <summary>The reader's lockout ends (moved back in the database); a new browser asks for a new code, the second mailed.</summary>
    async Task<(HttpClient Reader, string Code)> LockoutOverAsync(string path, string email)
    {
        await app.WithDbAsync(db => db.ShareLinkCodes.Where(c => c.Email == email)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.LockedUntil, DateTimeOffset.UtcNow.AddMinutes(-1))));
        var again = Reader();
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(again, path + "/reader", ("email", email))).StatusCode);
        return (again, CodeFor(email, 2));
    }

    string CodeFor(string email, int nth = 1)
    {
        var mails = app.Relay.Messages.Where(m => m.RcptTo.Contains(email)).ToList();
        Assert.True(mails.Count >= nth, $"{mails.Count} mails to {email}");
        return Regex.Match(mails[nth - 1].Message.TextBody!, @"\b(\d{6})\b").Groups[1].Value;
    }

    [Fact]
    public async Task A_reader_proves_their_address_with_the_mailed_code_and_is_remembered_for_30_days_as_verified()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"verifyEmail":true}""");
        Assert.True(link.GetProperty("requireEmail").GetBoolean());
        var path = PathOf(link);
        var email = $"r{Guid.NewGuid():N}"[..10] + "@example.com";
        var reader = Reader();

        Assert.Contains("mail you a code", await (await reader.GetAsync(path)).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/reader", ("email", email))).StatusCode);
        var mail = Assert.Single(app.Relay.Messages, m => m.RcptTo.Contains(email));
        Assert.Contains("Proposal.pdf", mail.Message.Subject);
        var code = CodeFor(email);
        // The code form now; not the viewer, and no visit.
        var codePage = await (await reader.GetAsync(path)).Content.ReadAsStringAsync();
        Assert.Contains("id=\"gate-code\"", codePage);
        // The gate keeps no cache the way its forms' antiforgery token wants it: the token does not override the
        // page's headers with a warning in the log at every gate page.
        Assert.False(app.Log.Has(Microsoft.Extensions.Logging.LogLevel.Warning, "headers have been overridden"),
            "the antiforgery token overrode the gate page's cache headers");
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);

        var wrong = code == "000000" ? "111111" : "000000";
        var res = await PostFormAsync(reader, path + "/code", ("code", wrong));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("4 tries left", await res.Content.ReadAsStringAsync());
        res = await PostFormAsync(reader, path + "/code", ("code", code[..3] + " " + code[3..]));
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        var cookie = res.Headers.GetValues("Set-Cookie").Single(c => c.StartsWith("et_reader=", StringComparison.Ordinal));
        var expires = DateTimeOffset.Parse(Regex.Match(cookie, "expires=([^;]+)").Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
        Assert.InRange(expires - DateTimeOffset.UtcNow, TimeSpan.FromDays(29.9), TimeSpan.FromDays(30.1));
        Assert.Contains($"path=/d/{link.GetProperty("token").GetString()}", cookie);

        Assert.Contains("/viewer/assets/", await (await reader.GetAsync(path)).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.OK, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        var view = app.WithDb(db => db.Events.Single(e => e.ContentId == contentId && e.Kind == EventKind.DocumentView));
        Assert.Equal((email, true), (view.ReaderEmail, view.ReaderVerified));
        var stats = await user.Client.GetFromJsonAsync<JsonElement>($"/api/content/{contentId}/stats");
        Assert.Equal($"{email} (verified)", stats.GetProperty("readers")[0].GetProperty("reader").GetString());
        // The code is spent.
        Assert.Equal(0, app.WithDb(db => db.ShareLinkCodes.Count(c => c.Email == email)));
    }

    [Fact]
    public async Task Wrong_codes_lock_the_reader_out_of_that_link_and_expired_codes_and_codes_without_an_address_are_refused()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"requireEmail":true,"verifyEmail":true}""");
        var path = PathOf(link);
        var email = $"r{Guid.NewGuid():N}"[..10] + "@example.com";
        var reader = Reader();

        // A code with no address waiting for it.
        var res = await PostFormAsync(reader, path + "/code", ("code", "123456"));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("email address first", await res.Content.ReadAsStringAsync());

        await PostFormAsync(reader, path + "/reader", ("email", email));
        var code = CodeFor(email);
        var wrong = code == "000000" ? "111111" : "000000";
        for (var i = 1; i < EmailTracking.Server.Content.ShareLinkGate.MaxAttempts; i++)
            Assert.Equal(HttpStatusCode.BadRequest, (await PostFormAsync(reader, path + "/code", ("code", wrong))).StatusCode);
        res = await PostFormAsync(reader, path + "/code", ("code", wrong));
        Assert.Equal(HttpStatusCode.TooManyRequests, res.StatusCode);
        Assert.Contains("Too many wrong codes", await res.Content.ReadAsStringAsync());
        // Locked: the right code no longer opens it, and asking for a new one (cookies cleared) is refused too.
        await PostFormAsync(reader, path + "/reader", ("email", email));
        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostFormAsync(Reader(), path + "/reader", ("email", email))).StatusCode);
        Assert.Single(app.Relay.Messages, m => m.RcptTo.Contains(email));
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);

        // The lockout over (moved in the database): a new code, which expires.
        var (again, second) = await LockoutOverAsync(path, email);
        await app.WithDbAsync(db => db.ShareLinkCodes.Where(c => c.Email == email)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.ExpiresAt, DateTimeOffset.UtcNow.AddMinutes(-1))));
        res = await PostFormAsync(again, path + "/code", ("code", second));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("expired", await res.Content.ReadAsStringAsync());
        Assert.Equal(0, Events(contentId));
        Assert.Equal(0, Visits(contentId));
    }

    /// <summary>
    /// Posts these codes all at once from one reader's browser (one antiforgery token, its cookies): every request waits
    /// at a barrier, then all go. Answers each one's status and page.
    /// </summary>
    static Task<(string Code, HttpStatusCode Status, string Html)[]> BurstAsync(HttpClient reader, string path, IReadOnlyList<string> codes) =>
        BurstFormAsync(reader, path + "/code", "code", codes);

    /// <summary>Posts one gate form with each of these values of one field all at once (see <see cref="BurstAsync"/>).</summary>
    static async Task<(string Value, HttpStatusCode Status, string Html)[]> BurstFormAsync(HttpClient reader, string form, string field, IReadOnlyList<string> values)
    {
        var token = await FormTokenAsync(reader, form);
        Assert.NotNull(token);
        var start = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
        var posts = values.Select(value => Task.Run(async () =>
        {
            await start.Task;
            var res = await PostRawFormAsync(reader, form, (field, value), (FormTokenField, token!));
            return (value, res.StatusCode, await res.Content.ReadAsStringAsync());
        })).ToList();
        start.SetResult();
        return await Task.WhenAll(posts).WaitAsync(TimeSpan.FromSeconds(60));
    }

    [Fact]
    public async Task Codes_asked_for_all_at_once_mail_no_more_than_the_hours_limit_and_the_last_one_mailed_opens_the_document()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"requireEmail":true,"verifyEmail":true}""");
        var path = PathOf(link);
        var email = $"r{Guid.NewGuid():N}"[..10] + "@example.com";
        var reader = Reader();
        // Thirty requests for a code to one address at once, the first ones for a reader with no row yet (two first
        // requests meet the unique index): no error, and no more mails than one at a time would send.
        var answers = await BurstFormAsync(reader, path + "/reader", "email", Enumerable.Repeat(email, 30).ToList());
        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.Redirect or HttpStatusCode.TooManyRequests, $"{(int)a.Status}: {a.Html[..Math.Min(300, a.Html.Length)]}"));
        var mailed = app.Relay.Messages.Count(m => m.RcptTo.Contains(email));
        Assert.Equal(EmailTracking.Server.Content.ShareLinkGate.MaxCodesPerHour, mailed);
        Assert.Equal(mailed, answers.Count(a => a.Status == HttpStatusCode.Redirect));
        var row = app.WithDb(db => db.ShareLinkCodes.AsNoTracking().Single(c => c.Email == email));
        Assert.Equal(mailed, row.CodesSent);
        // One more is refused for the hour; the code stored is one of those mailed, and it opens the document.
        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostFormAsync(Reader(), path + "/reader", ("email", email))).StatusCode);
        var codes = Enumerable.Range(1, mailed).Select(n => CodeFor(email, n)).ToList();
        var right = codes.Where(c => row.CodeHash == Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(Encoding.UTF8.GetBytes($"{row.Id:N}:{c}")))).ToList();
        Assert.NotEmpty(right);
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/code", ("code", right[0]))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
    }

    /// <summary>The answers that say a code was compared with the one mailed and was not it ("… tries left").</summary>
    static int CheckedWrong(IEnumerable<(string Code, HttpStatusCode Status, string Html)> answers) =>
        answers.Count(a => a.Status == HttpStatusCode.BadRequest && a.Html.Contains("That is not the code we mailed", StringComparison.Ordinal));

    [Fact]
    public async Task Codes_sent_all_at_once_get_no_more_tries_than_one_at_a_time_and_the_right_one_is_not_taken_after_the_last_try()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"requireEmail":true,"verifyEmail":true}""");
        var path = PathOf(link);
        var email = $"r{Guid.NewGuid():N}"[..10] + "@example.com";
        var max = EmailTracking.Server.Content.ShareLinkGate.MaxAttempts;
        var reader = Reader();
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/reader", ("email", email))).StatusCode);
        var code = CodeFor(email);
        // Fifty wrong codes, none of them the right one, all different (as someone guessing would send them).
        var wrong = Enumerable.Range(0, 60).Select(i => ((int.Parse(code, System.Globalization.CultureInfo.InvariantCulture) + 1 + i * 7919) % 1_000_000).ToString("D6", System.Globalization.CultureInfo.InvariantCulture))
            .Where(c => c != code).Distinct().Take(50).ToList();

        // All at once: no more of them are compared with the mailed code than one at a time would be. The last try
        // allowed locks the reader out; each of the others is refused without being checked.
        var answers = await BurstAsync(reader, path, wrong);
        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.BadRequest or HttpStatusCode.TooManyRequests, $"{(int)a.Status}"));
        var checkedWrong = CheckedWrong(answers);
        Assert.True(checkedWrong <= max - 1, $"{checkedWrong} wrong codes were checked and answered with the tries left (at most {max - 1})");
        Assert.Contains(answers, a => a.Status == HttpStatusCode.TooManyRequests && a.Html.Contains("Too many wrong codes", StringComparison.Ordinal));
        var row = app.WithDb(db => db.ShareLinkCodes.AsNoTracking().Single(c => c.Email == email));
        Assert.Equal(max, row.FailedAttempts);
        Assert.NotNull(row.LockedUntil);
        Assert.Equal("", row.CodeHash);
        // The right code after them opens nothing, and no new code is mailed while the lockout lasts.
        Assert.NotEqual(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/code", ("code", code))).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostFormAsync(Reader(), path + "/reader", ("email", email))).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);

        // The lockout over, a new code with two tries left, and the right code in the middle of a burst of wrong ones:
        // at most two codes are compared in all, so the right one opens the document only when it took one of the two
        // tries; after the last try it is refused like the wrong ones.
        var (again, second) = await LockoutOverAsync(path, email);
        await app.WithDbAsync(db => db.ShareLinkCodes.Where(c => c.Email == email)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.FailedAttempts, max - 2)));
        var mixed = wrong.Where(c => c != second).Take(30).ToList();
        mixed.Insert(15, second);
        answers = await BurstAsync(again, path, mixed);
        Assert.All(answers, a => Assert.True(a.Status is HttpStatusCode.BadRequest or HttpStatusCode.TooManyRequests or HttpStatusCode.Redirect, $"{(int)a.Status}"));
        var opened = answers.Count(a => a.Status == HttpStatusCode.Redirect);
        Assert.True(opened <= 1, $"{opened} codes opened the document");
        Assert.True(opened == 0 || answers.Single(a => a.Status == HttpStatusCode.Redirect).Code == second, "a wrong code opened the document");
        checkedWrong = CheckedWrong(answers);
        Assert.True(checkedWrong + opened <= 2, $"{checkedWrong} wrong codes were checked and answered with the tries left, and {opened} right one, with two tries left");
        Assert.True(checkedWrong <= 1, $"{checkedWrong} wrong codes were answered with the tries left, with two tries left");
        if (opened == 0)
        {
            // The tries were taken by wrong codes: locked out, and the right code is refused now as well.
            Assert.NotNull(app.WithDb(db => db.ShareLinkCodes.AsNoTracking().Single(c => c.Email == email)).LockedUntil);
            Assert.NotEqual(HttpStatusCode.Redirect, (await PostFormAsync(again, path + "/code", ("code", second))).StatusCode);
            Assert.Equal(HttpStatusCode.TooManyRequests, (await PostFormAsync(Reader(), path + "/reader", ("email", email))).StatusCode);
            Assert.Equal(HttpStatusCode.Forbidden, (await again.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        }
        else
        {
            // The right code took a try: the reader reads, the code is spent.
            Assert.Equal(HttpStatusCode.OK, (await again.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
            Assert.Equal(0, app.WithDb(db => db.ShareLinkCodes.Count(c => c.Email == email)));
        }
    }

    [Fact]
    public async Task Gate_forms_posted_from_another_site_mail_no_code_check_no_code_and_forget_nothing()
    {
        var (user, contentId) = await DocumentAsync();
        var link = await LinkAsync(user, contentId, """{"verifyEmail":true}""");
        var path = PathOf(link);
        var victim = $"v{Guid.NewGuid():N}"[..10] + "@example.com";
        var reader = Reader();
        await reader.GetAsync(path);

        // Another site makes the reader's browser ask for a code to an address: refused, nothing mailed or stored.
        var res = await PostRawFormAsync(reader, path + "/reader", ("email", victim));
        Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
        Assert.Contains("This form was not sent from this page", await res.Content.ReadAsStringAsync());
        Assert.DoesNotContain(app.Relay.Messages, m => m.RcptTo.Contains(victim));
        Assert.Equal(0, app.WithDb(db => db.ShareLinkCodes.Count(c => c.Email == victim)));

        // The reader asks for their own code on the page; then posts from elsewhere: a code (even the right one), and
        // "use another address". Neither counts a try, checks the code or drops the address waiting for it.
        var email = $"r{Guid.NewGuid():N}"[..10] + "@example.com";
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/reader", ("email", email))).StatusCode);
        var code = CodeFor(email);
        foreach (var (target, fields) in new (string, (string, string)[])[]
        {
            ("/code", [("code", code)]),
            ("/code", [("code", code), (FormTokenField, "forged")]),
            ("/reader", [("another", "1")]),
            ("/reader", [("email", email)]),
        })
        {
            res = await PostRawFormAsync(reader, path + target, fields);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            var html = await res.Content.ReadAsStringAsync();
            Assert.Contains("This form was not sent from this page", html);
            Assert.Contains("id=\"gate-code\"", html);
            Assert.False(res.Headers.Contains("Set-Cookie"), target);
        }
        Assert.Single(app.Relay.Messages, m => m.RcptTo.Contains(email));
        Assert.Equal(0, app.WithDb(db => db.ShareLinkCodes.Single(c => c.Email == email).FailedAttempts));
        Assert.Equal(HttpStatusCode.Forbidden, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
        Assert.Contains("id=\"gate-code\"", await (await reader.GetAsync(path)).Content.ReadAsStringAsync());

        // The code typed on the page itself opens the document.
        Assert.Equal(HttpStatusCode.Redirect, (await PostFormAsync(reader, path + "/code", ("code", code))).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await reader.PostAsJsonAsync(path + "/visits", new { })).StatusCode);
    }
}

public sealed class ShareLinkControlsOnSqlite(SqliteApp app) : ShareLinkControlsTests(app), IClassFixture<SqliteApp>;

public sealed class ShareLinkControlsOnPostgres(PostgresApp app) : ShareLinkControlsTests(app), IClassFixture<PostgresApp>;

public sealed class ShareLinkVerifyOnSqlite(MailRelaySqliteApp app) : ShareLinkVerifyTests(app), IClassFixture<MailRelaySqliteApp>;

public sealed class ShareLinkVerifyOnPostgres(MailRelayPostgresApp app) : ShareLinkVerifyTests(app), IClassFixture<MailRelayPostgresApp>;
