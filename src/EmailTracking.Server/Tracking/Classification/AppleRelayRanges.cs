using System.Net;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Tracking.Classification;

/// <summary>Where the Apple egress ranges (Mail Privacy Protection / iCloud Private Relay) come from. Section <c>Tracking:AppleRelay</c>.</summary>
public sealed class AppleRelayOptions
{
    public const string SectionName = "Tracking:AppleRelay";

    /// <summary>
    /// Folder with <c>ipv4-ranges.txt</c> and <c>ipv6-ranges.txt</c> (one CIDR a line), the offline default.
    /// Relative paths are resolved against the current directory.
    /// </summary>
    public string Directory { get; set; } = "../shared/data/apple-relay";

    /// <summary>Apple's published feed, e.g. <c>https://mask-api.icloud.com/egress-ip-ranges.csv</c>. Null: never download.</summary>
    public string? FeedUrl { get; set; }

    /// <summary>How often the feed is downloaded again.</summary>
    public TimeSpan RefreshInterval { get; set; } = TimeSpan.FromDays(1);

    /// <summary>
    /// Where the last good download is kept; at start it is preferred over <see cref="Directory"/>. Relative paths are
    /// resolved against the current directory. Null or empty: no cache.
    /// </summary>
    public string? CacheFile { get; set; } = "data/apple-egress-ranges.csv";

    /// <summary>A feed that parses to fewer ranges than this is treated as broken and ignored.</summary>
    public int MinimumRanges { get; set; } = 100;

    /// <summary>Largest feed accepted, in bytes (Apple's full CSV is a few tens of MB at most).</summary>
    public long MaxFeedBytes { get; set; } = 256L * 1024 * 1024;
}

/// <summary>
/// Holds the current Apple egress range set. Lookups read a reference that is replaced atomically by
/// <see cref="AppleRelayRefresher"/>, so the pixel path never takes a lock. Loads the cache file, else the offline
/// files, when constructed; a missing source only logs a warning (Apple detection is off until a feed loads).
/// </summary>
public sealed class AppleRelayRanges
{
    private readonly ILogger<AppleRelayRanges> _logger;
    private IpRangeSet _current = IpRangeSet.Empty;

    public AppleRelayRanges(IOptions<AppleRelayOptions> options, ILogger<AppleRelayRanges> logger)
    {
        _logger = logger;
        LoadAtStart(options.Value);
    }

    /// <summary>The set in use now.</summary>
    public IpRangeSet Current => Volatile.Read(ref _current);

    /// <summary>Where the current set was read from ("cache file …", "directory …", "feed …", or "none").</summary>
    public string Source { get; private set; } = "none";

    /// <summary>When the current set was installed.</summary>
    public DateTimeOffset? LoadedAt { get; private set; }

    /// <summary>True when the address is one of Apple's relay egress addresses.</summary>
    public bool Contains(IPAddress ip) => Volatile.Read(ref _current).Contains(ip);

    /// <summary>Installs a new set atomically.</summary>
    public void Replace(IpRangeSet ranges, string source)
    {
        ArgumentNullException.ThrowIfNull(ranges);
        Interlocked.Exchange(ref _current, ranges);
        Source = source;
        LoadedAt = DateTimeOffset.UtcNow;
    }

    internal static string? ResolvePath(string? path)
        => string.IsNullOrWhiteSpace(path) ? null : Path.GetFullPath(path);

    /// <summary>
    /// A relative folder is looked for from the current directory and then from each directory above it, so the
    /// default (the checkout's ../shared/data) is found whether the server starts at the repository root or, as
    /// `dotnet run --project` does, in the project's own folder.
    /// </summary>
    internal static string? ResolveFolder(string? path)
    {
        if (string.IsNullOrWhiteSpace(path)) return null;
        if (Path.IsPathRooted(path)) return Path.GetFullPath(path);
        for (var dir = new DirectoryInfo(System.IO.Directory.GetCurrentDirectory()); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.GetFullPath(Path.Combine(dir.FullName, path));
            if (System.IO.Directory.Exists(candidate)) return candidate;
        }
        return Path.GetFullPath(path);
    }

