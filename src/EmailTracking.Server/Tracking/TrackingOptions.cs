namespace EmailTracking.Server.Tracking;

public sealed class TrackingOptions
{
    public const string Section = "Tracking";

    /// <summary>
    /// The public base URL of the tracking host that recipients' mail clients reach (pixel and click URLs are built on
    /// it), e.g. https://t.example.com. Defaults to the URL the server listens on, which only suits local use.
    /// </summary>
    public string? PublicBaseUrl { get; set; }

    /// <summary>The domain after the @ in our Message-IDs; defaults to the public base URL's host.</summary>
    public string? MessageIdDomain { get; set; }

    /// <summary>Largest HTML body accepted for registration, in bytes.</summary>
    public int MaxHtmlBytes { get; set; } = 2 * 1024 * 1024;

    /// <summary>Largest total of tracked HTML one registration may produce (body size × copies), in bytes.</summary>
    public long MaxTrackedOutputBytes { get; set; } = 32L * 1024 * 1024;

    /// <summary>Most recipients in one registration.</summary>
    public int MaxRecipients { get; set; } = 500;

    /// <summary>
    /// Most tracked links one registration may create in all (links per copy, honeypot included, × copies). A
    /// registration is one transaction: on SQLite it holds the database's only write lock while its rows go in, and
    /// every tracking hit of every team waits for it (the recorder gives up after its busy timeout, 30 s). 500
    /// recipients × 500 links took 83 s on the project's 2-core machine; a registration at this limit took 4–6 s in all
    /// (parsing and building the copies included), well inside the recorder's 10 s wait.
    /// </summary>
    public int MaxTrackedLinks { get; set; } = 10_000;

    /// <summary>Most events the recorder commits in one transaction.</summary>
    public int RecorderMaxBatch { get; set; } = 512;

    /// <summary>
    /// On SQLite, how often the recorder copies its write-ahead log back into the database file (a PASSIVE checkpoint
    /// on its own connection, after answering the hits of a commit), and how long it waits idle before copying back what
    /// its last commits left (0 or less: after every commit; at most a day). See <see cref="EventRecorder"/>.
    /// </summary>
    public TimeSpan RecorderCheckpointInterval { get; set; } = TimeSpan.FromMilliseconds(200);
}
