namespace EmailTracking.Server.Outbox;

/// <summary>The outbox and its worker (section <c>Outbox</c>) and the webhooks (section <c>Webhooks</c>).</summary>
public sealed class OutboxOptions
{
    public const string Section = "Outbox";

    public bool Enabled { get; set; } = true;
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(5);
    /// <summary>
    /// Opens, clicks and document views are dispatched once this old: verdicts can still change shortly after a hit
    /// (a click burst re-marked as a scanner, the sender's own Gmail view), and what goes out should be final.
    /// </summary>
    public TimeSpan Settle { get; set; } = TimeSpan.FromSeconds(60);
    public int Batch { get; set; } = 100;
    /// <summary>
    /// How many targets are delivered to at once (one lane each, see OutboxService). Each target's deliveries go one
    /// after another, in the order they were claimed; a slow or hanging target holds up only its own.
    /// </summary>
    public int Concurrency { get; set; } = 4;
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);
    /// <summary>
    /// After this many failed attempts a delivery is a dead letter (replay it from the web app or `et outbox replay`).
    /// With the default back-off the 17 waits add up to 25–50 hours, so that a receiver (or Salesforce) that is down for a
    /// day, or an evening and a night, still gets its events.
    /// </summary>
    public int MaxAttempts { get; set; } = 18;
    /// <summary>The wait after the first failure; it doubles each time (with jitter), up to <see cref="MaxBackoff"/>.</summary>
    public TimeSpan FirstBackoff { get; set; } = TimeSpan.FromSeconds(30);
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromHours(6);
    /// <summary>
    /// How long, from when a delivery was made, a target that says it is over a limit (429, Salesforce's
    /// REQUEST_LIMIT_EXCEEDED) is waited for without using up the delivery's attempts; after that such answers count as
    /// failures. A day: Salesforce's daily API limit is a rolling 24 hours.
    /// </summary>
    public TimeSpan LimitPatience { get; set; } = TimeSpan.FromDays(1);
    /// <summary>A target whose credentials need reconnecting is tried again after this long; its deliveries wait.</summary>
    public TimeSpan ReconnectRetry { get; set; } = TimeSpan.FromMinutes(15);
    /// <summary>
    /// How long, from when a delivery was made, it waits for its target to be reconnected (or for the server's own
    /// Salesforce credentials to be fixed); then it is a dead letter saying so, which can be replayed once the target
    /// works. Without a bound, a team whose admin left would keep every event it ever made waiting in the table.
    /// </summary>
    public TimeSpan ReconnectPatience { get; set; } = TimeSpan.FromDays(30);
}

public sealed class WebhookOptions
{
    public const string Section = "Webhooks";

    /// <summary>Allow http:// URLs (never in production: the payload names people).</summary>
    public bool AllowHttp { get; set; }
    /// <summary>Allow targets on loopback, private, link-local and other non-public addresses (tests; a private network).</summary>
    public bool AllowPrivateTargets { get; set; }
    /// <summary>How long a receiver has to answer.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(10);
}
