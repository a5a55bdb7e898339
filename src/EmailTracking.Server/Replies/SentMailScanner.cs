using AngleSharp.Html.Parser;
using EmailTracking.Data;
using EmailTracking.Server.Tracking;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Server.Replies;

/// <summary>
/// Reads mail the user sent from their own mail client (found in the Sent folder) and, when it carries one of our
/// tokens — the <see cref="TokenHeader"/> header, the pixel or a click link — records the Message-ID and thread the
/// mail really left with. Outlook replaces the Message-ID at send, so a draft's id is never trusted: this is.
/// </summary>
public sealed class SentMailScanner(AppDbContext db, TrackingTargets targets, TimeProvider clock, ILogger<SentMailScanner> log)
{
    /// <summary>Header the Outlook add-in and Graph sends set on tracked mail (x-et-token): the pixel token of the copy.</summary>
    public const string TokenHeader = "X-ET-Token";

    /// <summary>
    /// The longest Message-ID a copy keeps (its column's length). A longer one is not recorded: PostgreSQL would refuse
    /// the row, and a watch would stop at that sent mail on every round, before ever reading the inbox.
    /// </summary>
    const int MaxMessageIdLength = 250;

    /// <summary>The body is only searched this far for our URLs.</summary>
    const int MaxHtmlChars = 2 * 1024 * 1024;

    public async Task<InboundResult> HandleAsync(MailboxConnection connection, MimeMessage message, string? providerThreadId, CancellationToken ct)
    {
        var messageId = InboundPipeline.Clean(message.MessageId);
        var tokens = FindTokens(message);
        if (tokens.InOrder.Count == 0) return new InboundResult(InboundOutcome.NotMatched);

        var mine = db.Messages.Where(m => m.UserId == connection.UserId);
        // Two lookups, each through its token's index (one query with an OR of the two could walk all the user's copies).
        var candidates = tokens.Pixels.Count == 0 ? [] : await (from c in db.Copies join m in mine on c.TrackedMessageId equals m.Id
                                                                 where tokens.Pixels.Contains(c.PixelToken)
                                                                 select c).Include(c => c.TrackedMessage).Include(c => c.Links).ToListAsync(ct);
        if (tokens.Links.Count > 0)
        {
            var byLink = await (from l in db.Links join c in db.Copies on l.CopyId equals c.Id join m in mine on c.TrackedMessageId equals m.Id
                                where tokens.Links.Contains(l.Token)
                                select c).Include(c => c.TrackedMessage).Include(c => c.Links).ToListAsync(ct);
            candidates.AddRange(byLink.Where(c => !candidates.Any(known => known.Id == c.Id)));
        }
        var answered = AnsweredIds(message);
        MessageCopy? CopyOf(string token) => candidates.FirstOrDefault(c => c.PixelToken == token || c.Links.Any(l => l.Token == token));

        // A follow-up quotes earlier tracked copies, pixels and links and all, below its own: the header names the
        // copy this mail is; without it, the first of our tokens in the document that is not a copy the mail answers
        // nor one the mail forwards.
        var copy = tokens.Header is { } header && CopyOf(header) is { } named
            ? named
            : tokens.InOrder.Select(CopyOf).FirstOrDefault(c => c is not null && !Answers(answered, c) && !Forwards(message, messageId, c));
        if (copy is null) return new InboundResult(InboundOutcome.NotMatched);
        // The user's later mail in the copy's thread (a follow-up quoting an answer that quotes the copy, links and all)
        // carries the copy's tokens too, but it is not the copy: its Message-ID would replace the one answers quote.
        if (Answers(answered, copy)) return new InboundResult(InboundOutcome.NotMatched);

        if (!await RecordAsync(copy, messageId, providerThreadId, ThreadIndex.Conversation(message.Headers["Thread-Index"]),
                message.Date == DateTimeOffset.MinValue ? null : message.Date, ct))
        {
            return new InboundResult(InboundOutcome.Duplicate);
        }
        return new InboundResult(InboundOutcome.Recorded, Detail: messageId);
    }

    /// <summary>
    /// Records how a copy really left: the Message-ID it carried, the provider's thread, Outlook's conversation, and
    /// when it left (timing rules measure from it). False when all of that was known already. The copy comes with its
    /// message and links loaded.
    /// </summary>
    public async Task<bool> RecordAsync(MessageCopy copy, string? messageId, string? providerThreadId, string? threadIndex, DateTimeOffset? sentAt,
        CancellationToken ct)
    {
        var changed = false;
        if (messageId is { Length: <= MaxMessageIdLength } && messageId != copy.MessageIdHeader && copy.SentMessageIdHeader != messageId)
        {
            copy.SentMessageIdHeader = messageId;
            changed = true;
        }
        if (!string.IsNullOrEmpty(providerThreadId) && copy.ProviderThreadId != providerThreadId)
        {
            copy.ProviderThreadId = providerThreadId;
            changed = true;
        }
        if (threadIndex is not null && copy.ThreadIndex != threadIndex)
        {
            copy.ThreadIndex = threadIndex;
            changed = true;
        }
        var sentTimeChanged = false;
        if (copy.TrackedMessage!.SentAt is null && sentAt is { } at)
        {
            copy.TrackedMessage.SentAt = WhenItLeft(copy.TrackedMessage, at);
            changed = sentTimeChanged = true;
        }
        if (!changed) return false;
        await db.SaveChangesAsync(ct);
        if (sentTimeChanged) await targets.MessageChangedAsync(copy.TrackedMessageId, ct);
        log.LogInformation("Sent copy {Copy} left as <{MessageId}>", copy.Id, messageId);
        return true;
    }

