using Microsoft.AspNetCore.Identity;

namespace EmailTracking.Data;

public enum Plan { Solo = 0, Team = 1 }

public enum TeamRole { Member = 0, Admin = 1 }

public sealed class Team
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public required string Name { get; set; }

    /// <summary>
    /// <see cref="Name"/> as <see cref="Normalize"/> gives it, unique: "Encom" and "encom" are one team, also when two
    /// are made at the same moment. Teams made before the column existed that differed only in case keep their names;
    /// the later ones' got " #" and their id appended (the TeamNormalizedName migration), which no name given makes.
    /// </summary>
    public required string NormalizedName { get; set; }

    public Plan Plan { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public List<User> Users { get; set; } = [];

    /// <summary>The longest normalised name: a name's 200 characters and a near-duplicate's " #" and id (the migration).</summary>
    public const int MaxNormalizedNameLength = 240;

    /// <summary>
    /// A team name as teams are found and told apart by: trimmed, ASCII letters upper-case. Only ASCII letters, so that
    /// the migration's SQL (SQLite's upper() folds only those; PostgreSQL's under the C collation the same) gives the
    /// same value for the names already stored as this gives for the names typed later.
    /// </summary>
    public static string Normalize(string name)
    {
        var trimmed = name.Trim();
        return string.Create(trimmed.Length, trimmed, static (span, s) =>
        {
            for (var i = 0; i < s.Length; i++) span[i] = char.IsAsciiLetterLower(s[i]) ? char.ToUpperInvariant(s[i]) : s[i];
        });
    }
}

/// <summary>A person who sends tracked email. Identity supplies the sign-in parts (hash, lockout).</summary>
public sealed class User : IdentityUser<Guid>
{
    public Guid TeamId { get; set; }
    public Team? Team { get; set; }
    public TeamRole Role { get; set; }
    public string? DisplayName { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Whether the add-ins start a new message with tracking on (the user can still switch it per message).</summary>
    public bool TrackByDefault { get; set; } = true;
    /// <summary>
    /// The password was set by someone else (an admin's initial password, `et users add|set-password`): the web app asks
    /// for a new one before anything else. Cleared when the user chooses their own.
    /// </summary>
    public bool MustChangePassword { get; set; }
    /// <summary>The user's last sign-in to the web app with their password; null when they never did.</summary>
    public DateTimeOffset? LastSignInAt { get; set; }
    /// <summary>
    /// When an admin last mailed the user an invitation to choose their web password (the Team page shows it pending
    /// until <see cref="InvitationAcceptedAt"/>, and expired past the invitation's lifetime); null when none was sent.
    /// </summary>
    public DateTimeOffset? InvitedAt { get; set; }
    /// <summary>The admin who sent that invitation (no foreign key: the admin may be gone since; the page then says "an admin").</summary>
    public Guid? InvitedById { get; set; }
    /// <summary>When the user accepted the invitation: chose their password on its page.</summary>
    public DateTimeOffset? InvitationAcceptedAt { get; set; }
    /// <summary>When an admin revoked the pending invitation of a user who could not simply be removed (they own data): the user is deactivated too.</summary>
    public DateTimeOffset? InvitationRevokedAt { get; set; }
    /// <summary>The user's other addresses: aliases and send-as addresses. Their own views and mail never count.</summary>
    public List<UserAddress> Addresses { get; set; } = [];
}

/// <summary>
/// An address of a user: their email, or an alias. An alias starts as the user's claim, proven by nothing; several users
/// may claim the same address (so that adding one tells nobody whether it is someone else's). Proof — a confirmation
/// mail opened by the user, an address Google verified — is kept as an Identity user login
/// (AccountService.VerifiedAddressProvider), which one user at most holds; the other users' claims then give way.
/// </summary>
public sealed class UserAddress
{
    public long Id { get; set; }
    public Guid UserId { get; set; }
    /// <summary>Lower-case address.</summary>
    public required string Address { get; set; }
}

/// <summary>A confirmation mail sent to one of a user's addresses: when it was sent (the page shows it; resends are limited by these).</summary>
public sealed class AddressConfirmation
{
    public long Id { get; set; }
    public Guid UserId { get; set; }
    /// <summary>Lower-case address.</summary>
    public required string Address { get; set; }
    public DateTimeOffset SentAt { get; set; }
}

/// <summary>
/// An invitation mail a team's admin sent a member (the Team page, the API): counted for the limits on sending one again
/// (<c>Team:InvitationResend*</c>). It names the member by <see cref="MemberId"/>, without a key on the user's row: a
/// member removed by revoking their invitation still counts toward the team's hour, and the row says nothing of the
/// account being used. Rows older than a day are deleted by the next send in the team.
/// </summary>
public sealed class InvitationMail
{
    public long Id { get; set; }
    public Guid TeamId { get; set; }
    public Guid MemberId { get; set; }
    public DateTimeOffset SentAt { get; set; }
    /// <summary>Sent to a member who had been mailed an invitation before: the first mail to a member is not limited but by the spacing.</summary>
    public bool Resend { get; set; }
}

/// <summary>A personal API token. Only a SHA-256 hash is stored; the token is shown once.</summary>
public sealed class ApiToken
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid UserId { get; set; }
    public User? User { get; set; }
    public required string Name { get; set; }
    /// <summary>First characters of the token, to tell tokens apart in lists.</summary>
    public required string Prefix { get; set; }
    public required byte[] Hash { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset? LastUsedAt { get; set; }
    public DateTimeOffset? RevokedAt { get; set; }
}

public enum MessageSource { Api = 0, Web = 1, GmailAddon = 2, OutlookAddin = 3, Sequence = 4 }

public enum RecipientRole { To = 0, Cc = 1, Bcc = 2 }

public sealed class TrackedMessage
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public User? User { get; set; }
    public MessageSource Source { get; set; }
    public required string FromAddress { get; set; }
    public required string Subject { get; set; }
    /// <summary>True when each recipient got a copy of their own (own pixel, links, Message-ID).</summary>
    public bool PerRecipient { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>When the mail left; null until the sender (or the send path) says so. Timing rules use it.</summary>
    public DateTimeOffset? SentAt { get; set; }
    /// <summary>
    /// When the sender last opened this message in Gmail (the add-on says so). Gmail loads images through its proxy,
    /// so no device mark reaches us: a proxy fetch right then is the sender's own.
    /// </summary>
    public DateTimeOffset? SenderViewedAt { get; set; }
    public List<Recipient> Recipients { get; set; } = [];
    public List<MessageCopy> Copies { get; set; } = [];
}

public sealed class Recipient
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TrackedMessageId { get; set; }
    public TrackedMessage? TrackedMessage { get; set; }
    /// <summary>Lower-case address.</summary>
    public required string Address { get; set; }
    public string? Name { get; set; }
    public RecipientRole Role { get; set; }
    /// <summary>The copy this recipient received.</summary>
    public Guid CopyId { get; set; }
}