    private void LoadAtStart(AppleRelayOptions options)
    {
        var cacheFile = ResolvePath(options.CacheFile);
        if (cacheFile is not null && File.Exists(cacheFile))
        {
            try
            {
                var cached = IpRangeSet.Parse(File.ReadLines(cacheFile));
                if (cached.Count >= options.MinimumRanges)
                {
                    Replace(cached, $"cache file {cacheFile}");
                    _logger.LogInformation("Apple relay ranges: {Count} ranges from cache file {File}", cached.Count, cacheFile);
                    return;
                }
                _logger.LogWarning("Apple relay cache file {File} holds only {Count} ranges; ignoring it", cacheFile, cached.Count);
            }
            catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
            {
                _logger.LogWarning(ex, "Apple relay cache file {File} could not be read", cacheFile);
            }
        }

        var directory = ResolveFolder(options.Directory);
        if (directory is null || !System.IO.Directory.Exists(directory))
        {
            _logger.LogWarning("Apple relay range folder {Directory} not found: Apple Mail Privacy Protection detection is off until a feed loads", directory ?? "(not set)");
            return;
        }

        try
        {
            var files = new[] { "ipv4-ranges.txt", "ipv6-ranges.txt" }
                .Select(name => Path.Combine(directory, name))
                .Where(File.Exists)
                .ToList();
            if (files.Count == 0)
            {
                _logger.LogWarning("No ipv4-ranges.txt / ipv6-ranges.txt in {Directory}: Apple Mail Privacy Protection detection is off until a feed loads", directory);
                return;
            }
            var set = IpRangeSet.Parse(files.SelectMany(File.ReadLines));
            Replace(set, $"directory {directory}");
            _logger.LogInformation("Apple relay ranges: {Count} ranges ({V4} IPv4, {V6} IPv6, {Rejected} rejected lines) from {Directory}",
                set.Count, set.IPv4Count, set.IPv6Count, set.Rejected, directory);
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            _logger.LogWarning(ex, "Apple relay ranges in {Directory} could not be read: Apple detection is off until a feed loads", directory);
        }
    }
}

