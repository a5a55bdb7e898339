namespace EmailTracking.Server.Sequences;

/// <summary>The sequence scheduler (section <c>Sequences</c>).</summary>
public sealed class SequenceOptions
{
    public const string Section = "Sequences";

    /// <summary>
    /// The key of the clock the scheduler, the enroller and the unsubscribe page read (a keyed TimeProvider, the
    /// system's unless replaced): tests move sequence time by days without moving the mail watchers' timers.
    /// </summary>
    public const string ClockKey = "sequences";

    /// <summary>Off: nothing is sent by this instance (another instance may send).</summary>
    public bool Enabled { get; set; } = true;
    /// <summary>How often due steps are looked for (sooner when something is enrolled or answered).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(15);
    /// <summary>How many enrolments an instance takes at a time.</summary>
    public int Batch { get; set; } = 20;
    /// <summary>
    /// How long an instance holds an enrolment it works on; a crashed instance's lease runs out. A step that ended in
    /// an error keeps its lease, so this is also how long it waits before it is tried again.
    /// </summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(5);
    /// <summary>At most this many sequence emails through one mailbox in 24 hours (providers suspend mailboxes that send in bulk).</summary>
    public int DailyLimitPerMailbox { get; set; } = 200;
    /// <summary>At least this long between two sequence emails through one mailbox.</summary>
    public TimeSpan MinSpacing { get; set; } = TimeSpan.FromSeconds(45);
    /// <summary>A mailbox that needs reconnecting, or is unreachable, is tried again after this long; nothing is lost meanwhile.</summary>
    public TimeSpan MailboxRetry { get; set; } = TimeSpan.FromMinutes(15);
    /// <summary>
    /// Also put List-Unsubscribe (with RFC 8058 one-click) in the headers. Off by default: the link at the foot of
    /// every step is there either way, and one-to-one mail from a person's mailbox does not carry bulk-mail headers —
    /// out-of-office robots (Sieve vacation among them) do not answer mail with list headers, so the pause until a
    /// return date would be lost. Turn it on when the sequences are bulk mail by Gmail's and Yahoo's definition.
    /// </summary>
    public bool ListUnsubscribeHeader { get; set; }
    /// <summary>After this many failed attempts at one step, the enrolment stops with the error.</summary>
    public int MaxAttempts { get; set; } = 5;
}