    /// <summary>
    /// The send time a sent mail's Date gives, as the send time a caller gives is taken (see MessagesApi): the Date is
    /// the sender's mail client's clock. Later than now, it is that clock running ahead: taken as now, or every click
    /// until then would be "before the recorded send time", a scanner's. Before the registration, it is that clock
    /// running behind (or a client's placeholder date): the mail carries the registration's tokens, so it left after
    /// that; taken as the registration's time, or the scanners clicking on delivery would be long past the scanner
    /// window, people's clicks.
    /// </summary>
    DateTimeOffset WhenItLeft(TrackedMessage message, DateTimeOffset date)
    {
        var now = clock.GetUtcNow();
        var at = date > now ? now : date < message.CreatedAt ? message.CreatedAt : date;
        return at.ToUniversalTime();
    }

    /// <summary>The Message-IDs the message answers (In-Reply-To and References), read once per message.</summary>
    static HashSet<string> AnsweredIds(MimeMessage message)
    {
        var ids = ReferenceIds.NewestFirst(message, InboundPipeline.MaxReferences);
        if (ReferenceIds.InReplyTo(message) is { } inReplyTo) ids.Add(inReplyTo);
        return [.. ids.Select(InboundPipeline.Clean).OfType<string>()];
    }

    /// <summary>Whether the copy (by the Message-ID it was given or the one it left with) is among the ids a message answers.</summary>
    static bool Answers(HashSet<string> answered, MessageCopy copy) =>
        answered.Contains(copy.MessageIdHeader) || (copy.SentMessageIdHeader is { } kept && answered.Contains(kept));

    /// <summary>
    /// Whether a mail that carries a copy's tokens in its body only (no header names the copy) is another mail quoting
    /// it: a forward, which Outlook writes without In-Reply-To or References, so <see cref="Answers"/> cannot tell. Its
    /// Message-ID recorded for the copy would lose the answers that quote the copy's. Two signs, either enough:
    /// the copy already left under another Message-ID (a copy leaves once; our resends name it in the header), or the
    /// mail's subject is the tracked subject with a forward prefix more ("FW: …"). The subject is only evidence where
    /// it was registered as sent: the Gmail add-on's is typed by the user in its card and may leave the prefix out.
    /// </summary>
    static bool Forwards(MimeMessage message, string? messageId, MessageCopy copy) =>
        (copy.SentMessageIdHeader is { } left && messageId != left && messageId != copy.MessageIdHeader)
        || (copy.TrackedMessage!.Source != MessageSource.GmailAddon && Subjects.IsForwardOf(message.Subject, copy.TrackedMessage.Subject));

    /// <summary>Our tokens in a message: the <see cref="SentMailScanner.TokenHeader"/> header's, and the pixels and links of its HTML.</summary>
    /// <param name="Header">The header's pixel token, if any.</param>
    /// <param name="Pixels">Pixel tokens, the header's first.</param>
    /// <param name="Links">Click-link tokens.</param>
    /// <param name="InOrder">All of them, the header's first, then the HTML's in document order (new text above quotes).</param>
    public sealed record FoundTokens(string? Header, List<string> Pixels, List<string> Links, List<string> InOrder);

    /// <summary>Our pixel and link tokens in the message: its header, the images and links of its HTML.</summary>
    public static FoundTokens FindTokens(MimeMessage message)
    {
        var pixels = new List<string>();
        var links = new List<string>();
        var inOrder = new List<string>();
        // Header names are compared without regard to case: the add-ins and Graph sends write x-et-token.
        var header = message.Headers[TokenHeader]?.Trim() is { } h && IsToken(h) ? h : null;
        if (header is not null)
        {
            pixels.Add(header);
            inOrder.Add(header);
        }
        string? html;
        try
        {
            html = message.HtmlBody;
        }
        catch (Exception)
        {
            html = null;
        }
        if (string.IsNullOrEmpty(html)) return new FoundTokens(header, pixels, links, inOrder);
        if (html.Length > MaxHtmlChars) html = html[..MaxHtmlChars];
        var document = new HtmlParser().ParseDocument(html);
        foreach (var element in document.QuerySelectorAll("img[src], a[href]"))
        {
            if (element.LocalName == "img")
            {
                if (PathToken(element.GetAttribute("src"), "/o/", ".gif") is { } t && !pixels.Contains(t))
                {
                    pixels.Add(t);
                    inOrder.Add(t);
                }
            }
            else if (links.Count < 50 && PathToken(element.GetAttribute("href"), "/c/", "") is { } t && !links.Contains(t))
            {
                links.Add(t);
                inOrder.Add(t);
            }
        }
        return new FoundTokens(header, pixels, links, inOrder);
    }

    static string? PathToken(string? url, string prefix, string suffix)
    {
        if (!Uri.TryCreate(url, UriKind.Absolute, out var uri)) return null;
        var path = uri.AbsolutePath;
        var at = path.LastIndexOf(prefix, StringComparison.Ordinal);
        if (at < 0) return null;
        var token = path[(at + prefix.Length)..];
        if (suffix.Length > 0)
        {
            if (!token.EndsWith(suffix, StringComparison.Ordinal)) return null;
            token = token[..^suffix.Length];
        }
        return IsToken(token) ? token : null;
    }

    static bool IsToken(string s) => Accounts.Tokens.LooksLikeTrackingToken(s);
}
