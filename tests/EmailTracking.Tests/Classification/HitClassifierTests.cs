using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Tracking.Classification;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Options;
// The record struct shares its name with its namespace (and this one); an alias keeps the simple name usable.
using ClassificationResult = EmailTracking.Server.Tracking.Classification.Classification;

namespace EmailTracking.Tests.Classification;

public sealed class HitClassifierTests
{
    private const string Chrome = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/124.0.0.0 Safari/537.36";
    private const string Safari = "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1";
    private const string AppleMail = "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko)";
    private const string Outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17328; Pro)";
    private const string GmailProxy = "Mozilla/5.0 (Windows NT 5.1; rv:11.0) Gecko Firefox/11.0 (via ggpht.com GoogleImageProxy)";
    private const string YahooProxy = "YahooMailProxy; https://help.yahoo.com/kb/yahoo-mail-proxy-SLN28749.html";
    private const string SeznamProxy = "Mozilla/5.0 SeznamEmailProxy/2.0.174";
    private const string GmailPrefetch = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/42.0.2311.135 Safari/537.36 Edge/12.246 Mozilla/5.0";

    /// <summary>First address of 104.28.28.0/26 in shared/data/apple-relay/ipv4-ranges.txt.</summary>
    private static readonly IPAddress AppleIp = IPAddress.Parse("104.28.28.1");
    private static readonly IPAddress AppleIpV6 = IPAddress.Parse("2606:54c0::1234");
    private static readonly IPAddress OfficeIp = IPAddress.Parse("198.51.100.20");
    private static readonly IPAddress GatewayIp = IPAddress.Parse("203.0.113.45");

    private static readonly DateTimeOffset Now = new(2025, 3, 14, 9, 30, 0, TimeSpan.Zero);

    private static readonly Lazy<AppleRelayRanges> Apple = new(() => new AppleRelayRanges(
        Options.Create(new AppleRelayOptions { Directory = SharedData.Path("apple-relay"), CacheFile = null }),
        NullLogger<AppleRelayRanges>.Instance));

    private static HitClassifier Classifier(TimeSpan? scannerClickWindow = null) => new(
        Apple.Value,
        Options.Create(new ClassifierOptions
        {
            ScannerClickWindow = scannerClickWindow ?? TimeSpan.FromSeconds(10),
            ScannerRanges = ["203.0.113.0/24", "2001:db8:5ca7::/48"],
        }));

    private static HitContext Open(string? userAgent, IPAddress? ip = null) => new()
    {
        Kind = EventKind.Open,
        Method = "GET",
        Ip = ip ?? OfficeIp,
        UserAgent = userAgent,
        Now = Now,
        SentAt = Now.AddHours(-2),
    };

    private static HitContext Click(string? userAgent, IPAddress? ip = null, TimeSpan? afterSend = null) => new()
    {
        Kind = EventKind.Click,
        Method = "GET",
        Ip = ip ?? OfficeIp,
        UserAgent = userAgent,
        Now = Now,
        SentAt = Now - (afterSend ?? TimeSpan.FromHours(2)),
    };

    private static void AssertVerdict(Verdict expected, ClassificationResult result, string? reasonContains = null)
    {
        Assert.True(expected == result.Verdict, $"expected {expected}, got {result.Verdict} ({result.Reason})");
        Assert.False(string.IsNullOrWhiteSpace(result.Reason));
        Assert.True(result.Reason.Length <= 300);
        if (reasonContains is not null)
            Assert.Contains(reasonContains, result.Reason, StringComparison.OrdinalIgnoreCase);
    }

    // ---- rule 10 / baseline -------------------------------------------------------------------------------------

    [Theory]
    [InlineData(Chrome)]
    [InlineData(AppleMail)]
    [InlineData(Outlook)]
    public void Ordinary_client_open_is_human(string userAgent)
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(userAgent)), "no machine signal");
    }

    [Fact]
    public void Ordinary_click_long_after_sending_is_human()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Click(Chrome, afterSend: TimeSpan.FromMinutes(5))), "no machine signal");
    }

    // ---- rule 1: self -------------------------------------------------------------------------------------------

    [Fact]
    public void Sender_device_cookie_is_self()
    {
        AssertVerdict(Verdict.Self, Classifier().Classify(Open(Chrome) with { FromSenderDevice = true }), "signed cookie");
    }

    [Fact]
    public void Self_beats_everything()
    {
        var hit = Click("curl/8.5.0", GatewayIp, TimeSpan.FromSeconds(1)) with
        {
            Method = "HEAD",
            FromSenderDevice = true,
            IsHoneypot = true,
            OtherLinksClickedTogether = 3,
        };
        AssertVerdict(Verdict.Self, Classifier().Classify(hit));
    }

    [Fact]
    public void Sender_viewing_recently_makes_a_Gmail_proxy_fetch_self()
    {
        AssertVerdict(Verdict.Self, Classifier().Classify(Open(GmailProxy) with { SenderViewedRecently = true }), "sender");
    }

    [Fact]
    public void Sender_viewing_recently_does_not_touch_non_Gmail_hits()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(Chrome) with { SenderViewedRecently = true }));
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(YahooProxy) with { SenderViewedRecently = true }));
    }

    // ---- rule 2: non-GET ----------------------------------------------------------------------------------------

    [Fact]
    public void HEAD_click_is_a_scanner()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome) with { Method = "HEAD" }), "HEAD request");
    }

    [Fact]
    public void HEAD_open_is_never_human()
    {
        var result = Classifier().Classify(Open(AppleMail) with { Method = "HEAD" });
        AssertVerdict(Verdict.Bot, result, "never counts as an open");
    }

    [Fact]
    public void HEAD_beats_the_Gmail_proxy_first_fetch()
    {
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open(GmailProxy) with { Method = "HEAD" }));
    }

    [Fact]
    public void Other_methods_are_treated_like_HEAD()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome) with { Method = "OPTIONS" }), "OPTIONS request");
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open(Chrome) with { Method = "POST" }));
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(Chrome) with { Method = "get" }));
    }

    // ---- rule 3: honeypot ---------------------------------------------------------------------------------------

    [Fact]
    public void Honeypot_click_beats_a_human_user_agent()
    {
        var hit = Click(Safari, afterSend: TimeSpan.FromHours(3)) with { IsHoneypot = true };
        AssertVerdict(Verdict.Scanner, Classifier().Classify(hit), "honeypot");
    }

    // ---- rule 4: known scanners ---------------------------------------------------------------------------------

    [Fact]
    public void Scanner_user_agent_is_a_scanner_for_clicks_and_opens()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click("Office365-Crawler/1.0")), "Safe Links");
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Open("Mozilla/5.0 (compatible; Mimecast URL Protect)")), "Mimecast");
    }

    [Fact]
    public void Configured_scanner_range_is_a_scanner_even_with_a_browser_user_agent()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome, GatewayIp)), "scanner range");
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome, IPAddress.Parse("2001:db8:5ca7:1::9"))), "scanner range");
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Open(Chrome, GatewayIp.MapToIPv6())), "scanner range");
    }

    [Fact]
    public void Invalid_scanner_ranges_fail_option_validation()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Tracking:Classifier:ScannerRanges:0"] = "not-a-range" })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddHitClassification(configuration).BuildServiceProvider();
        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ClassifierOptions>>().Value);
    }

    [Fact]
    public void Scanner_ranges_given_as_one_value_separated_by_commas_are_read()
    {
        // What an environment variable (Tracking__Classifier__ScannerRanges) gives: one value, no list.
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Tracking:Classifier:ScannerRanges"] = "203.0.113.0/24, 198.51.100.7" })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddHitClassification(configuration).BuildServiceProvider();
        var classifier = provider.GetRequiredService<HitClassifier>();
        AssertVerdict(Verdict.Scanner, classifier.Classify(Click(Chrome, GatewayIp)), "scanner range");
        AssertVerdict(Verdict.Scanner, classifier.Classify(Open(Chrome, IPAddress.Parse("198.51.100.7"))), "scanner range");
        Assert.Equal(Verdict.Human, classifier.Classify(Open(Chrome, IPAddress.Parse("198.51.100.8"))).Verdict);
    }

    [Fact]
    public void An_invalid_scanner_range_in_one_value_fails_option_validation()
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Tracking:Classifier:ScannerRanges"] = "203.0.113.0/24,not-a-range" })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddHitClassification(configuration).BuildServiceProvider();
        Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ClassifierOptions>>().Value);
    }

    [Theory]
    [InlineData("00:00:00")]
    [InlineData("-00:00:01")]
    [InlineData("00:01:00.001")]
    public void A_click_burst_window_that_is_not_positive_or_longer_than_a_minute_fails_option_validation(string window)
    {
        var configuration = new ConfigurationBuilder()
            .AddInMemoryCollection(new Dictionary<string, string?> { ["Tracking:Classifier:ClickBurstWindow"] = window })
            .Build();
        using var provider = new ServiceCollection().AddLogging().AddHitClassification(configuration).BuildServiceProvider();
        var e = Assert.Throws<OptionsValidationException>(() => provider.GetRequiredService<IOptions<ClassifierOptions>>().Value);
        Assert.Contains("ClickBurstWindow", e.Message);
    }

    [Theory]
    [InlineData("00:00:01", "several links clicked within one second (2 links)")]
    [InlineData("00:00:05", "several links clicked within 5 seconds (2 links)")]
    [InlineData("00:00:00.500", "several links clicked within 500 ms (2 links)")]
    public void A_burst_names_the_configured_window(string window, string reason)
    {
        var classifier = new HitClassifier(Apple.Value, Options.Create(new ClassifierOptions { ClickBurstWindow = TimeSpan.Parse(window, System.Globalization.CultureInfo.InvariantCulture) }));
        var hit = Click(Chrome, afterSend: TimeSpan.FromHours(1)) with { OtherLinksClickedTogether = 1 };
        var result = classifier.Classify(hit);
        Assert.Equal((Verdict.Scanner, reason), (result.Verdict, result.Reason));
    }

    // ---- rule 5: Gmail prefetch ---------------------------------------------------------------------------------

    [Fact]
    public void Gmail_prefetch_is_a_proxy_prefetch()
    {
        AssertVerdict(Verdict.ProxyPrefetch, Classifier().Classify(Open(GmailPrefetch)), "prefetch");
    }

    // ---- rule 6: webmail image proxies --------------------------------------------------------------------------

    [Fact]
    public void First_Gmail_proxy_fetch_is_human_and_later_ones_are_prefetch()
    {
        var classifier = Classifier();
        AssertVerdict(Verdict.Human, classifier.Classify(Open(GmailProxy) with { EarlierProxyFetches = 0 }), "first Gmail image-proxy fetch");
        AssertVerdict(Verdict.ProxyPrefetch, classifier.Classify(Open(GmailProxy) with { EarlierProxyFetches = 1 }), "cache effect");
        AssertVerdict(Verdict.ProxyPrefetch, classifier.Classify(Open(GmailProxy) with { EarlierProxyFetches = 7 }));
    }

    [Fact]
    public void Yahoo_and_other_webmail_proxies_follow_the_same_rule()
    {
        var classifier = Classifier();
        AssertVerdict(Verdict.Human, classifier.Classify(Open(YahooProxy)), "Yahoo");
        AssertVerdict(Verdict.ProxyPrefetch, classifier.Classify(Open(YahooProxy) with { EarlierProxyFetches = 1 }));
        AssertVerdict(Verdict.Human, classifier.Classify(Open(SeznamProxy)));
        AssertVerdict(Verdict.ProxyPrefetch, classifier.Classify(Open(SeznamProxy) with { EarlierProxyFetches = 2 }));
    }

    [Fact]
    public void Proxy_rule_does_not_apply_to_clicks()
    {
        // An image proxy never follows links; a "click" with its UA is a machine, not a first view.
        AssertVerdict(Verdict.Bot, Classifier().Classify(Click(GmailProxy)));
    }

    [Fact]
    public void Proxy_fetch_soon_after_sending_is_still_a_first_view()
    {
        var hit = Open(GmailProxy) with { SentAt = Now.AddSeconds(-3) };
        AssertVerdict(Verdict.Human, Classifier().Classify(hit));
    }

    // ---- rule 7: Apple Mail Privacy Protection ------------------------------------------------------------------

    [Fact]
    public void Apple_address_with_bare_Mozilla_is_a_proxy_prefetch()
    {
        AssertVerdict(Verdict.ProxyPrefetch, Classifier().Classify(Open("Mozilla/5.0", AppleIp)), "Apple Mail Privacy Protection");
        AssertVerdict(Verdict.ProxyPrefetch, Classifier().Classify(Open("Mozilla/5.0", AppleIpV6)));
        AssertVerdict(Verdict.ProxyPrefetch, Classifier().Classify(Open("Mozilla/5.0", AppleIp.MapToIPv6())));
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Apple_address_with_empty_user_agent_is_a_proxy_prefetch(string? userAgent)
    {
        AssertVerdict(Verdict.ProxyPrefetch, Classifier().Classify(Open(userAgent, AppleIp)));
    }

    [Fact]
    public void Apple_address_with_a_real_Safari_user_agent_is_human()
    {
        // iCloud Private Relay users browse from the same addresses; their browser sends a full UA.
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(Safari, AppleIp)));
        AssertVerdict(Verdict.Human, Classifier().Classify(Click(Safari, AppleIp, TimeSpan.FromMinutes(10))));
    }

    [Fact]
    public void Bare_Mozilla_outside_Apple_ranges_is_a_bot()
    {
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open("Mozilla/5.0", OfficeIp)));
    }

    [Fact]
    public void Apple_detection_is_off_when_no_ranges_are_loaded()
    {
        var noApple = new AppleRelayRanges(
            Options.Create(new AppleRelayOptions { Directory = Path.Combine(Path.GetTempPath(), "no-such-dir-" + Guid.NewGuid()), CacheFile = null }),
            NullLogger<AppleRelayRanges>.Instance);
        var classifier = new HitClassifier(noApple, Options.Create(new ClassifierOptions()));
        AssertVerdict(Verdict.Bot, classifier.Classify(Open("Mozilla/5.0", AppleIp)));
    }

    // ---- rule 8: click behaviour and timing ---------------------------------------------------------------------

    [Fact]
    public void Click_three_seconds_after_sending_is_a_scanner()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome, afterSend: TimeSpan.FromSeconds(3))), "clicked 3 s after sending");
    }

    [Fact]
    public void Click_five_minutes_after_sending_is_human()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Click(Chrome, afterSend: TimeSpan.FromMinutes(5))));
    }

    [Fact]
    public void Click_window_is_configurable_and_exclusive_at_its_end()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Click(Chrome, afterSend: TimeSpan.FromSeconds(10))));
        AssertVerdict(Verdict.Scanner, Classifier(TimeSpan.FromSeconds(45)).Classify(Click(Chrome, afterSend: TimeSpan.FromSeconds(30))), "30 s");
        AssertVerdict(Verdict.Human, Classifier(TimeSpan.Zero).Classify(Click(Chrome, afterSend: TimeSpan.FromSeconds(1))));
    }

    [Fact]
    public void Click_before_the_recorded_send_time_is_a_scanner()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click(Chrome) with { SentAt = Now.AddMinutes(1) }), "before");
    }

    [Fact]
    public void Click_without_a_send_time_skips_the_timing_rule()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Click(Chrome) with { SentAt = null }));
    }

    [Fact]
    public void Open_soon_after_sending_is_not_judged_by_timing()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(AppleMail) with { SentAt = Now.AddSeconds(-2) }));
    }

    [Fact]
    public void Two_links_in_the_same_second_is_a_scanner()
    {
        var hit = Click(Chrome, afterSend: TimeSpan.FromHours(1)) with { OtherLinksClickedTogether = 1 };
        AssertVerdict(Verdict.Scanner, Classifier().Classify(hit), "within one second");
    }

    [Fact]
    public void Apple_prefetches_images_not_links_so_a_bare_click_from_its_relay_is_judged_by_the_click_rules()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click("Mozilla/5.0", AppleIp, TimeSpan.FromSeconds(2))), "after sending");
        AssertVerdict(Verdict.Bot, Classifier().Classify(Click("Mozilla/5.0", AppleIp, TimeSpan.FromHours(1))));
    }

    // ---- rule 9: bots -------------------------------------------------------------------------------------------

    [Fact]
    public void Crawler_is_a_bot_and_the_reason_names_the_token()
    {
        AssertVerdict(Verdict.Bot, Classifier().Classify(Click("curl/8.5.0")), "crawler or link previewer: curl");
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open("Mozilla/5.0 (compatible; bingbot/2.0; +http://www.bing.com/bingbot.htm)")), "crawler or link previewer: bingbot");
    }

    [Fact]
    public void Empty_user_agent_outside_Apple_is_a_bot()
    {
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open(null)), "empty user agent");
    }

    [Fact]
    public void Scanner_timing_beats_the_bot_rule_for_clicks()
    {
        AssertVerdict(Verdict.Scanner, Classifier().Classify(Click("python-requests/2.31.0", afterSend: TimeSpan.FromSeconds(4))));
    }

    [Fact]
    public void Missing_ip_is_handled()
    {
        AssertVerdict(Verdict.Human, Classifier().Classify(Open(Chrome) with { Ip = null }));
        AssertVerdict(Verdict.Bot, Classifier().Classify(Open("Mozilla/5.0") with { Ip = null }));
    }

    [Fact]
    public void Reasons_stay_short_and_clean_with_hostile_input()
    {
        var hostileUa = "EvilBot\r\n" + new string('x', 5000);
        var result = Classifier().Classify(Open(hostileUa) with { Method = "GET" });
        AssertVerdict(Verdict.Bot, result);
        Assert.DoesNotContain('\n', result.Reason);

        var weirdMethod = Classifier().Classify(Click(Chrome) with { Method = "PROPFIND\n" + new string('Y', 500) });
        AssertVerdict(Verdict.Scanner, weirdMethod);
        Assert.DoesNotContain('\n', weirdMethod.Reason);
    }
}