/// <summary>
/// One body as sent: with attribution per person each recipient has a copy, otherwise all share one.
/// Each copy has its own Message-ID, pixel and links.
/// </summary>
public sealed class MessageCopy
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TrackedMessageId { get; set; }
    public TrackedMessage? TrackedMessage { get; set; }
    /// <summary>
    /// The message's owner, copied from it (a message never changes hands): a reply's Message-ID lookup checks the
    /// owner on the copy it finds, without reading the message's row too.
    /// </summary>
    public Guid UserId { get; set; }
    /// <summary>The message's team, copied from it like <see cref="UserId"/>.</summary>
    public Guid TeamId { get; set; }
    /// <summary>Our Message-ID, without angle brackets.</summary>
    public required string MessageIdHeader { get; set; }
    public required string PixelToken { get; set; }
    /// <summary>The recipient when this copy went to one person; null for a shared copy.</summary>
    public Guid? RecipientId { get; set; }
    /// <summary>
    /// The Message-ID the mail really left with, when the provider replaced ours (Outlook does at send), without
    /// angle brackets. Replies may quote either.
    /// </summary>
    public string? SentMessageIdHeader { get; set; }
    /// <summary>The provider's conversation id once known (Gmail threadId, Graph conversationId).</summary>
    public string? ProviderThreadId { get; set; }
    /// <summary>The first 22 bytes of Outlook's Thread-Index (base64), which name the conversation.</summary>
    public string? ThreadIndex { get; set; }
    /// <summary>
    /// Why the send path could not send this copy (the server's or the transport's words, at most 1000 characters);
    /// null for a copy that was sent, and cleared when it is sent again. Its recipients are shown as not sent, not as
    /// not having opened.
    /// </summary>
    public string? NotSentReason { get; set; }
    /// <summary>When the send that could not send this copy gave up on it.</summary>
    public DateTimeOffset? NotSentAt { get; set; }
    /// <summary>
    /// The request sending this not-sent copy again (POST /api/messages/{id}/resend), claimed with a conditional update
    /// so that two at once do not both send it; null when none is. <see cref="ResendClaimedAt"/> lets a claim whose
    /// request died be taken over.
    /// </summary>
    public Guid? ResendClaim { get; set; }
    public DateTimeOffset? ResendClaimedAt { get; set; }
    public List<TrackedLink> Links { get; set; } = [];
}

/// <summary>
/// What sending a message's not-sent copies again needs, kept only while some copy is not sent and for a limited time
/// (Mailboxes:KeepUnsentFor): the body as the sender wrote it (untracked: each copy's links are made again), its plain
/// text, its attachments and the mailbox it was sent through. Deleted once every copy has left, when it expires, and
/// with its message.
/// </summary>
public sealed class UnsentContent
{
    public Guid TrackedMessageId { get; set; }
    /// <summary>The mailbox the send went through (no key: a mailbox removed since is told, not followed).</summary>
    public Guid MailboxId { get; set; }
    public required string Html { get; set; }
    public string? Text { get; set; }
    public DateTimeOffset KeptUntil { get; set; }
    public List<UnsentAttachment> Attachments { get; set; } = [];
}

public sealed class UnsentAttachment
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TrackedMessageId { get; set; }
    /// <summary>Its place among the send's files (they go in the order they were given).</summary>
    public int Ordinal { get; set; }
    public required string FileName { get; set; }
    public required string MediaType { get; set; }
    public required byte[] Content { get; set; }
}

