namespace EmailTracking.Server.Replies.Classification;

/// <summary>What an inbound message is, as far as the reply pipeline cares.</summary>
public enum InboundKind
{
    /// <summary>Written by a person: stops the sequence the original belonged to.</summary>
    Human,

    /// <summary>Written by a machine on a person's behalf: out-of-office and vacation notices, auto-responders.</summary>
    AutoReply,

    /// <summary>A delivery failure (or delay) report: RFC 3464 or one of the non-standard formats of common servers.</summary>
    Bounce,

    /// <summary>A spam complaint or unsubscribe report (ARF, RFC 5965, and the formats some providers use instead).</summary>
    Complaint,

    /// <summary>
    /// A receipt: a read receipt (RFC 8098 message disposition notification: displayed, deleted unread, …) or a delivery
    /// success notice (a DSN whose recipients were all delivered, relayed or expanded). No person wrote it and it
    /// answers nothing: it never stops or pauses a sequence. A read receipt for a message its reader displayed is an
    /// open (<see cref="InboundClassification.Opened"/>).
    /// </summary>
    Receipt,

    /// <summary>Only from <see cref="InboundClassifier.ClassifyStream"/>: the input is not a message MimeKit can read.</summary>
    Unparseable,
}

/// <summary>
/// Why delivery to one recipient failed, in words a user can act on. The names follow the vocabulary of sisimai,
/// the widely used bounce decoder, so numbers can be compared with its published results.
/// </summary>
public enum BounceCause
{
    /// <summary>The report names no cause we recognise.</summary>
    Undetermined,
    UserUnknown,
    HostUnknown,
    HasMoved,
    NotAccept,
    MailboxFull,
    Suspend,
    MesgTooBig,
    ExceedLimit,
    Filtered,
    Rejected,
    Blocked,
    BadReputation,
    RequirePtr,
    AuthFailure,
    SpamDetected,
    VirusDetected,
    PolicyViolation,
    SecurityError,
    NoRelaying,
    Expired,
    NetworkError,
    TooManyConn,
    Speeding,
    SystemError,
    SystemFull,
    ContentError,
    SyntaxError,
    MailerError,
    FailedStartTls,
    NotCompliantRfc,

    /// <summary>A receipt's recipient: delivery succeeded (a success DSN) or the reader's client sent a read receipt; never on a bounce's recipient.</summary>
    Delivered,

    /// <summary>The recipient complained (a feedback report); never on a bounce's recipient.</summary>
    Complaint,
}

/// <summary>One recipient a bounce or a complaint is about.</summary>
/// <param name="Address">The recipient's address as the report gives it (Final-Recipient, or the failed address in the text).</param>
/// <param name="Status">
/// The RFC 3463 enhanced status code, e.g. <c>5.1.1</c>. When the report states none it is inferred from the SMTP
/// reply and the error text as <c>x.0.9yy</c> — <c>x</c> is 5 (permanent) or 4 (temporary), <c>9yy</c> names the
/// cause — the convention sisimai uses for inferred codes, so an inferred code never passes for a stated one (see
/// <see cref="InboundClassifier.IsInferredStatus"/>). Null for complaints.
/// </param>
/// <param name="Permanent">
/// Hard bounce: the address itself is dead (no such user or domain, moved, domain accepts no mail), so mailing it again
/// is pointless. False is a soft bounce: mailbox full, message refused for its content or the sender's reputation,
/// temporary trouble — the address may work later or for other mail. A 5.7.1 refusal is therefore permanent for that
/// message (see <paramref name="Status"/>) but soft for the address.
/// </param>
/// <param name="Cause">Why it failed, decided from the error text first and the status code second.</param>
/// <param name="Diagnostic">The server's own words (Diagnostic-Code or the error lines of the text), shortened.</param>
/// <param name="SentTo">
/// The address the mail was sent to when the report names another one as the failed address: RFC 3464's
/// Original-Recipient, where Final-Recipient is what an alias or a list expanded it to (sales@ delivered to bob@, and
/// bob@ failed). Null when the report does not say, or says the same address.
/// </param>
public sealed record FailedRecipient(string Address, string? Status, bool Permanent, BounceCause Cause, string? Diagnostic, string? SentTo = null);

/// <summary>The classifier's verdict on one inbound message.</summary>
/// <param name="Kind">What the message is.</param>
/// <param name="Reason">Which rule decided, in words shown to users, e.g. "Auto-Submitted: auto-replied header".</param>
public sealed record InboundClassification(InboundKind Kind, string Reason)
{
    /// <summary>
    /// Bounce: each failed recipient. Complaint: the complained-about recipient(s). Receipt: the recipient it is about
    /// (its Final-Recipient; the disposition or the delivery's diagnostic as <see cref="FailedRecipient.Diagnostic"/>).
    /// Otherwise empty.
    /// </summary>
    public IReadOnlyList<FailedRecipient> Recipients { get; init; } = [];

    /// <summary>The first recipient's <see cref="FailedRecipient.Status"/>; null unless a bounce.</summary>
    public string? Status { get; init; }

    /// <summary>The first recipient's <see cref="FailedRecipient.Permanent"/>; null unless a bounce.</summary>
    public bool? Permanent { get; init; }

    /// <summary>
    /// Bounce, complaint or receipt: the Message-ID (without angle brackets) of our message it reports on, from the
    /// report's fields (Original-Message-ID), the attached message or headers, or from headers quoted in the text. Null
    /// when the report carries none.
    /// </summary>
    public string? OriginalMessageId { get; init; }

    /// <summary>
    /// Auto-reply: the day the person says they are back, a day of their own calendar: relative dates ("back tomorrow",
    /// "next Monday", "the 7th") are resolved by the clock of the message's Date (its offset). Null when not stated.
    /// </summary>
    public DateOnly? ReturnDate { get; init; }

    /// <summary>
    /// Auto-reply with a <see cref="ReturnDate"/>: the offset of the clock it was resolved by, the Date header's (zero for
    /// a Date in UTC, or when the message has no usable Date and today in UTC stood in).
    /// </summary>
    public TimeSpan? ReturnDateOffset { get; init; }

    /// <summary>
    /// Auto-reply: its author says they have left for good ("I no longer work at Encom", "this address is no longer in
    /// use"), not that they are away: mail to the address will not reach them again.
    /// </summary>
    public bool Departed { get; init; }

    /// <summary>Complaint: the ARF Feedback-Type (abuse, opt-out, …) when stated.</summary>
    public string? FeedbackType { get; init; }

    /// <summary>
    /// Receipt: what it reports, lower case. A read receipt's disposition type (<c>displayed</c>, <c>deleted</c>,
    /// <c>dispatched</c>, <c>processed</c>, or an older one such as <c>denied</c>; null when its Disposition field is
    /// missing or unreadable); for a delivery success notice, its Action (<c>delivered</c>, <c>relayed</c>,
    /// <c>expanded</c>).
    /// </summary>
    public string? Disposition { get; init; }

    /// <summary>
    /// Receipt: true when the reader's mail client reports the message displayed by the reader's own action
    /// (RFC 8098 <c>manual-action</c>, however the receipt itself was sent): the reader opened it, whether or not their
    /// client loaded the pixel. A message displayed by an automatic action (a rule) or handled without being displayed
    /// is not an open.
    /// </summary>
    public bool Opened { get; init; }
}
