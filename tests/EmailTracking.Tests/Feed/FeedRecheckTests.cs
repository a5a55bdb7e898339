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