public sealed class TrackedLink
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid CopyId { get; set; }
    public MessageCopy? Copy { get; set; }
    public required string Token { get; set; }
    /// <summary>The stored target; never carried in the URL.</summary>
    public required string Url { get; set; }
    /// <summary>Position of the link in the body (0-based), for "which link".</summary>
    public int Ordinal { get; set; }
    /// <summary>The hidden link no person can see: any click on it is a machine.</summary>
    public bool IsHoneypot { get; set; }
}

/// <summary>
/// What happened. Opens and clicks are hits on our URLs; the others are messages that arrived in the sender's
/// connected mailbox in answer to a tracked message.
/// </summary>
public enum EventKind
{
    Open = 0, Click = 1, Reply = 2, AutoReply = 3, Bounce = 4, Complaint = 5,
    /// <summary>A tracked document link was opened (the viewer page fetched).</summary>
    DocumentView = 6,
    /// <summary>A reader reached a page of a tracked document for the first time in a visit (<see cref="TrackingEvent.Page"/>).</summary>
    DocumentPage = 7,
    /// <summary>A tracked document was downloaded.</summary>
    Download = 8,
    /// <summary>A reader followed a web or mail link inside a tracked document (<see cref="TrackingEvent.Url"/>, on <see cref="TrackingEvent.Page"/>).</summary>
    DocumentLink = 9,
    /// <summary>
    /// A receipt arrived: a read receipt (RFC 8098) that reports the message deleted unread or handled without the
    /// reader displaying it, or a delivery success notice. A read receipt of a message the reader displayed is recorded
    /// as an <see cref="Open"/> instead; its inbound message keeps this kind.
    /// </summary>
    Receipt = 10,
}

public enum Verdict { Human = 0, Self = 1, ProxyPrefetch = 2, Scanner = 3, Bot = 4 }

