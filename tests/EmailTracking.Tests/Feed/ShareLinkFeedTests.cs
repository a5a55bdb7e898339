using System.Net;
using System.Net.Http.Json;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Feed;

/// <summary>
/// A share link pasted where no tracked message goes (a chat, a web page, a mail sent untracked): its reads reach the
/// owner's live feed and their team admins' like any other activity, with the same verdicts.
/// </summary>
public abstract class ShareLinkFeedTests(AppFactory app)
{
    const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>A team admin, a member of their team who uploads a 4-page document and makes a share link that no message holds.</summary>
    async Task<(TestUser Admin, TestUser Member, Guid ContentId, string Share)> SharedAsync()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        var teamName = app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name);
        var member = await app.NewUserAsync(team: teamName, role: TeamRole.Member);
        var item = await member.UploadOkAsync(await Documents.PdfAsync(4), "Proposal.pdf");
        var share = TestApi.Path(await member.ShareLinkAsync(item));
        // Made an hour ago, as a message is sent: opened seconds after it was made (a gateway checking a mail on
        // delivery), a visit is a scanner's.
        var token = ContentTestApi.Token("http://localhost" + share);
        await app.WithDbAsync(db => db.ContentLinks.Where(l => l.Token == token)
            .ExecuteUpdateAsync(u => u.SetProperty(l => l.CreatedAt, DateTimeOffset.UtcNow.AddHours(-1))));
        return (admin, member, item.GetProperty("id").GetGuid(), share);
    }

    static async Task<string> StartVisitAsync(HttpClient client, string link)
    {
        var res = await client.PostAsJsonAsync(link + "/visits", new { });
        var text = await res.Content.ReadAsStringAsync();
        Assert.True(res.IsSuccessStatusCode, text);
        return JsonDocument.Parse(text).RootElement.GetProperty("visitId").GetString()!;
    }

    static Task<HttpResponseMessage> PostAsync(HttpClient client, string path, string json) =>
        client.PostAsync(path, new StringContent(json, Encoding.UTF8, "application/json"));

    [Fact]
    public async Task Views_pages_links_and_downloads_through_a_share_link_outside_any_message_stream_live_and_resume_without_loss_or_duplicates()
    {
        var (admin, member, contentId, share) = await SharedAsync();
        var stranger = await app.NewUserAsync(role: TeamRole.Admin);
        using var own = await Sse.OpenAsync(member.Client, "/api/feed?after=0");
        using var team = await Sse.OpenAsync(admin.Client, "/api/feed?scope=team&after=0");
        using var elsewhere = await Sse.OpenAsync(stranger.Client, "/api/feed?scope=team&after=0");

        var reader = app.Anonymous(Chrome);
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync(share)).StatusCode);
        var first = await own.NextAsync(Patience);
        Assert.Equal("document-view", first.Data.GetProperty("kind").GetString());
        Assert.Equal("human", first.Data.GetProperty("verdict").GetString());
        Assert.Equal(JsonValueKind.Null, first.Data.GetProperty("messageId").ValueKind);
        Assert.Equal(JsonValueKind.Null, first.Data.GetProperty("recipient").ValueKind);
        Assert.Equal(contentId, first.Data.GetProperty("contentId").GetGuid());
        Assert.Equal("Proposal.pdf", first.Data.GetProperty("document").GetString());
        Assert.Equal(first.Id, (await team.NextAsync(Patience)).Id);

        // The stream drops; the reader goes on while nobody listens: two pages, a link inside the document (its retry
        // counts once), a download.
        var visit = await StartVisitAsync(reader, share);
        Assert.Equal(HttpStatusCode.NoContent, (await PostAsync(reader, $"{share}/visits/{visit}/beats", """{"pages":{"1":400},"order":[1],"current":1}""")).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await PostAsync(reader, $"{share}/visits/{visit}/beats", """{"pages":{"1":400,"3":200},"order":[1,3],"current":3}""")).StatusCode);
        for (var i = 0; i < 2; i++)
        {
            Assert.Equal(HttpStatusCode.NoContent, (await PostAsync(reader, $"{share}/visits/{visit}/links", """{"url":"https://encom.test/pricing","page":3}""")).StatusCode);
        }
        Assert.Equal(HttpStatusCode.OK, (await reader.GetAsync($"{share}/download?visit={visit}")).StatusCode);

        using var resumed = await Sse.OpenAsync(member.Client, "/api/feed", lastEventId: first.Id);
        var missed = new List<(long Id, JsonElement Data)>();
        while (missed.Count < 4) missed.Add(await resumed.NextAsync(Patience));
        Assert.Equal(["document-page@1", "document-page@3", "document-link@3", "download@"],
            missed.Select(e => $"{e.Data.GetProperty("kind").GetString()}@{(e.Data.GetProperty("page").ValueKind == JsonValueKind.Number ? e.Data.GetProperty("page").GetInt32() : "")}"));
        Assert.Equal("https://encom.test/pricing", missed[2].Data.GetProperty("linkUrl").GetString());
        Assert.All(missed, e => Assert.Equal(JsonValueKind.Null, e.Data.GetProperty("messageId").ValueKind));
        Assert.True(missed[0].Id > first.Id && missed.Zip(missed.Skip(1)).All(p => p.First.Id < p.Second.Id));
        // Nothing is sent twice: what comes next is what happened next, another reader opening the link.
        await app.Anonymous(Chrome).GetAsync(share);
        var next = await resumed.NextAsync(Patience);
        Assert.Equal("document-view", next.Data.GetProperty("kind").GetString());
        Assert.True(next.Id > missed[^1].Id);
        // The team admin's feed had all of it, in order.
        var teamSaw = new List<long>();
        while (teamSaw.Count < 5) teamSaw.Add((await team.NextAsync(Patience)).Id);
        Assert.Equal(missed.Select(e => e.Id).Append(next.Id), teamSaw);

        // Another team's feed shows none of it: the first thing it gets is its own.
        var theirs = await stranger.RegisterSimpleAsync();
        await app.Anonymous().GetAsync(TestApi.Path(theirs.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        Assert.Equal(theirs.GetProperty("id").GetString(), (await elsewhere.NextAsync(Patience)).Data.GetProperty("messageId").GetString());

        // The document's page lists the link under the share link's readers.
        var stats = await member.Client.GetJsonAsync($"/api/content/{contentId}/stats");
        var readers = Assert.Single(stats.GetProperty("readers").EnumerateArray());
        Assert.Equal("Readers of the share link", readers.GetProperty("reader").GetString());
        Assert.Equal(["https://encom.test/pricing@3x1"],
            readers.GetProperty("links").EnumerateArray().Select(l => $"{l.GetProperty("url").GetString()}@{l.GetProperty("page").GetInt32()}x{l.GetProperty("times").GetInt32()}"));
    }

    [Fact]
    public async Task A_previewer_fetching_a_share_link_is_a_machine_event_hidden_by_default_and_the_senders_own_view_is_not_recorded()
    {
        var (_, member, contentId, share) = await SharedAsync();
        using var own = await Sse.OpenAsync(member.Client, "/api/feed?after=0");
        // The sender checks their link: their device is known, nothing is recorded.
        var cookie = $"{DeviceCookie.Name}={app.Services.GetRequiredService<DeviceCookie>().Protect(member.Id)}";
        var sender = app.Anonymous(Chrome);
        sender.DefaultRequestHeaders.Add("Cookie", cookie);
        Assert.Equal(HttpStatusCode.OK, (await sender.GetAsync(share)).StatusCode);
        // The chat the link was pasted in fetches it for a preview; then a person opens it.
        await app.Anonymous("LinkedInBot/1.0 (compatible; Mozilla/5.0; Apache-HttpClient +http://www.linkedin.com)").GetAsync(share);
        await app.Anonymous(Chrome).GetAsync(share);

        var bot = await own.NextAsync(Patience);
        Assert.Equal("document-view", bot.Data.GetProperty("kind").GetString());
        Assert.Equal("bot", bot.Data.GetProperty("verdict").GetString());
        var person = await own.NextAsync(Patience);
        Assert.Equal("human", person.Data.GetProperty("verdict").GetString());
        Assert.Equal(2, app.WithDb(db => db.Events.Count(e => e.ContentId == contentId)));

        // Machines are hidden by default, as any machine's open or click is: the same filter, counted as hidden.
        var shown = app.WithDb(db => db.Events.Where(e => e.ContentId == contentId).Where(EmailTracking.Server.Feed.ActivityItem.ShownByDefaultFilter).Select(e => e.Id).ToList());
        Assert.Equal([person.Id], shown);
        Assert.Equal(1, app.WithDb(db => db.Events.Where(e => e.ContentId == contentId).Count(EmailTracking.Server.Feed.ActivityItem.HiddenByDefaultFilter)));
    }

    [Fact]
    public async Task Links_followed_through_a_share_link_are_limited_per_reader_like_a_recipients()
    {
        var (_, _, contentId, share) = await SharedAsync();
        var reader = app.Anonymous(Chrome);
        var visit = await StartVisitAsync(reader, share);
        for (var i = 0; i < EmailTracking.Server.Content.ViewerApi.MaxLinksPerHour; i++)
        {
            Assert.Equal(HttpStatusCode.NoContent, (await PostAsync(reader, $"{share}/visits/{visit}/links", $$"""{"url":"https://encom.test/p{{i}}","page":1}""")).StatusCode);
        }
        // A new visit from the same reader does not start the count again.
        var again = await StartVisitAsync(reader, share);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await PostAsync(reader, $"{share}/visits/{again}/links", """{"url":"https://encom.test/more","page":1}""")).StatusCode);
        Assert.Equal(EmailTracking.Server.Content.ViewerApi.MaxLinksPerHour,
            app.WithDb(db => db.Events.Count(e => e.ContentId == contentId && e.Kind == EventKind.DocumentLink && e.TrackedMessageId == null)));
    }
}

public sealed class ShareLinkFeedOnSqlite(SqliteApp app) : ShareLinkFeedTests(app), IClassFixture<SqliteApp>;

public sealed class ShareLinkFeedOnPostgres(PostgresApp app) : ShareLinkFeedTests(app), IClassFixture<PostgresApp>;
