using System.Net;
using System.Text;
using EmailTracking.Server.Tracking.Classification;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;

namespace EmailTracking.Tests.Classification;

/// <summary>
/// Downloads an egress list in Apple's CSV format from a local Kestrel server and checks the swap, the cache file and
/// that bad answers keep the old set.
/// </summary>
public sealed class AppleRelayRefreshTests : IAsyncLifetime
{
    /// <summary>In the feed served below, not in the shared Apple files.</summary>
    private static readonly IPAddress FeedOnlyIp = IPAddress.Parse("198.51.100.7");
    private static readonly IPAddress FeedOnlyIpV6 = IPAddress.Parse("2001:db8:12::1");

    /// <summary>In the shared Apple files (104.28.28.0/26), not in the served feed.</summary>
    private static readonly IPAddress SharedFileIp = IPAddress.Parse("104.28.28.1");

    private static readonly string GoodFeed = BuildFeed();

    private readonly string _tempDir = Path.Combine(Path.GetTempPath(), "apple-relay-tests-" + Guid.NewGuid().ToString("N"));
    private WebApplication? _server;
    private string _baseUrl = "";

    private static string BuildFeed()
    {
        var text = new StringBuilder();
        for (var i = 0; i < 200; i++)
            text.Append("198.51.100.").Append(i).Append("/32,US,US-CA,Cupertino,\n");
        for (var i = 0; i < 50; i++)
            text.Append("2001:db8:").Append(i.ToString("x")).Append("::/48,GB,GB-EN,London,\n");
        return text.ToString();
    }

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_tempDir);

        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseKestrel(o => o.Listen(IPAddress.Loopback, 0));
        builder.Logging.ClearProviders();
        _server = builder.Build();
        _server.MapGet("/good.csv", () => Results.Text(GoodFeed, "text/csv"));
        _server.MapGet("/error.csv", () => Results.StatusCode(500));
        _server.MapGet("/garbage.csv", () => Results.Text("<html><body>Service unavailable</body></html>\n", "text/html"));
        _server.MapGet("/tiny.csv", () => Results.Text("17.0.0.0/24,US,US-CA,Cupertino,\n17.0.1.0/24,US,US-CA,Cupertino,\n", "text/csv"));
        await _server.StartAsync();
        _baseUrl = _server.Urls.Single().TrimEnd('/');
    }

    public async Task DisposeAsync()
    {
        if (_server is not null)
            await _server.DisposeAsync();
        try
        {
            Directory.Delete(_tempDir, recursive: true);
        }
        catch (IOException)
        {
        }
    }

    private string CacheFile => Path.Combine(_tempDir, "cache", "apple-egress-ranges.csv");

    private ServiceProvider Services(string? feedPath, string? directory = null)
    {
        var settings = new Dictionary<string, string?>
        {
            ["Tracking:AppleRelay:Directory"] = directory ?? SharedData.Path("apple-relay"),
            ["Tracking:AppleRelay:CacheFile"] = CacheFile,
            ["Tracking:AppleRelay:FeedUrl"] = feedPath is null ? null : _baseUrl + feedPath,
        };
        var configuration = new ConfigurationBuilder().AddInMemoryCollection(settings).Build();
        return new ServiceCollection()
            .AddLogging()
            .AddHitClassification(configuration)
            .BuildServiceProvider();
    }

    [Fact]
    public async Task Refresh_swaps_the_set_in_and_writes_the_cache_file()
    {
        using var services = Services("/good.csv");
        var ranges = services.GetRequiredService<AppleRelayRanges>();
        var refresher = services.GetRequiredService<AppleRelayRefresher>();

        Assert.StartsWith("directory", ranges.Source);
        Assert.True(ranges.Contains(SharedFileIp));
        Assert.False(ranges.Contains(FeedOnlyIp));

        var loaded = await refresher.RefreshAsync(CancellationToken.None);

        Assert.Equal(250, loaded);
        Assert.Equal(250, ranges.Current.Count);
        Assert.StartsWith("feed", ranges.Source);
        Assert.True(ranges.Contains(FeedOnlyIp));
        Assert.True(ranges.Contains(FeedOnlyIpV6));
        Assert.False(ranges.Contains(SharedFileIp));

        Assert.True(File.Exists(CacheFile));
        Assert.Equal(GoodFeed, await File.ReadAllTextAsync(CacheFile));
        Assert.False(File.Exists(CacheFile + ".download"));
    }

    [Fact]
    public async Task A_cache_file_that_cannot_be_written_does_not_make_an_installed_refresh_a_failure()
    {
        // A directory where the cache file should be: the move onto it fails after the new set is in use.
        Directory.CreateDirectory(CacheFile);
        using var services = Services("/good.csv");
        var ranges = services.GetRequiredService<AppleRelayRanges>();

        Assert.Equal(250, await services.GetRequiredService<AppleRelayRefresher>().RefreshAsync(CancellationToken.None));
        Assert.StartsWith("feed", ranges.Source);
        Assert.True(ranges.Contains(FeedOnlyIp));
        Assert.False(File.Exists(CacheFile + ".download"));
    }

    [Fact]
    public async Task The_cache_file_is_preferred_at_the_next_start()
    {
        using (var first = Services("/good.csv"))
            Assert.Equal(250, await first.GetRequiredService<AppleRelayRefresher>().RefreshAsync(CancellationToken.None));

        using var second = Services(feedPath: null);
        var ranges = second.GetRequiredService<AppleRelayRanges>();
        Assert.StartsWith("cache file", ranges.Source);
        Assert.True(ranges.Contains(FeedOnlyIp));
        Assert.False(ranges.Contains(SharedFileIp));
    }

    [Theory]
    [InlineData("/error.csv")]
    [InlineData("/garbage.csv")]
    [InlineData("/tiny.csv")]
    [InlineData("/missing.csv")]
    public async Task A_bad_answer_keeps_the_old_set(string feedPath)
    {
        using var services = Services(feedPath);
        var ranges = services.GetRequiredService<AppleRelayRanges>();
        var before = ranges.Current;

        var loaded = await services.GetRequiredService<AppleRelayRefresher>().RefreshAsync(CancellationToken.None);

        Assert.Equal(0, loaded);
        Assert.Same(before, ranges.Current);
        Assert.True(ranges.Contains(SharedFileIp));
        Assert.False(File.Exists(CacheFile));
        Assert.False(File.Exists(CacheFile + ".download"));
    }

    [Fact]
    public async Task An_unreachable_feed_keeps_the_old_set()
    {
        using var services = Services(feedPath: null);
        // Re-point at a port nothing listens on (the server's port after it is stopped).
        var options = services.GetRequiredService<IOptions<AppleRelayOptions>>().Value;
        await _server!.StopAsync();
        options.FeedUrl = _baseUrl + "/good.csv";
        var ranges = services.GetRequiredService<AppleRelayRanges>();
        var before = ranges.Current;

        var loaded = await services.GetRequiredService<AppleRelayRefresher>().RefreshAsync(CancellationToken.None);

        Assert.Equal(0, loaded);
        Assert.Same(before, ranges.Current);
    }

    [Fact]
    public async Task Without_a_feed_url_nothing_is_downloaded()
    {
        using var services = Services(feedPath: null);
        Assert.Equal(0, await services.GetRequiredService<AppleRelayRefresher>().RefreshAsync(CancellationToken.None));
        Assert.False(File.Exists(CacheFile));
    }

    [Fact]
    public void Missing_files_do_not_fail_start_up()
    {
        using var services = Services(feedPath: null, directory: Path.Combine(_tempDir, "does-not-exist"));
        var ranges = services.GetRequiredService<AppleRelayRanges>();
        Assert.Equal(0, ranges.Current.Count);
        Assert.Equal("none", ranges.Source);
        Assert.False(ranges.Contains(SharedFileIp));
    }

    [Fact]
    public async Task Hosted_refresher_loads_the_feed_when_the_host_starts()
    {
        var builder = Host.CreateApplicationBuilder();
        builder.Logging.ClearProviders();
        builder.Configuration.AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Tracking:AppleRelay:Directory"] = SharedData.Path("apple-relay"),
            ["Tracking:AppleRelay:CacheFile"] = CacheFile,
            ["Tracking:AppleRelay:FeedUrl"] = _baseUrl + "/good.csv",
        });
        builder.Services.AddHitClassification(builder.Configuration);
        using var host = builder.Build();
        await host.StartAsync();
        try
        {
            var ranges = host.Services.GetRequiredService<AppleRelayRanges>();
            var deadline = DateTime.UtcNow.AddSeconds(20);
            while (!ranges.Contains(FeedOnlyIp) && DateTime.UtcNow < deadline)
                await Task.Delay(50);
            Assert.True(ranges.Contains(FeedOnlyIp));
            Assert.Single(host.Services.GetServices<IHostedService>().OfType<AppleRelayRefresher>());
        }
        finally
        {
            await host.StopAsync();
        }
    }

    [Fact]
    public void The_classifier_is_registered_as_a_singleton()
    {
        using var services = Services(feedPath: null);
        Assert.Same(services.GetRequiredService<HitClassifier>(), services.GetRequiredService<HitClassifier>());
        Assert.Same(services.GetRequiredService<AppleRelayRanges>(), services.GetRequiredService<AppleRelayRanges>());
    }
}