/// <summary>A raw hit or message event. Always kept, whatever its verdict.</summary>
public sealed class TrackingEvent
{
    /// <summary>Increasing id; the live feed's Last-Event-ID. Events are never deleted: on SQLite a new id is one more than the largest (see AppDbContext).</summary>
    public long Id { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    /// <summary>
    /// The message the event is about; null for a document read through a share link that was never part of a
    /// registered message (pasted into mail sent untracked, a chat, a web page): the event then names the document
    /// (<see cref="ContentId"/>) and the link's owner, and no copy or recipient.
    /// </summary>
    public Guid? TrackedMessageId { get; set; }
    public Guid? CopyId { get; set; }
    public Guid? RecipientId { get; set; }
    public Guid? LinkId { get; set; }
    public EventKind Kind { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    public string? Method { get; set; }
    /// <summary>For inbound messages: who wrote (a reply's author, a robot, a mailer-daemon).</summary>
    public string? FromAddress { get; set; }
    public Verdict Verdict { get; set; }
    public required string Reason { get; set; }
    /// <summary>For document events: which document.</summary>
    public Guid? ContentId { get; set; }
    /// <summary>For <see cref="EventKind.DocumentPage"/> and <see cref="EventKind.DocumentLink"/>: the page (1-based).</summary>
    public int? Page { get; set; }
    /// <summary>For <see cref="EventKind.DocumentLink"/>: the address the link inside the document leads to.</summary>
    public string? Url { get; set; }
    /// <summary>For a document read through a share link that asks for it: the address the reader gave.</summary>
    public string? ReaderEmail { get; set; }
    /// <summary>Whether <see cref="ReaderEmail"/> was proved with a mailed code.</summary>
    public bool ReaderVerified { get; set; }
}

/// <summary>
/// An event's verdict changed after it was recorded: hits that arrived together could not see each other when they were
/// classified (a scanner clicking every link at once, an image proxy fetching twice), or the sender opened their own
/// mail in Gmail just after its image was fetched. The event row holds the verdict now; this row says that it changed,
/// in commit order, so that a live feed that already showed the event as a person's can take it back.
/// </summary>
public sealed class VerdictChange
{
    /// <summary>Increasing id, in commit order (the live feed's second cursor).</summary>
    public long Id { get; set; }
    public long EventId { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public Guid TrackedMessageId { get; set; }
    public Guid? RecipientId { get; set; }
    public EventKind Kind { get; set; }
    public Verdict From { get; set; }
    public Verdict To { get; set; }
    public required string Reason { get; set; }
    public DateTimeOffset ChangedAt { get; set; }
}

public enum MailboxKind { Imap = 0, Gmail = 1, Graph = 2 }

public enum MailboxStatus { Active = 0, NeedsReconnect = 1, Disabled = 2 }

/// <summary>
/// A mailbox the user connected: we send through it with our Message-ID and watch it for answers. Credentials are
/// kept only encrypted (ASP.NET Core Data Protection) in <see cref="ProtectedSecret"/>.
/// </summary>
public sealed class MailboxConnection
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public User? User { get; set; }
    public MailboxKind Kind { get; set; }
    /// <summary>Lower-case address of the mailbox; one of the user's addresses.</summary>
    public required string Address { get; set; }
    public MailboxStatus Status { get; set; }
    /// <summary>Why the mailbox needs attention, or the last transient error; shown to the user.</summary>
    public string? StatusMessage { get; set; }
    public required string ProtectedSecret { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>When the watcher last went through the mailbox without an error.</summary>
    public DateTimeOffset? LastSyncAt { get; set; }
    /// <summary>Consecutive failures, for back-off.</summary>
    public int Failures { get; set; }
    /// <summary>Which server instance watches this mailbox, until when: one watcher per mailbox.</summary>
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    /// <summary>Sequences send through the mailbox no earlier than this (spacing between automated sends).</summary>
    public DateTimeOffset? NextSendAt { get; set; }
    public List<MailboxCursor> Cursors { get; set; } = [];
}

/// <summary>
/// How far a watcher has handled one folder or feed of a mailbox (IMAP: UIDVALIDITY and last UID; Gmail: history
/// id; Graph: delta link). It advances only after a message is handled.
/// </summary>
public sealed class MailboxCursor
{
    public Guid ConnectionId { get; set; }
    public required string Name { get; set; }
    public required string Value { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public enum ReplierRole { To = 0, Cc = 1, Bcc = 2, New = 3 }

public enum MatchedBy { InReplyTo = 0, References = 1, ThreadId = 2, ThreadIndex = 3, OriginalMessageId = 4 }

/// <summary>
/// A message that arrived in a connected mailbox and answered a tracked message. Unmatched mail is not stored.
/// Unique by mailbox and provider id and by user and Message-ID, so handling it twice records it once.
/// </summary>
public sealed class InboundMessage
{
    public long Id { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public Guid ConnectionId { get; set; }
    /// <summary>The provider's id: IMAP folder, UIDVALIDITY and UID; Gmail message id; Graph message id.</summary>
    public required string ProviderId { get; set; }
    /// <summary>The message's own Message-ID without angle brackets, when it has one.</summary>
    public string? InternetMessageId { get; set; }
    public required string FromAddress { get; set; }
    public string? Subject { get; set; }
    public DateTimeOffset ReceivedAt { get; set; }
    public EventKind Kind { get; set; }
    public required string Reason { get; set; }
    public Guid TrackedMessageId { get; set; }
    public Guid CopyId { get; set; }
    public Guid? RecipientId { get; set; }
    public MatchedBy MatchedBy { get; set; }
    public ReplierRole ReplierRole { get; set; }
    /// <summary>Auto-replies: the date the person said they are back, a day of their own calendar (see <see cref="ReturnDateOffsetMinutes"/>).</summary>
    public DateOnly? ReturnDate { get; set; }
    /// <summary>
    /// The UTC offset, in minutes, of the auto-reply's Date header, whose clock the return date was read by: the day
    /// begins at midnight there. Null for answers stored before it was kept (the offset is unknown).
    /// </summary>
    public int? ReturnDateOffsetMinutes { get; set; }
    /// <summary>
    /// Auto-replies: the notice says its author has left for good ("I no longer work at Encom", "this address is no
    /// longer in use"): a sequence to that address stops instead of pausing.
    /// </summary>
    public bool Departed { get; set; }
    /// <summary>Bounces: the DSN status (5.1.1) and whether the failure is permanent.</summary>
    public string? Status { get; set; }
    public bool? Permanent { get; set; }
    public string? Excerpt { get; set; }
    public DateTimeOffset HandledAt { get; set; }
}

/// <summary>
/// A message in a connected mailbox that could not be read (not MIME at all, or broken beyond what the parser repairs)
/// or whose handling failed: the watch goes on past it, and it is kept here with the reason so that the user can find it
/// in their mailbox and look at it. One row per message of a mailbox.
/// </summary>
public sealed class UnreadableMessage
{
    public long Id { get; set; }
    public Guid ConnectionId { get; set; }
    public Guid UserId { get; set; }
    /// <summary>The provider's id, as on <see cref="InboundMessage.ProviderId"/>.</summary>
    public required string ProviderId { get; set; }
    /// <summary>The folder it was in (IMAP folder name; INBOX or SENT for Gmail; inbox or sentitems for Graph).</summary>
    public string? Folder { get; set; }
    public required string Reason { get; set; }
    /// <summary>Its size in bytes, as the provider reported it.</summary>
    public long? Size { get; set; }
    /// <summary>When the provider says it arrived.</summary>
    public DateTimeOffset? ReceivedAt { get; set; }
    public DateTimeOffset SeenAt { get; set; }
}

/// <summary>The kinds of file a library takes; Word and PowerPoint are shown through their PDF.</summary>
public enum ContentFileType { Pdf = 0, Doc = 1, Docx = 2, Ppt = 3, Pptx = 4 }

/// <summary>
/// A document in a user's library: the file as uploaded and the PDF the viewer shows, both stored on disk by their
/// SHA-256 (content-addressed), with the page count and a thumbnail per page.
/// </summary>
public sealed class ContentItem
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    /// <summary>The file name as uploaded (no directories), shown to recipients.</summary>
    public required string Name { get; set; }
    public ContentFileType FileType { get; set; }
    /// <summary>Lower-case hex SHA-256 of the file as uploaded.</summary>
    public required string OriginalSha256 { get; set; }
    public long OriginalSize { get; set; }
    /// <summary>Lower-case hex SHA-256 of the PDF shown (the original itself for a PDF).</summary>
    public required string PdfSha256 { get; set; }
    public long PdfSize { get; set; }
    public int PageCount { get; set; }
    /// <summary>Pages that have a thumbnail (the first ones; 0 when the thumbnail tool is not installed).</summary>
    public int ThumbnailCount { get; set; }
    /// <summary>Whether recipients get a download button.</summary>
    public bool AllowDownload { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Removed by the sender: its links answer "removed", its statistics stay.</summary>
    public DateTimeOffset? DeletedAt { get; set; }
}

/// <summary>
/// A tracked link to a document. "Add to email" makes a share link (no message); when a message is registered, each
/// share link in its body becomes one link per copy, so each recipient's reading is told apart.
/// </summary>
public sealed class ContentLink
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public required string Token { get; set; }
    public Guid ContentId { get; set; }
    public ContentItem? Content { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public Guid? TrackedMessageId { get; set; }
    public Guid? CopyId { get; set; }
    public Guid? RecipientId { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>A share link's end: after it the viewer says the link has expired and records nothing.</summary>
    public DateTimeOffset? ExpiresAt { get; set; }
    /// <summary>Turned off by its owner: the viewer says so and records nothing, until it is turned on again.</summary>
    public DateTimeOffset? DisabledAt { get; set; }
    /// <summary>Whether readers of this link get a download button; null follows the document's <see cref="ContentItem.AllowDownload"/>.</summary>
    public bool? AllowDownload { get; set; }
    /// <summary>Whether a reader of this share link must give their address (and prove it with a mailed code) first.</summary>
    public ReaderEmailGate EmailGate { get; set; }
    /// <summary>
    /// For a recipient's own link, the share link it was made from when the message was registered: that link's expiry
    /// and off switch hold for this one too, as they stand when it is read (turning the share link off or on, or moving
    /// its expiry, reaches every copy). No foreign key: the column is added without rebuilding the table on SQLite, and
    /// links are never deleted.
    /// </summary>
    public Guid? SharedFromId { get; set; }
}

/// <summary>What a share link asks of its reader before the document shows.</summary>
public enum ReaderEmailGate
{
    /// <summary>Nothing: anyone with the link reads.</summary>
    None = 0,
    /// <summary>An email address, as the reader gives it (not checked to be theirs).</summary>
    Email = 1,
    /// <summary>An email address proved with a 6-digit code mailed to it.</summary>
    VerifiedEmail = 2,
}

/// <summary>
/// A code mailed to a share link's reader to prove an address (<see cref="ReaderEmailGate.VerifiedEmail"/>), one per
/// link, client address and email address: wrong codes count here, and too many lock that reader out for a while.
/// </summary>
public sealed class ShareLinkCode
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid ContentLinkId { get; set; }
    /// <summary>The reader's client address (the lockout is per link and reader, however many cookies they clear).</summary>
    public required string Visitor { get; set; }
    /// <summary>The address as the reader gave it, in its comparison form.</summary>
    public required string Email { get; set; }
    /// <summary>Lower-case hex SHA-256 of the row's id and the code: the code itself is never stored.</summary>
    public required string CodeHash { get; set; }
    public DateTimeOffset SentAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
    /// <summary>Codes mailed since <see cref="WindowStartedAt"/> (a reader cannot have the server mail an address without end).</summary>
    public int CodesSent { get; set; }
    public DateTimeOffset WindowStartedAt { get; set; }
    /// <summary>
    /// Codes checked in a row (each check claims its try here before the code is compared, so that codes sent at once
    /// cannot share one); the right one removes the row, and a new code after a lockout starts again from 0.
    /// </summary>
    public int FailedAttempts { get; set; }
    public DateTimeOffset? LockedUntil { get; set; }
}

/// <summary>One reading of a document through one link: time per page, how far, downloads.</summary>
public sealed class DocumentVisit
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid ContentLinkId { get; set; }
    public Guid ContentId { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public Guid? TrackedMessageId { get; set; }
    public Guid? RecipientId { get; set; }
    public DateTimeOffset StartedAt { get; set; }
    public DateTimeOffset LastSeenAt { get; set; }
    public string? Ip { get; set; }
    public string? UserAgent { get; set; }
    public Verdict Verdict { get; set; }
    public required string Reason { get; set; }
    /// <summary>Sum of the pages' active time.</summary>
    public long ActiveMs { get; set; }
    /// <summary>The furthest page reached (1-based; 0 before the first beat).</summary>
    public int MaxPage { get; set; }
    /// <summary>
    /// 1 once the reader saved the file in this visit: however many requests fetch it (ranges, a resumed download, a
    /// second click), a visit counts one download. Visits recorded before this rule may hold more.
    /// </summary>
    public int Downloads { get; set; }
    /// <summary>For a share link that asks for it: the address the reader gave.</summary>
    public string? ReaderEmail { get; set; }
    /// <summary>Whether <see cref="ReaderEmail"/> was proved with a mailed code.</summary>
    public bool ReaderVerified { get; set; }
    public List<DocumentPageTime> Pages { get; set; } = [];
}

/// <summary>Active reading time on one page in one visit, and when in the visit the page was first reached.</summary>
public sealed class DocumentPageTime
{
    public Guid VisitId { get; set; }
    public int Page { get; set; }
    public long ActiveMs { get; set; }
    /// <summary>0 for the first page the reader saw, 1 for the next, …</summary>
    public int Order { get; set; }
    public DateTimeOffset FirstSeenAt { get; set; }
}

/// <summary>An email template with Liquid merge fields (Fluid): subject and HTML body.</summary>
public sealed class MailTemplate
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public required string Name { get; set; }
    /// <summary>Empty on a follow-up: it goes as "Re: " and the first step's subject, in the same conversation.</summary>
    public required string Subject { get; set; }
    public required string Html { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public enum SequenceStatus { Active = 0, Paused = 1, Archived = 2 }

/// <summary>
/// A multi-step campaign sent from one of the user's mailboxes: a first email, then follow-ups in the same thread,
/// each recipient (enrolment) on their own clock, stopped by a reply, paused by an out-of-office robot.
/// </summary>
public sealed class Sequence
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public required string Name { get; set; }
    /// <summary>The mailbox the steps are sent through (the user's).</summary>
    public Guid MailboxId { get; set; }
    /// <summary>IANA time zone of recipients who have none of their own.</summary>
    public required string TimeZone { get; set; }
    /// <summary>A person's reply also stops the other enrolments of the sequence at the same company domain.</summary>
    public bool StopCompanyOnReply { get; set; }
    /// <summary>How long an out-of-office reply without a return date pauses an enrolment.</summary>
    public int AutoReplyPauseDays { get; set; } = 7;
    public SequenceStatus Status { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public List<SequenceStep> Steps { get; set; } = [];
}

public sealed class SequenceStep
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid SequenceId { get; set; }
    /// <summary>0 for the first email.</summary>
    public int Position { get; set; }
    public Guid TemplateId { get; set; }
    /// <summary>Days after the previous step was sent (after enrolment for the first).</summary>
    public int DelayDays { get; set; }
    /// <summary>Count and send on Monday to Friday only (in the recipient's time zone).</summary>
    public bool BusinessDaysOnly { get; set; } = true;
    /// <summary>The send window in the recipient's time zone, [start, end).</summary>
    public TimeOnly WindowStart { get; set; } = new(9, 0);
    public TimeOnly WindowEnd { get; set; } = new(17, 0);
}

public enum EnrolmentState { Active = 0, Paused = 1, Completed = 2, Stopped = 3 }

public enum StopReason { None = 0, Replied = 1, ColleagueReplied = 2, Bounced = 3, Unsubscribed = 4, Suppressed = 5, Manual = 6, Failed = 7, Complained = 8, LeftCompany = 9 }

/// <summary>One recipient going through a sequence: where they are, when the next step is due, and why it stopped.</summary>
public sealed class Enrolment
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid SequenceId { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    /// <summary>Lower-case address.</summary>
    public required string Address { get; set; }
    /// <summary>Lower-case domain of the address, for stopping a company's enrolments together.</summary>
    public required string Domain { get; set; }
    /// <summary>Merge fields (first_name, company, custom ones) as a JSON object of strings.</summary>
    public required string Fields { get; set; }
    /// <summary>IANA time zone the send windows are read in.</summary>
    public required string TimeZone { get; set; }
    public EnrolmentState State { get; set; }
    public StopReason StopReason { get; set; }
    /// <summary>Why it stopped or waits, in words (the reply's sender, the bounce status, the error).</summary>
    public string? Note { get; set; }
    /// <summary>The step to send next (0-based).</summary>
    public int NextStep { get; set; }
    /// <summary>When the next step is due (null once completed or stopped).</summary>
    public DateTimeOffset? NextAt { get; set; }
    /// <summary>Paused by an out-of-office reply until then.</summary>
    public DateTimeOffset? PausedUntil { get; set; }
    /// <summary>The last answer (InboundMessage id) already taken into account.</summary>
    public long InboundSeen { get; set; }
    public required string UnsubscribeToken { get; set; }
    /// <summary>Which scheduler instance works on it, until when.</summary>
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset UpdatedAt { get; set; }
}

public enum SequenceSendState { Intent = 0, Sent = 1, Failed = 2 }

/// <summary>
/// One step sent (or about to be) to one enrolment. The intent is committed before the mail leaves, with the
/// Message-ID it leaves with; after a crash the scheduler looks for that Message-ID in the Sent folder before it
/// sends again, so a step never goes twice. Unique by enrolment and step.
/// </summary>
public sealed class SequenceSend
{
    public long Id { get; set; }
    public Guid EnrolmentId { get; set; }
    public int Step { get; set; }
    public Guid MailboxId { get; set; }
    public Guid TrackedMessageId { get; set; }
    public Guid CopyId { get; set; }
    /// <summary>Our Message-ID, without angle brackets.</summary>
    public required string MessageIdHeader { get; set; }
    public SequenceSendState State { get; set; }
    public DateTimeOffset IntentAt { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    public int Attempts { get; set; }
    public string? Error { get; set; }
}

/// <summary>
/// A client's Idempotency-Key on POST /api/messages or /api/messages/send, scoped to its user and kept a day: the first
/// request with it claims it (the primary key refuses a second claim, on every instance), and its answer is stored so
/// that a retry gets the same answer instead of a second message. <see cref="MessageId"/> is chosen at the claim and
/// given to the message, as the Compose page's form gives its own: a retry that finds the message made knows it left
/// or may have, and never sends it again.
/// </summary>
public sealed class IdempotencyKey
{
    public Guid UserId { get; set; }
    /// <summary>As the client sent it: 1–255 printable ASCII characters.</summary>
    public required string Key { get; set; }
    /// <summary>SHA-256 of the endpoint and the request as read (so the same fields in another order or spacing are the same request).</summary>
    public required byte[] RequestHash { get; set; }
    public Guid MessageId { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    /// <summary>Until when the first request is taken to be still at work; after it, a request that never finished.</summary>
    public DateTimeOffset LeaseUntil { get; set; }
    /// <summary>The stored answer's status; null while the first request is at work (or stopped before it finished).</summary>
    public int? ResponseStatus { get; set; }
    /// <summary>The stored answer's JSON body.</summary>
    public string? ResponseBody { get; set; }
}

/// <summary>
/// A file chosen on the Compose page whose form came back (a refused field, "Insert link", a mailbox that could not
/// send): a browser cannot be handed a file back, so the server keeps it for a short time, the user's own, and the
/// re-shown form names it by <see cref="Id"/> to go with the message. Rows past <see cref="ExpiresAt"/> are treated as
/// gone and deleted; the form's rows go when its message is sent.
/// </summary>
public sealed class StagedAttachment
{
    public Guid Id { get; set; }
    public Guid UserId { get; set; }
    /// <summary>The Compose form's key (the message's id to be): its rows are deleted once it is sent.</summary>
    public Guid FormKey { get; set; }
    /// <summary>As it goes in the mail (Attachments.SafeName).</summary>
    public required string FileName { get; set; }
    public long Size { get; set; }
    public required byte[] Content { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

public enum SuppressionReason { Unsubscribed = 0, Bounced = 1, Complained = 2, Manual = 3 }

/// <summary>An address the team's sequences never write to again.</summary>
/// <summary>
/// One password reset request counted against its address, or against its client (IP address, an IPv6 client by its
/// /64), in the database so that every server instance shares the limits and a restart keeps them. The key is a hash
/// of which address or client, not the address itself: no list of asked-for addresses is kept. Rows older than a day
/// are deleted.
/// </summary>
public sealed class PasswordResetRequest
{
    public long Id { get; set; }
    /// <summary>The first 16 bytes of SHA-256 of the address's or client's key.</summary>
    public required byte[] Key { get; set; }
    public DateTimeOffset At { get; set; }
}

/// <summary>
/// A Microsoft account (Entra ID or personal) a user linked to themselves from the Outlook add-in: the add-in's token
/// then signs in as this user whatever its sign-in name. Keyed by the tenant and object ids, which never change; the
/// name and sign-in name (UPN), which can, are kept only to show the user which account it is.
/// </summary>
public sealed class MicrosoftAccountLink
{
    public long Id { get; set; }
    public Guid UserId { get; set; }
    /// <summary>The token's <c>tid</c>, lower case.</summary>
    public required string TenantId { get; set; }
    /// <summary>The token's <c>oid</c>, lower case.</summary>
    public required string ObjectId { get; set; }
    /// <summary>The token's <c>name</c> when it was linked; '' when it had none.</summary>
    public required string DisplayName { get; set; }
    /// <summary>The token's sign-in name (<c>preferred_username</c>, else <c>upn</c>) when it was linked; '' when it had none.</summary>
    public required string SignInName { get; set; }
    public DateTimeOffset LinkedAt { get; set; }
}

/// <summary>
/// A one-time link that was used (its random id, from inside the sealed token): opening it again is refused. Kept until
/// the link would have expired anyway; the upkeep deletes it then.
/// </summary>
public sealed class UsedLinkToken
{
    public required string Id { get; set; }
    public DateTimeOffset ExpiresAt { get; set; }
}

public enum ServerMailState { Pending = 0, Sent = 1, Failed = 2, Dropped = 3 }

/// <summary>
/// One of the server's own mails (a password reset, a lock notice, an invitation, an address confirmation), queued so
/// that a relay that refuses for now or cannot be reached is tried again later, by whichever instance is running, and a
/// restart loses nothing. No link is stored: what the mail needs is kept (whom, for which user, the team's name, the
/// base URL), and its link is made when it goes, so that no token waits in the table and each link lasts its whole
/// lifetime from the moment it is mailed. Rows that are no longer pending are deleted after a few days.
/// </summary>
public sealed class ServerMail
{
    public const string PasswordReset = "password-reset";
    public const string LockNotice = "lock-notice";
    public const string Invitation = "invitation";
    public const string AddressConfirmation = "address-confirmation";

    public long Id { get; set; }
    /// <summary>Which mail: <see cref="PasswordReset"/>, <see cref="LockNotice"/>, <see cref="Invitation"/>, <see cref="AddressConfirmation"/>.</summary>
    public required string Kind { get; set; }
    /// <summary>The address it goes to; for a password reset, the address asked for (its account is looked up when it goes).</summary>
    public required string Recipient { get; set; }
    /// <summary>The member invited, or the user who asked for the confirmation.</summary>
    public Guid? UserId { get; set; }
    /// <summary>What else the mail needs, as JSON (an invitation's team and inviter, a confirmation's base URL); never a secret.</summary>
    public string? Data { get; set; }
    public ServerMailState State { get; set; }
    /// <summary>Tries made (each one that reached, or failed to reach, the relay).</summary>
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }
    public DateTimeOffset? SentAt { get; set; }
    public string? LastError { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
}

public sealed class Suppression
{
    public long Id { get; set; }
    public Guid TeamId { get; set; }
    public required string Address { get; set; }
    public SuppressionReason Reason { get; set; }
    public string? Detail { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>
/// An outbox entry written in the same transaction as what it reports, for events that are not tracking events
/// (a message leaving). Tracking events (opens, clicks, document views, answers) are their own outbox entries: the
/// dispatcher follows the events table by id.
/// </summary>
public sealed class OutboxEvent
{
    public const string MessageSent = "message.sent";

    public long Id { get; set; }
    public Guid TeamId { get; set; }
    public Guid UserId { get; set; }
    public required string Type { get; set; }
    public Guid TrackedMessageId { get; set; }
    public DateTimeOffset OccurredAt { get; set; }
    /// <summary>When the dispatcher made its deliveries; null until then.</summary>
    public DateTimeOffset? DispatchedAt { get; set; }
}

/// <summary>How far the dispatcher has followed a source (the events table), by id.</summary>
public sealed class OutboxCursor
{
    public required string Name { get; set; }
    public long Value { get; set; }
}

public enum DeliveryState { Pending = 0, Delivered = 1, Dead = 2, Skipped = 3 }

/// <summary>One event to one target (a webhook, a Salesforce org), retried until delivered or dead.</summary>
public sealed class OutboxDelivery
{
    public long Id { get; set; }
    public Guid TeamId { get; set; }
    /// <summary>"webhook" or "salesforce".</summary>
    public required string TargetKind { get; set; }
    public Guid TargetId { get; set; }
    public required string EventType { get; set; }
    /// <summary>The same on every attempt, so receivers can drop duplicates. Unique per target.</summary>
    public required string IdempotencyKey { get; set; }
    /// <summary>The payload as built when the event was dispatched (JSON).</summary>
    public required string Payload { get; set; }
    public DeliveryState State { get; set; }
    public int Attempts { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
    public DateTimeOffset NextAttemptAt { get; set; }
    public DateTimeOffset? DeliveredAt { get; set; }
    public string? LastError { get; set; }
    public string? ExternalId { get; set; }
    public string? LeaseOwner { get; set; }
    public DateTimeOffset? LeaseUntil { get; set; }
}

/// <summary>One attempt at a delivery: the delivery log.</summary>
public sealed class DeliveryAttempt
{
    public long Id { get; set; }
    public long DeliveryId { get; set; }
    public DateTimeOffset At { get; set; }
    public int? StatusCode { get; set; }
    public required string Outcome { get; set; }
    public string? Detail { get; set; }
    public int DurationMs { get; set; }
}

/// <summary>A team's webhook: where events of the chosen types are POSTed, signed with its secret.</summary>
public sealed class WebhookEndpoint
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    public required string Url { get; set; }
    /// <summary>The signing secret, encrypted with Data Protection.</summary>
    public required string ProtectedSecret { get; set; }
    /// <summary>Event types, comma-separated.</summary>
    public required string EventTypes { get; set; }
    public string? Description { get; set; }
    public bool Enabled { get; set; } = true;
    public DateTimeOffset CreatedAt { get; set; }
}

/// <summary>How the server gets Salesforce access tokens for a connection.</summary>
public enum SalesforceAuthKind
{
    /// <summary>An admin consented in the browser (web-server flow); the refresh token is kept encrypted.</summary>
    WebServer = 0,
    /// <summary>The server signs a JWT with the connected app's key for a pre-authorised user; no refresh token.</summary>
    JwtBearer = 1,
}

public enum SalesforceStatus { Active = 0, NeedsReconnect = 1 }

/// <summary>What happens to an event about an address that is neither a Contact nor a Lead in Salesforce.</summary>
public enum UnknownRecipientPolicy { Skip = 0, CreateLead = 1 }

/// <summary>
/// Whether a team's Contact Tasks go on an open Opportunity when exactly one fits, or always on the Account. A team that
/// has not chosen follows the server's <c>Salesforce:RelateToOpportunity</c>.
/// </summary>
public enum OpportunityRelation { ServerDefault = 0, WhenOneFits = 1, Never = 2 }

/// <summary>A team's Salesforce org, where sent mail and answers are logged as Tasks. One per team.</summary>
public sealed class SalesforceConnection
{
    public Guid Id { get; set; } = Guid.NewGuid();
    public Guid TeamId { get; set; }
    /// <summary>The admin who connected it.</summary>
    public Guid ConnectedByUserId { get; set; }
    /// <summary>The org's REST base, as the token endpoint names it (https://yourorg.my.salesforce.com).</summary>
    public required string InstanceUrl { get; set; }
    public SalesforceAuthKind AuthKind { get; set; }
    /// <summary>The Salesforce user the connection acts as (JWT: the subject; web flow: from the identity URL when known).</summary>
    public string? SalesforceUsername { get; set; }
    /// <summary>Data Protection–encrypted JSON: the refresh token (web flow) or the username (JWT flow).</summary>
    public required string ProtectedSecret { get; set; }
    public SalesforceStatus Status { get; set; }
    /// <summary>Why the connection needs attention (a revoked token), shown to the team's admins.</summary>
    public string? StatusMessage { get; set; }
    public bool LogSent { get; set; } = true;
    public bool LogReplies { get; set; } = true;
    public bool LogOpens { get; set; }
    public bool LogClicks { get; set; }
    public bool LogAutoReplies { get; set; }
    public bool LogBounces { get; set; }
    public UnknownRecipientPolicy UnknownRecipients { get; set; }
    public OpportunityRelation RelateToOpportunity { get; set; }
    public DateTimeOffset CreatedAt { get; set; }
}
