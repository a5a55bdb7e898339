using System.Net;
using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Tests.Feed;

/// <summary>A server whose open feed streams check every 0.3 s (production: every 30 s) that their reader may still read.</summary>
public sealed class FeedRecheckApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Feed:RecheckInterval", "00:00:00.300");
}

/// <summary>
/// A live stream outlives the request that opened it: revoking its API token, locking the account or taking away the
/// admin role must end it, not leave it streaming until the client happens to reconnect.
/// </summary>
public sealed class FeedRecheckTests(FeedRecheckApp app) : IClassFixture<FeedRecheckApp>
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(10);

    async Task<(HttpClient Client, Guid TokenId)> SecondTokenAsync(TestUser user)
    {
        var res = await user.Client.PostAsJsonAsync("/api/tokens", new { name = "feed" });
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        var created = await res.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>();
        var client = app.Anonymous(null);
        client.DefaultRequestHeaders.Authorization = new("Bearer", created.GetProperty("token").GetString());
        return (client, created.GetProperty("id").GetGuid());
    }

    [Fact]
    public async Task Revoking_the_token_a_stream_was_opened_with_ends_the_stream_with_the_reason()
    {
        var user = await app.NewUserAsync();
        var (client, tokenId) = await SecondTokenAsync(user);
        using var stream = await Sse.OpenAsync(client, "/api/feed");
        // Another token's stream of the same user goes on.
        using var other = await Sse.OpenAsync(user.Client, "/api/feed");

        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.DeleteAsync($"/api/tokens/{tokenId}")).StatusCode);
        var end = await stream.NextAsync(Patience);
        Assert.Contains("revoked", end.Data.GetProperty("reason").GetString());
        await Assert.ThrowsAsync<EndOfStreamException>(() => stream.NextAsync(Patience));

        var reg = await user.RegisterSimpleAsync();
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        Assert.Equal("open", (await other.NextAsync(Patience)).Data.GetProperty("kind").GetString());
    }

    [Fact]
    public async Task A_locked_account_or_an_admin_made_member_loses_the_stream()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        using var team = await Sse.OpenAsync(admin.Client, "/api/feed?scope=team");
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == admin.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.Role, TeamRole.Member)));
        Assert.Contains("admins", (await team.NextAsync(Patience)).Data.GetProperty("reason").GetString());

        var user = await app.NewUserAsync();
        using var mine = await Sse.OpenAsync(user.Client, "/api/feed");
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == user.Id).ExecuteUpdateAsync(u => u.SetProperty(x => x.LockoutEnd, DateTimeOffset.UtcNow.AddHours(1))));
        Assert.Contains("locked", (await mine.NextAsync(Patience)).Data.GetProperty("reason").GetString());
    }
}

/// <summary>Microsoft sign-in configured (the Outlook add-in's tokens), with streams checked every 0.3 s.</summary>
public sealed class FeedRecheckMicrosoftApp() : EmailTracking.Tests.Outlook.OutlookApp(DatabaseProvider.Sqlite)
{
    protected override IEnumerable<KeyValuePair<string, string>> MoreSettings => [new("Feed:RecheckInterval", "00:00:00.300")];
}

/// <summary>
/// A stream the Outlook add-in opened with a Microsoft access token is that token's: once the token would no longer be
/// taken (past its lifetime, or its Microsoft account unlinked from the user) the stream closes, and the pane connects
/// again with the token it has then, resuming from its last event, admitted or refused afresh.
/// </summary>
public sealed class FeedRecheckMicrosoftTests(FeedRecheckMicrosoftApp app) : IClassFixture<FeedRecheckMicrosoftApp>
{
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    [Fact]
    public async Task A_stream_opened_with_a_microsoft_token_closes_once_the_token_is_past_its_lifetime()
    {
        var user = await app.NewUserAsync();
        // Taken for 4 more seconds: an hour's token issued 1 h 5 min ago, the 5 minutes being the allowed clock skew.
        var spec = new EmailTracking.Tests.Outlook.TestIssuer.TokenSpec { IssuedAt = DateTimeOffset.UtcNow - TimeSpan.FromMinutes(65) + TimeSpan.FromSeconds(4) };
        using var stream = await Sse.OpenAsync(app.AsMicrosoftUser(user.Email, spec), "/api/feed");
        await Assert.ThrowsAsync<EndOfStreamException>(() => stream.NextAsync(Patience));
        // The same token is refused now; a fresh one is taken, and resumes.
        Assert.Equal(HttpStatusCode.Unauthorized, (await app.AsMicrosoftUser(user.Email, spec).GetAsync("/api/me")).StatusCode);
        using var again = await Sse.OpenAsync(app.AsMicrosoftUser(user.Email), "/api/feed", "0:0");
    }

    [Fact]
    public async Task A_stream_of_a_microsoft_account_an_admin_unlinked_closes()
    {
        var admin = await app.NewUserAsync(role: TeamRole.Admin);
        // Linked on the link page (its sign-in name is not the member's email): unlinked, it no longer signs in as them.
        var member = await app.NewUserAsync(team: app.WithDb(db => db.Teams.Single(t => t.Id == admin.TeamId).Name));
        var account = $"pane.{Guid.NewGuid():N}"[..13] + "@elsewhere.test";
        var tenant = EmailTracking.Tests.Outlook.TestIssuer.TenantId;
        await app.WithDbAsync(async db =>
        {
            db.MicrosoftAccountLinks.Add(new MicrosoftAccountLink
            {
                UserId = member.Id, TenantId = tenant.ToLowerInvariant(),
                ObjectId = EmailTracking.Tests.Outlook.TestIssuer.StableObjectId(tenant, account).ToLowerInvariant(),
                DisplayName = account, SignInName = account, LinkedAt = DateTimeOffset.UtcNow,
            });
            await db.SaveChangesAsync();
        });
        using var stream = await Sse.OpenAsync(app.AsMicrosoftUser(account), "/api/feed");
        // Still linked: the stream goes on past several checks.
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        var reg = await member.RegisterSimpleAsync();
        await app.Anonymous().GetAsync(TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!));
        Assert.Equal("open", (await stream.NextAsync(Patience)).Data.GetProperty("kind").GetString());

        Assert.Equal(HttpStatusCode.OK, (await admin.Client.DeleteAsync($"/api/team/members/{member.Id}/microsoft-accounts")).StatusCode);
        await Assert.ThrowsAsync<EndOfStreamException>(() => stream.NextAsync(Patience));
        Assert.Equal(HttpStatusCode.Forbidden, (await app.AsMicrosoftUser(account).GetAsync("/api/feed")).StatusCode);
    }
}
