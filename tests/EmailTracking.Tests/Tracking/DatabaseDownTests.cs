using System.Net;
using EmailTracking.Tests.Infrastructure;
using Npgsql;

namespace EmailTracking.Tests.Tracking;

/// <summary>When the database goes away, recipients still get the image; a click we cannot resolve is a 503 page.</summary>
public sealed class DatabaseDownTests : IAsyncLifetime
{
    readonly PostgresApp app = new();

    public Task InitializeAsync() => ((IAsyncLifetime)app).InitializeAsync();

    public Task DisposeAsync() => ((IAsyncLifetime)app).DisposeAsync();

    [Fact]
    public async Task The_pixel_is_still_the_gif_and_a_click_is_never_a_redirect_elsewhere()
    {
        var user = await app.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        var link = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("links")[0].GetProperty("trackedUrl").GetString()!);

        // The database disappears under the running server.
        var database = new NpgsqlConnectionStringBuilder(app.ConnectionString).Database;
        await using (var admin = new NpgsqlConnection(TestPostgres.AdminConnectionString))
        {
            await admin.OpenAsync();
            await using var drop = new NpgsqlCommand($"DROP DATABASE {database} WITH (FORCE)", admin);
            await drop.ExecuteNonQueryAsync();
        }
        NpgsqlConnection.ClearAllPools();

        var client = app.Anonymous();
        foreach (var path in new[] { pixel, "/o/AAAAAAAAAAAAAAAAAAAAAAAA.gif" })
        {
            var res = await client.GetAsync(path);
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal("image/gif", res.Content.Headers.ContentType?.MediaType);
            Assert.Contains("no-store", res.Headers.CacheControl!.ToString());
        }
        var click = await client.GetAsync(link);
        Assert.Equal(HttpStatusCode.ServiceUnavailable, click.StatusCode);
        Assert.Null(click.Headers.Location);
        Assert.Contains("try again", await click.Content.ReadAsStringAsync());
    }
}
