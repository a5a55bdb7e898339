namespace EmailTracking.Server.Tracking.Classification;

public static class ClassificationServiceCollectionExtensions
{
    /// <summary>
    /// Registers the hit classifier: options from <c>Tracking:Classifier</c> and <c>Tracking:AppleRelay</c>, the Apple
    /// range holder and the classifier (singletons), the "apple-relay" HTTP client and the background refresher.
    /// </summary>
    public static IServiceCollection AddHitClassification(this IServiceCollection services, IConfiguration configuration)
    {
        ArgumentNullException.ThrowIfNull(services);
        ArgumentNullException.ThrowIfNull(configuration);

        services.AddOptions<ClassifierOptions>()
            .Bind(configuration.GetSection(ClassifierOptions.SectionName))
            // One value (Tracking__Classifier__ScannerRanges=203.0.113.0/24,198.51.100.7, what an environment variable
            // holds) is no list to the binder, which left it out without a word: the scanners there counted as people.
            .PostConfigure(o => o.ScannerRanges =
            [
                .. o.ScannerRanges ?? [],
                .. (configuration[ClassifierOptions.SectionName + ":ScannerRanges"] ?? "")
                    .Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries),
            ])
            .Validate(o => o.ScannerClickWindow >= TimeSpan.Zero, "Tracking:Classifier:ScannerClickWindow must not be negative")
            .Validate(o => o.ClickBurstWindow > TimeSpan.Zero && o.ClickBurstWindow <= TimeSpan.FromMinutes(1),
                "Tracking:Classifier:ClickBurstWindow must be more than zero and at most a minute")
            .Validate(o => IpRangeSet.Parse(o.ScannerRanges ?? []).Rejected == 0,
                "Tracking:Classifier:ScannerRanges has an entry that is neither an IP address nor a CIDR range")
            .ValidateOnStart();

        services.AddOptions<AppleRelayOptions>()
            .Bind(configuration.GetSection(AppleRelayOptions.SectionName))
            .Validate(o => o.FeedUrl is null || o.FeedUrl.Length == 0 ||
                           (Uri.TryCreate(o.FeedUrl, UriKind.Absolute, out var uri) && (uri.Scheme == Uri.UriSchemeHttps || uri.Scheme == Uri.UriSchemeHttp)),
                "Tracking:AppleRelay:FeedUrl must be an absolute http(s) URL")
            .Validate(o => o.RefreshInterval > TimeSpan.Zero, "Tracking:AppleRelay:RefreshInterval must be positive")
            .ValidateOnStart();

        services.AddSingleton<AppleRelayRanges>();
        services.AddSingleton<HitClassifier>();

        services.AddHttpClient(AppleRelayRefresher.HttpClientName, client =>
        {
            client.Timeout = TimeSpan.FromMinutes(2);
            client.DefaultRequestHeaders.UserAgent.ParseAdd("EmailTracking-AppleRelayRefresher/1.0");
        });
        // Registered once as a singleton so tests and admin code can resolve it and call RefreshAsync.
        services.AddSingleton<AppleRelayRefresher>();
        services.AddHostedService(sp => sp.GetRequiredService<AppleRelayRefresher>());

        return services;
    }
}
