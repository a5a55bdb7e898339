namespace EmailTracking.Server.Outbox;

/// <summary>The kinds of loggable event the outbox carries to webhooks and to Salesforce.</summary>
public static class OutboxEventTypes
{
    public const string MessageSent = "message.sent";
    /// <summary>The first open of a message by a person (per recipient when the copy is theirs).</summary>
    public const string MessageOpened = "message.opened";
    public const string LinkClicked = "link.clicked";
    public const string DocumentViewed = "document.viewed";
    /// <summary>A person followed a web or mail link inside a tracked document (its address and page in the payload).</summary>
    public const string DocumentLinkFollowed = "document.link_followed";
    public const string ReplyReceived = "reply.received";
    public const string AutoReplyReceived = "auto_reply.received";
    public const string BounceReceived = "bounce.received";

    public static readonly string[] All = [MessageSent, MessageOpened, LinkClicked, DocumentViewed, DocumentLinkFollowed, ReplyReceived, AutoReplyReceived, BounceReceived];
}

/// <summary>What happened, as every target receives it (webhooks as JSON; Salesforce maps it to a Task).</summary>
/// <param name="Recipient">The recipient the event is about (the copy's, or the one who answered), when known.</param>
/// <param name="Recipients">Everyone the message went to (To and Cc).</param>
/// <param name="FromAddress">Answers: who wrote.</param>
/// <param name="Excerpt">Answers: the first lines of the text.</param>
/// <param name="LinkUrl">A click: the link's address; a link followed in a document: the address it leads to.</param>
/// <param name="Page">A link followed in a document: the page it is on.</param>
public sealed record OutboxPayload(
    string Type, DateTimeOffset OccurredAt, Guid TeamId, Guid UserId, string SenderAddress,
    Guid MessageId, string Subject, DateTimeOffset? SentAt, string? Recipient, IReadOnlyList<string> Recipients,
    string? LinkUrl, string? DocumentName, string? FromAddress, string? Excerpt, string Verdict, string? Reason,
    OutboxSummary Summary, int? Page = null);

/// <summary>The message's tracking so far (people only), for a description line.</summary>
public sealed record OutboxSummary(int Opens, int Clicks, int PagesRead, bool Replied);

/// <summary>One delivery of one event to one target. The idempotency key is the same on every attempt.</summary>
public sealed record OutboxMessage(long DeliveryId, string IdempotencyKey, int Attempt, OutboxPayload Payload);

public enum DeliveryOutcome
{
    Delivered = 0,
    /// <summary>Try again later (network, 5xx); dead after the configured number of attempts.</summary>
    Retry = 1,
    /// <summary>It will never succeed as it is (a validation rule, a missing field): recorded, not retried.</summary>
    Dead = 2,
    /// <summary>The target's credentials were revoked: the connection needs reconnecting; the delivery waits.</summary>
    NeedsReconnect = 3,
    /// <summary>Nothing to do for this event at this target (say, an unknown recipient the settings skip).</summary>
    Skipped = 4,
    /// <summary>
    /// The target is over a rate or API limit (429, Salesforce's REQUEST_LIMIT_EXCEEDED): try again later without using
    /// up an attempt, for up to <see cref="OutboxOptions.LimitPatience"/>; after that it counts as <see cref="Retry"/>.
    /// </summary>
    Limited = 5,
}

/// <param name="RetryAfter">When the target said how long to wait (Retry-After, a rate limit).</param>
/// <param name="ExternalId">What the target made of it (a Salesforce Task id).</param>
public sealed record DeliveryResult(DeliveryOutcome Outcome, int? StatusCode = null, string? Detail = null, TimeSpan? RetryAfter = null, string? ExternalId = null);

/// <summary>
/// Somewhere events go: a team's webhook, a team's Salesforce org. Registered as a keyed scoped service by
/// <see cref="Kind"/>; the outbox worker calls it for each due delivery and records the outcome and the attempt.
/// </summary>
public interface IDeliveryTarget
{
    string Kind { get; }
    Task<DeliveryResult> DeliverAsync(Guid targetId, OutboxMessage message, CancellationToken ct);
}
