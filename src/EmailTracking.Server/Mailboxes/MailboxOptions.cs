namespace EmailTracking.Server.Mailboxes;

public sealed class MailboxOptions
{
    public const string Section = "Mailboxes";

    /// <summary>Run the watchers in this instance (several instances share the work through leases).</summary>
    public bool Watch { get; set; } = true;

    /// <summary>A new mailbox is read back this far, so that answers to mail sent before connecting are seen.</summary>
    public int LookbackDays { get; set; } = 14;

    /// <summary>How often a mailbox is polled when its server cannot IDLE (or IDLE fails).</summary>
    public TimeSpan PollInterval { get; set; } = TimeSpan.FromSeconds(60);

    /// <summary>IMAP IDLE is restarted this often (RFC 2177 asks for less than 29 minutes).</summary>
    public TimeSpan IdleRestart { get; set; } = TimeSpan.FromMinutes(9);

    /// <summary>How long a connect, a login or one command may take.</summary>
    public TimeSpan Timeout { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>Messages larger than this are classified and matched from their headers only.</summary>
    public long MaxMessageBytes { get; set; } = 25L * 1024 * 1024;

    /// <summary>
    /// The most a send's attachments may weigh together (their bytes, before base64): 25 MB, what Gmail and Outlook let
    /// a user attach. The send API takes a request up to about 4/3 of this plus 16 MB (base64 and the body).
    /// </summary>
    public long MaxAttachmentBytes { get; set; } = 25L * 1024 * 1024;

    /// <summary>
    /// How long what sending a message's not-sent copies again needs (its body, plain text and attachments) is kept
    /// after the send, while some copy is not sent; then POST /api/messages/{id}/resend answers 410. Between a minute
    /// and 90 days.
    /// </summary>
    public TimeSpan KeepUnsentFor { get; set; } = TimeSpan.FromDays(7);

    /// <summary>Whether <see cref="KeepUnsentFor"/> is one the server takes.</summary>
    public bool KeepUnsentForIsValid => KeepUnsentFor >= TimeSpan.FromMinutes(1) && KeepUnsentFor <= TimeSpan.FromDays(90);

    /// <summary>
    /// How long a resend's claim on the copies it sends holds without being renewed: the resend renews it five times
    /// within this while it sends, so a claim older than this is one whose request died, and the next resend takes its
    /// copies over (looking for them in Sent first). Between 2 seconds and a day.
    /// </summary>
    public TimeSpan ResendClaimHold { get; set; } = TimeSpan.FromMinutes(10);

    /// <summary>Whether <see cref="ResendClaimHold"/> is one the server takes.</summary>
    public bool ResendClaimHoldIsValid => ResendClaimHold >= TimeSpan.FromSeconds(2) && ResendClaimHold <= TimeSpan.FromDays(1);

    /// <summary>Longest wait between attempts after failures (the wait doubles from 5 s).</summary>
    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(30);

    /// <summary>
    /// How long an IMAP message the server refuses to send for now (a NO with RFC 5530 <c>[UNAVAILABLE]</c>,
    /// <c>[INUSE]</c>, <c>[SERVERBUG]</c> or <c>[LIMIT]</c>) is waited for. Until then each round stops before it and is
    /// retried with the usual back-off, so that an answer is not passed over for a passing fault; after it, the message
    /// is noted as unreadable and passed, so that a server that never sends it cannot hold up the mailbox for good.
    /// </summary>
    public TimeSpan TemporaryRefusalGrace { get; set; } = TimeSpan.FromHours(1);

    /// <summary>How long an instance holds a mailbox before another may take over; renewed while it watches.</summary>
    public TimeSpan Lease { get; set; } = TimeSpan.FromMinutes(2);

    /// <summary>How often the list of mailboxes to watch is re-read.</summary>
    public TimeSpan Rescan { get; set; } = TimeSpan.FromSeconds(30);

    /// <summary>After sending through SMTP, store a copy in the mailbox's Sent folder (providers that do so themselves: off).</summary>
    public bool AppendToSent { get; set; } = true;

    /// <summary>
    /// Connect to IMAP and SMTP servers on private, loopback or link-local addresses. Off: the host names users type
    /// must be public, so that a mailbox setting cannot reach this machine or its network. Turn it on when your mail
    /// server is on your own network.
    /// </summary>
    public bool AllowPrivateHosts { get; set; }

    /// <summary>The resolver for IMAP and SMTP host names; null for the system's (tests set their own).</summary>
    public Web.PublicAddress.Resolver? Resolve { get; set; }
}
