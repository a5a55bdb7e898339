using System.Net;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Tracking;

/// <summary>A server started as bench/pixel starts it: with its baseline endpoints.</summary>
public sealed class BenchApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Bench:BaselineEndpoint", "true");
}

/// <summary>
/// bench/pixel compares the pixel with two endpoints that must answer what the pixel answers and record nothing: the
/// bare one (no lookup) and the verdict one (the pixel's own code with the record left out). A record there would make
/// the bench's count of events differ from its count of pixel answers; a different answer would make the comparison
/// meaningless. Neither exists unless the server is started for the bench.
/// </summary>
public sealed class BenchEndpointTests(BenchApp bench, SqliteApp plain) : IClassFixture<BenchApp>, IClassFixture<SqliteApp>
{
    static string PixelPath(JsonElement reg) => new Uri(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!).AbsolutePath;

    [Fact]
    public async Task The_baselines_answer_the_pixels_bytes_and_headers_and_record_nothing()
    {
        var user = await bench.NewUserAsync();
        var reg = await user.RegisterSimpleAsync();
        var token = PixelPath(reg)["/o/".Length..];
        var client = bench.Anonymous();
        var before = bench.WithDb(db => db.Events.Count());

        var baselines = new List<HttpResponseMessage>();
        foreach (var path in new[] { "/bench/bare/" + token, "/bench/verdict/" + token, "/bench/verdict/AAAAAAAAAAAAAAAAAAAAAAAA.gif" })
        {
            baselines.Add(await client.GetAsync(path));
        }
        Assert.Equal(before, bench.WithDb(db => db.Events.Count()));

        var pixel = await client.GetAsync(PixelPath(reg));
        Assert.Equal(before + 1, bench.WithDb(db => db.Events.Count()));
        var pixelBytes = await pixel.Content.ReadAsByteArrayAsync();
        foreach (var res in baselines)
        {
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Equal(pixelBytes, await res.Content.ReadAsByteArrayAsync());
            Assert.Equal(pixel.Content.Headers.ContentType, res.Content.Headers.ContentType);
            Assert.Equal(pixel.Headers.CacheControl, res.Headers.CacheControl);
        }
    }

    [Fact]
    public async Task Without_the_bench_setting_there_are_no_baselines()
    {
        await plain.NewUserAsync(); // past the first-run page
        var client = plain.Anonymous();
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/bench/bare/AAAAAAAAAAAAAAAAAAAAAAAA.gif")).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await client.GetAsync("/bench/verdict/AAAAAAAAAAAAAAAAAAAAAAAA.gif")).StatusCode);
    }
}