/// <summary>
/// Downloads Apple's egress feed every <see cref="AppleRelayOptions.RefreshInterval"/> when
/// <see cref="AppleRelayOptions.FeedUrl"/> is set, and swaps it in when it looks sane. Failures are logged and the
/// old set stays.
/// </summary>
public sealed class AppleRelayRefresher(
    AppleRelayRanges ranges,
    IHttpClientFactory httpClientFactory,
    IOptions<AppleRelayOptions> options,
    ILogger<AppleRelayRefresher> logger,
    TimeProvider? timeProvider = null) : BackgroundService
{
    /// <summary>Name of the <see cref="HttpClient"/> used for the download.</summary>
    public const string HttpClientName = "apple-relay";

    private static readonly TimeSpan RetryAfterFailure = TimeSpan.FromHours(1);
    private readonly TimeProvider _time = timeProvider ?? TimeProvider.System;
    private readonly SemaphoreSlim _gate = new(1, 1);

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        var settings = options.Value;
        if (string.IsNullOrWhiteSpace(settings.FeedUrl))
            return;

        var interval = settings.RefreshInterval > TimeSpan.Zero ? settings.RefreshInterval : TimeSpan.FromDays(1);
        var delay = FirstDelay(settings, interval);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                if (delay > TimeSpan.Zero)
                    await Task.Delay(delay, _time, stoppingToken);
                var loaded = await RefreshAsync(stoppingToken);
                delay = loaded > 0 ? interval : (interval < RetryAfterFailure ? interval : RetryAfterFailure);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // Never let a refresh failure stop the host: keep the old set and try again later.
                logger.LogError(ex, "Apple relay refresh failed; keeping the {Count} ranges from {Source}", ranges.Current.Count, ranges.Source);
                delay = interval < RetryAfterFailure ? interval : RetryAfterFailure;
            }
        }
    }

    /// <summary>
    /// Downloads and installs the feed once. Returns the number of ranges installed, or 0 when the feed was not
    /// configured, could not be downloaded, or did not look like a range list (the old set is kept).
    /// </summary>
    public async Task<int> RefreshAsync(CancellationToken cancellationToken)
    {
        var settings = options.Value;
        if (string.IsNullOrWhiteSpace(settings.FeedUrl))
            return 0;

        await _gate.WaitAsync(cancellationToken);
        try
        {
            return await DownloadAndInstallAsync(settings, cancellationToken);
        }
        finally
        {
            _gate.Release();
        }
    }

    private async Task<int> DownloadAndInstallAsync(AppleRelayOptions settings, CancellationToken cancellationToken)
    {
        var cacheFile = AppleRelayRanges.ResolvePath(settings.CacheFile);
        var download = cacheFile is not null
            ? cacheFile + ".download"
            : Path.Combine(Path.GetTempPath(), $"apple-egress-{Guid.NewGuid():N}.csv");
        try
        {
            if (cacheFile is not null)
                Directory.CreateDirectory(Path.GetDirectoryName(cacheFile)!);

            var client = httpClientFactory.CreateClient(HttpClientName);
            using (var response = await client.GetAsync(settings.FeedUrl, HttpCompletionOption.ResponseHeadersRead, cancellationToken))
            {
                if (!response.IsSuccessStatusCode)
                {
                    logger.LogWarning("Apple relay feed {Url} answered {Status}; keeping the {Count} ranges from {Source}",
                        settings.FeedUrl, (int)response.StatusCode, ranges.Current.Count, ranges.Source);
                    return 0;
                }
                if (response.Content.Headers.ContentLength > settings.MaxFeedBytes)
                {
                    logger.LogWarning("Apple relay feed {Url} is {Length} bytes, above the {Max} limit; ignored",
                        settings.FeedUrl, response.Content.Headers.ContentLength, settings.MaxFeedBytes);
                    return 0;
                }
                await using var body = await response.Content.ReadAsStreamAsync(cancellationToken);
                await using var file = File.Create(download);
                if (!await CopyLimitedAsync(body, file, settings.MaxFeedBytes, cancellationToken))
                {
                    logger.LogWarning("Apple relay feed {Url} exceeded {Max} bytes; ignored", settings.FeedUrl, settings.MaxFeedBytes);
                    return 0;
                }
            }

            var set = IpRangeSet.Parse(File.ReadLines(download));
            if (set.Count < settings.MinimumRanges || set.Rejected > set.Count)
            {
                logger.LogWarning("Apple relay feed {Url} parsed to {Count} ranges ({Rejected} bad lines); not plausible, keeping the {Old} ranges from {Source}",
                    settings.FeedUrl, set.Count, set.Rejected, ranges.Current.Count, ranges.Source);
                return 0;
            }

            ranges.Replace(set, $"feed {settings.FeedUrl}");
            if (cacheFile is not null)
            {
                // The new set is in use whatever happens to the file: a cache that cannot be written is worth a warning,
                // not a refresh reported as failed (which would download the feed again every hour).
                try
                {
                    File.Move(download, cacheFile, overwrite: true);
                }
                catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
                {
                    logger.LogWarning(ex, "Apple relay ranges refreshed from {Url} but not cached in {File}; the next start uses the older ranges until a refresh",
                        settings.FeedUrl, cacheFile);
                }
            }
            logger.LogInformation("Apple relay ranges refreshed: {Count} ranges ({V4} IPv4, {V6} IPv6) from {Url}",
                set.Count, set.IPv4Count, set.IPv6Count, settings.FeedUrl);
            return set.Count;
        }
        catch (OperationCanceledException) when (cancellationToken.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex) when (ex is HttpRequestException or IOException or UnauthorizedAccessException or OperationCanceledException)
        {
            // OperationCanceledException without our token being cancelled is HttpClient's timeout.
            logger.LogWarning(ex, "Apple relay feed {Url} could not be loaded; keeping the {Count} ranges from {Source}",
                settings.FeedUrl, ranges.Current.Count, ranges.Source);
            return 0;
        }
        finally
        {
            TryDelete(download);
        }
    }

    private TimeSpan FirstDelay(AppleRelayOptions settings, TimeSpan interval)
    {
        // A fresh cache file means the last download is recent enough: wait out the rest of the interval.
        var cacheFile = AppleRelayRanges.ResolvePath(settings.CacheFile);
        if (cacheFile is null || !File.Exists(cacheFile) || !ranges.Source.StartsWith("cache file", StringComparison.Ordinal))
            return TimeSpan.Zero;
        var age = _time.GetUtcNow() - File.GetLastWriteTimeUtc(cacheFile);
        return age < TimeSpan.Zero || age >= interval ? TimeSpan.Zero : interval - age;
    }

    private static async Task<bool> CopyLimitedAsync(Stream source, Stream destination, long maxBytes, CancellationToken cancellationToken)
    {
        var buffer = new byte[81920];
        long total = 0;
        int read;
        while ((read = await source.ReadAsync(buffer, cancellationToken)) > 0)
        {
            total += read;
            if (total > maxBytes)
                return false;
            await destination.WriteAsync(buffer.AsMemory(0, read), cancellationToken);
        }
        return true;
    }

    private static void TryDelete(string path)
    {
        try
        {
            if (File.Exists(path))
                File.Delete(path);
        }
        catch (IOException)
        {
        }
        catch (UnauthorizedAccessException)
        {
        }
    }
}
