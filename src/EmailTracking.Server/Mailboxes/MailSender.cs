using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <param name="Attachments">Files to attach, each with its name and its bytes (base64 in JSON); at most
/// Mailboxes:MaxAttachmentBytes (25 MB) together. Every copy carries them all.</param>
public sealed record SendRequest(
    Guid? MailboxId, string? From, string? Subject, List<string>? To, List<string>? Cc, List<string>? Bcc, string? Html,
    string? Text = null, bool PerRecipient = true, MessageSource Source = MessageSource.Api, List<AttachmentRequest>? Attachments = null);

/// <param name="FoundInSent">Sent, but not by this request: a retry or a resend found it had left, in the mailbox's Sent folder.</param>
public sealed record SentCopy(Guid CopyId, List<string> Recipients, string MessageId, bool Sent, string? Error, bool FoundInSent = false);

public sealed record SendResponse(Guid Id, Guid MailboxId, DateTimeOffset? SentAt, List<SentCopy> Copies, string? Warning);

/// <summary>The answer to a send: the copies as sent, or validation errors, or a problem with the mailbox.</summary>
public sealed record SendOutcome(SendResponse? Response, Dictionary<string, string[]>? Errors, int? ProblemStatus = null, string? ProblemTitle = null, string? ProblemDetail = null);

/// <summary>
/// Registers a tracked message and sends it through the user's connected mailbox, each copy with our Message-ID
/// (MIME built with MimeKit), so that answers can be matched. The transport depends on the mailbox's kind.
/// </summary>
public sealed class MailSender(AppDbContext db, IServiceProvider services, TrackingTargets targets, TimeProvider clock,
    Microsoft.Extensions.Options.IOptions<TrackingOptions> tracking, Microsoft.Extensions.Options.IOptions<MailboxOptions> mailboxOptions,
    UnsentContentUpkeep unsentUpkeep)
{
    /// <param name="id">The message's id when the caller chose it: the Compose page's form carries one, so that the
    /// same form posted twice (a double click) is one message, the second insert refused by the key.</param>
    public async Task<SendOutcome> SendAsync(CurrentUser me, SendRequest request, TrackingUrls urls, CancellationToken ct, Guid? id = null)
    {
        var (mailbox, transport, refused) = await MailboxAsync(me, request, ct);
        if (refused is not null) return refused;
        // No mail body holds a NUL (HTML reads it as U+FFFD), and PostgreSQL text cannot: the body of a copy that did not
        // go is kept to send again, and the insert failed.
        request = request with { Html = request.Html?.Replace("\0", "", StringComparison.Ordinal), Text = request.Text?.Replace("\0", "", StringComparison.Ordinal) };

        // The files are checked before anything is registered: a refused file leaves no message behind.
        var (attachments, attachmentErrors) = Attachments.Check(request.Attachments, mailboxOptions.Value.MaxAttachmentBytes);
        if (attachmentErrors is not null) return new SendOutcome(null, new Dictionary<string, string[]> { ["attachments"] = attachmentErrors });

        var register = new MessagesApi.RegisterRequest(request.From ?? mailbox.Address, request.Subject, request.To, request.Cc, request.Bcc,
            request.Html, request.PerRecipient, null, request.Source);
        var (registered, errors) = await MessagesApi.RegisterAsync(register, me, db, tracking.Value, urls, clock, ct, id);
        if (registered is null) return new SendOutcome(null, errors);

        var message = await db.Messages.Include(m => m.Recipients).Include(m => m.Copies).ThenInclude(c => c.Links)
            .AsSplitQuery().FirstAsync(m => m.Id == registered.Id, ct);
        return await DeliverAsync(me, mailbox, transport, message, request, attachments,
            [.. registered.Copies.Select(c => new CopyToSend(c.Id, c.Recipients, c.MessageId, c.Html))], new Dictionary<Guid, CopySendResult>(), ct);
    }

    /// <summary>What a not-sent copy's reason starts with when it failed after the mail was handed over.</summary>
    public const string MayHaveLeftNote = "It may have left all the same (the connection was lost after the mail was handed over): sending it again looks for it in the Sent folder first.";

    /// <summary>The longest <see cref="MessageCopy.NotSentReason"/> kept (the column's length).</summary>
    public const int MaxNotSentReason = 1000;

    /// <summary>One copy of a send, in the order the response lists them; <paramref name="Html"/> (its tracked body) when it is to be sent now.</summary>
    sealed record CopyToSend(Guid Id, List<string> Recipients, string MessageId, string? Html);

    /// <summary>
    /// Sends the copies that have a body and records what became of each, with <paramref name="left"/> (copies found in
    /// Sent by a retry) as sent: the provider's Message-ID and thread on each copy, the message's send time, and the
    /// answer listing every copy. When the mailbox sends nothing at all and no copy had left, the registration goes.
    /// </summary>
    /// <param name="again">Copies not sent before, sent again (<see cref="ResendAsync"/>): when the mailbox sends nothing,
    /// the message stays (its other copies may have left) and the answer is the mailbox's problem.</param>
    async Task<SendOutcome> DeliverAsync(CurrentUser me, MailboxConnection mailbox, IMailTransport transport, TrackedMessage message, SendRequest request,
        IReadOnlyList<OutgoingAttachment> attachments, List<CopyToSend> copies, Dictionary<Guid, CopySendResult> left, CancellationToken ct,
        string? note = null, bool again = false)
    {
        var senderName = await db.Users.Where(u => u.Id == me.Id).Select(u => u.DisplayName).FirstOrDefaultAsync(ct);
        var sender = new MailboxAddress(senderName, message.FromAddress);
        var names = message.Recipients.ToDictionary(r => r.Address, r => r.Name);
        var outgoing = copies.Where(c => c.Html is not null).Select(copy => new OutgoingCopy(copy.Id,
            Compose(sender, message, copy.MessageId, copy.Html!, request.Text, clock.GetUtcNow(), attachments), sender,
            [.. copy.Recipients.Select(a => new MailboxAddress(names.GetValueOrDefault(a), a))])).ToList();
        if (outgoing.Count > 0)
        {
            // One untracked version for the Sent folder, whichever copy it ends up standing for.
            var keep = ForSentFolder(sender, outgoing[0].Message, message, request.Html!, request.Text, attachments);
            outgoing = [.. outgoing.Select(o => o with { ForSentFolder = keep })];
        }

        var result = new TransportResult([], null);
        MailboxException? refusedAll = null;
        try
        {
            if (outgoing.Count > 0) result = await transport.SendAsync(mailbox, outgoing, ct);
        }
        catch (MailboxException ex)
        {
            if (ex.NeedsReconnect)
            {
                mailbox.Status = MailboxStatus.NeedsReconnect;
                mailbox.StatusMessage = ex.Message.Length > 1000 ? ex.Message[..1000] : ex.Message;
            }
            refusedAll = ex;
            if (left.Count == 0 && !again)
            {
                // Nothing left: the registration goes too, so that the list shows no mail that was never sent.
                db.Messages.Remove(message);
                await db.SaveChangesAsync(CancellationToken.None);
                return new SendOutcome(null, null, StatusCodes.Status502BadGateway, "The mailbox could not send; nothing was sent.", ex.Message);
            }
            result = new TransportResult([.. outgoing.Select(o => new CopySendResult(o.CopyId, false, ex.Message, Temporary: !ex.NeedsReconnect))], null);
        }

        var byCopy = result.Copies.Concat(left.Values).ToDictionary(c => c.CopyId);
        var now = clock.GetUtcNow();
        var tried = copies.Select(c => c.Id).ToHashSet();
        foreach (var copy in message.Copies)
        {
            if (!byCopy.TryGetValue(copy.Id, out var r) || !r.Sent)
            {
                // Kept on the copy, not only in this answer: the pages and the API show its recipients as not sent
                // (not as not having opened), and it can be sent again.
                if (tried.Contains(copy.Id))
                {
                    // A copy lost after it was handed over may have reached its recipient: said, so that it is looked
                    // for in the Sent folder before it is sent again.
                    var why = r?.Error ?? "Not sent.";
                    if (r?.MayHaveLeft == true) why = MayHaveLeftNote + " " + why;
                    copy.NotSentReason = TextClip.Shorten(why, MaxNotSentReason);
                    copy.NotSentAt = now;
                }
                continue;
            }
            copy.NotSentReason = null;
            copy.NotSentAt = null;
            var kept = r.SentMessageId?.Trim('<', '>');
            if (!string.IsNullOrEmpty(kept) && kept != copy.MessageIdHeader) copy.SentMessageIdHeader = kept;
            if (!string.IsNullOrEmpty(r.ProviderThreadId)) copy.ProviderThreadId = r.ProviderThreadId;
        }
        // Copies found in Sent left some time between their registration and the stop: the registration's time, as
        // a send time later than the real one would make the recipients' first clicks "before the send", a scanner's.
        if (left.Count > 0) message.SentAt ??= message.CreatedAt;
        if (result.Copies.Any(c => c.Sent)) message.SentAt ??= clock.GetUtcNow();
        await KeepUnsentAsync(message, mailbox, request, attachments, now);
        await db.SaveChangesAsync(CancellationToken.None);
        if (byCopy.Values.Any(c => c.Sent)) await targets.MessageChangedAsync(message.Id, CancellationToken.None);
        if (again && refusedAll is not null && left.Count == 0)
            return new SendOutcome(null, null, StatusCodes.Status502BadGateway, "The mailbox could not send; nothing was sent.", refusedAll.Message);

        var answered = copies.Select(c => byCopy.TryGetValue(c.Id, out var r)
            ? new SentCopy(c.Id, c.Recipients, c.MessageId, r.Sent, r.Error, left.ContainsKey(c.Id))
            : new SentCopy(c.Id, c.Recipients, c.MessageId, false, "Not sent.")).ToList();
        var warning = string.Join(" ", new[] { note, result.Warning }.Where(w => w is not null));
        // Said plainly, as the same request again would not do what a user may expect: it is one send, answered once
        // (with its Idempotency-Key, this answer again), or a new send of every copy.
        if (answered.Any(c => !c.Sent))
        {
            var keptFor = Invitations.DescribeLifetime(mailboxOptions.Value.KeepUnsentFor);
            warning = string.Join(" ", new[] { warning, again
                ? $"Some copies were not sent again; see each copy's error. POST /api/messages/{message.Id}/resend tries them again (for {keptFor} after the send)."
                : "Some copies were not sent; see each copy's error. This request sent again sends every copy " +
                  "again (with the same Idempotency-Key it answers this same result): to send only the copies that failed, " +
                  $"POST /api/messages/{message.Id}/resend (for {keptFor} after the send)." }.Where(w => w is { Length: > 0 }));
        }
        return new SendOutcome(new SendResponse(message.Id, mailbox.Id, message.SentAt, answered, warning.Length > 0 ? warning : null), null);
    }

    /// <summary>
    /// Finishes send <paramref name="id"/>, whose request stopped before it answered (the process died, or the send
    /// failed unanswered), for a retry of that request with its Idempotency-Key. Each copy is looked for in the
    /// mailbox's Sent folder: those found left, and are recorded as sent, with the Message-ID and thread the provider
    /// kept; those not found never left, and go now, with their Message-ID and pixel (their links get new tokens: nobody
    /// has the old ones). When the mailbox cannot be asked, or cannot tell for some copy, nothing is sent and the answer
    /// is a 409 that says why.
    /// </summary>
    public async Task<SendOutcome> ResumeAsync(CurrentUser me, SendRequest request, TrackingUrls urls, Guid id, CancellationToken ct)
    {
        static SendOutcome Undecided(string why) => new(null, null, StatusCodes.Status409Conflict, "It cannot be told which copies left.", why);

        var message = await db.Messages.Include(m => m.Recipients).Include(m => m.Copies).ThenInclude(c => c.Links)
            .AsSplitQuery().FirstAsync(m => m.Id == id && m.UserId == me.Id, ct);
        var (mailbox, transport, refused) = await MailboxAsync(me, request, ct);
        if (refused is not null) return Undecided("Its mailbox cannot be asked what it sent: " + (refused.ProblemDetail ?? refused.Errors?.Values.First()[0]));
        var (attachments, attachmentErrors) = Attachments.Check(request.Attachments, mailboxOptions.Value.MaxAttachmentBytes);
        var body = attachmentErrors is null ? TrackedHtml.TryParse(request.Html ?? "", out _) : null;
        if (body is null) return Undecided("The request can no longer be prepared as it was.");

        // In the order the request names the recipients, as the first answer lists them.
        var order = new[] { request.To, request.Cc, request.Bcc }.SelectMany(l => l ?? [])
            .Select(t => AccountService.TryParseAddress(t, out var a, out _) ? AccountService.AddressKey(a) : "").ToList();
        int Position(string address) => order.IndexOf(AccountService.AddressKey(address)) is var i and >= 0 ? i : int.MaxValue;
        var copies = message.Copies
            .Select(c => (Copy: c, Recipients: message.Recipients.Where(r => r.CopyId == c.Id).Select(r => r.Address).OrderBy(Position).ToList()))
            .OrderBy(c => c.Recipients.Select(Position).DefaultIfEmpty(int.MaxValue).Min()).ToList();

        IReadOnlyList<SentLookup> found;
        try
        {
            found = await transport.FindInSentAsync(mailbox, [.. copies.Select(c => new SentQuery(c.Copy.MessageIdHeader, c.Copy.PixelToken))], ct);
        }
        catch (MailboxException ex)
        {
            return Undecided($"The mailbox {mailbox.Address} could not be asked what it sent: {ex.Message}");
        }
        if (found.FirstOrDefault(f => f.Left is null) is { } unknown) return Undecided(unknown.Why ?? $"The mailbox {mailbox.Address} cannot tell.");

        // The copies to send are claimed as a resend claims them: the message page's "Send again" may be sending a
        // copy that failed (the first request recorded that, then stopped before it answered), and must not both send it.
        var toSend = copies.Zip(found).Where(p => p.Second.Left != true).Select(p => p.First.Copy.Id).ToList();
        var claim = Guid.NewGuid();
        var claimed = toSend.Count == 0 ? 0 : await ClaimAsync(db.Copies.Where(c => toSend.Contains(c.Id)), claim, clock.GetUtcNow(), ct);
        if (claimed < toSend.Count)
        {
            await ReleaseClaimAsync(claim);
            return Undecided("Some of its copies are being sent again from its message page (Send again): retry once that is done, " +
                "and the copies that left by then are found in the Sent folder.");
        }
        return await HoldingClaimAsync(claim, async delivering =>
        {
            var left = new Dictionary<Guid, CopySendResult>();
            var send = new List<CopyToSend>();
            var shares = await ContentLinks.FindSharesAsync(db, me, body.Hrefs(), urls, ct);
            var documentLinks = new List<ContentLink>();
            foreach (var ((copy, recipients), lookup) in copies.Zip(found))
            {
                var messageId = $"<{copy.MessageIdHeader}>";
                if (lookup.Left == true)
                {
                    left[copy.Id] = new CopySendResult(copy.Id, true, null, lookup.SentMessageId, lookup.ThreadId);
                    send.Add(new CopyToSend(copy.Id, recipients, messageId, null));
                    continue;
                }
                // Never left: built again as registration built it, over the same copy.
                send.Add(new CopyToSend(copy.Id, recipients, messageId, Rebuild(message, copy, body, shares, urls, documentLinks)));
            }
            db.ContentLinks.AddRange(documentLinks);
            await db.SaveChangesAsync(ct);

            var note = $"The first request with this Idempotency-Key stopped before it answered; this retry found {left.Count} of {copies.Count} " +
                       $"{(copies.Count == 1 ? "copy" : "copies")} in the Sent folder (recorded as sent, not sent again)" +
                       (left.Count < copies.Count ? $" and sent the other {copies.Count - left.Count} now." : ".");
            delivering();
            return await DeliverAsync(me, mailbox, transport, message, request, attachments, send, left, ct, note);
        });
    }

    /// <summary>
    /// A copy that, as far as the mailbox tells, never left, built again as registration built it, over the same copy
    /// (its Message-ID and pixel). Its links and document links get new tokens, and the old ones stay: a Sent folder
    /// that has not caught up yet (Gmail's and Exchange's searches lag), or a mailbox that could not tell, may hide a
    /// first mail that did arrive, and its recipient's clicks must not become 404s. Answers its tracked HTML.
    /// </summary>
    string Rebuild(TrackedMessage message, MessageCopy copy, TrackedHtml body, Dictionary<string, ContentLink> shares, TrackingUrls urls,
        List<ContentLink> documentLinks)
    {
        var tracked = body.Build(copy.Id, urls.Click, urls.Pixel(copy.PixelToken), ContentLinks.ForCopy(shares, message, copy, urls, documentLinks));
        db.Links.AddRange(tracked.Links);
        return tracked.Html;
    }

    /// <summary>
    /// Keeps what sending the message's not-sent copies again needs while some copy is not sent (from the send on, for
    /// Mailboxes:KeepUnsentFor), and deletes it once none is; and, about once a minute, deletes what expired.
    /// </summary>
    async Task KeepUnsentAsync(TrackedMessage message, MailboxConnection mailbox, SendRequest request, IReadOnlyList<OutgoingAttachment> attachments,
        DateTimeOffset now)
    {
        var kept = await db.UnsentContents.FirstOrDefaultAsync(c => c.TrackedMessageId == message.Id, CancellationToken.None);
        if (message.Copies.Any(c => c.NotSentReason is not null))
        {
            if (kept is null && request.Html is not null)
            {
                db.UnsentContents.Add(new UnsentContent
                {
                    TrackedMessageId = message.Id, MailboxId = mailbox.Id, Html = request.Html, Text = request.Text,
                    KeptUntil = now + mailboxOptions.Value.KeepUnsentFor,
                    Attachments = [.. attachments.Select((a, i) => new UnsentAttachment
                    {
                        TrackedMessageId = message.Id, Ordinal = i, FileName = a.FileName, MediaType = a.MediaType, Content = a.Content,
                    })],
                });
            }
        }
        // Every copy left: nothing is to be sent again (its files go with it, by the key's cascade).
        else if (kept is not null) db.UnsentContents.Remove(kept);
        // Not this message's own row, which the save below keeps or removes: deleted under it, the save would fail.
        if (unsentUpkeep.Due(now)) await db.UnsentContents.Where(c => c.KeptUntil <= now && c.TrackedMessageId != message.Id).ExecuteDeleteAsync(CancellationToken.None);
    }

    /// <summary>
    /// Before copies are sent again: those whose failure came after the mail was handed over (their reason starts with
    /// <see cref="MayHaveLeftNote"/>), and those an earlier resend had claimed and never released (<paramref name="interrupted"/>:
    /// its process died, perhaps after handing them over), are looked for in the mailbox's Sent folder, as a stopped
    /// send's retry looks. Those found left: they are recorded as sent, with the ids the provider kept, and not sent
    /// again. Where the mailbox cannot tell, or cannot be asked, they are sent again as the user asked (their reason
    /// warned them), and the answer says so.
    /// </summary>
    async Task<(Dictionary<Guid, CopySendResult> Left, string? Note)> LookInSentAsync(MailboxConnection mailbox, IMailTransport transport,
        List<MessageCopy> copies, IReadOnlySet<Guid> interrupted, CancellationToken ct)
    {
        var left = new Dictionary<Guid, CopySendResult>();
        var maybe = copies.Where(c => interrupted.Contains(c.Id) || c.NotSentReason?.StartsWith(MayHaveLeftNote, StringComparison.Ordinal) == true).ToList();
        if (maybe.Count == 0) return (left, null);
        IReadOnlyList<SentLookup> found;
        try
        {
            found = await transport.FindInSentAsync(mailbox, [.. maybe.Select(c => new SentQuery(c.MessageIdHeader, c.PixelToken))], ct);
        }
        catch (MailboxException ex)
        {
            return (left, $"The mailbox could not be asked whether {Display.Plural(maybe.Count, "copy", "copies")} that may have left did " +
                $"({ex.Message}); sent again as asked.");
        }
        var unknown = new List<string>();
        foreach (var (copy, lookup) in maybe.Zip(found))
        {
            if (lookup.Left == true) left[copy.Id] = new CopySendResult(copy.Id, true, null, lookup.SentMessageId, lookup.ThreadId);
            else if (lookup.Left is null) unknown.Add(lookup.Why ?? $"The mailbox {mailbox.Address} cannot tell.");
        }
        var notes = new List<string>();
        if (left.Count > 0)
        {
            notes.Add($"{Display.Plural(left.Count, "copy", "copies")} that may have left {(left.Count == 1 ? "was" : "were")} found in the Sent " +
                "folder: recorded as sent, not sent again.");
        }
        if (unknown.Count > 0)
        {
            notes.Add($"The mailbox could not tell whether {Display.Plural(unknown.Count, "copy", "copies")} that may have left did " +
                $"({string.Join(" ", unknown.Distinct())}); sent again as asked.");
        }
        return (left, notes.Count > 0 ? string.Join(" ", notes) : null);
    }

    static readonly SendOutcome NoSuchMessage = new(null, null, StatusCodes.Status404NotFound, "No such message.", "You have no message with this id.");

    /// <summary>
    /// Sends again the copies of the user's message <paramref name="id"/> that were not sent, and only those: each with
    /// its own Message-ID and pixel, its links made again (as <see cref="ResumeAsync"/> makes a copy that never left),
    /// with the body, plain text and files kept from the send, through the mailbox the send went through. The copies
    /// are claimed first with one conditional update, so that two requests at once do not both send one. Answers the
    /// copies sent again as the send answers its copies, or why nothing was sent: 404 (not the user's message), 409
    /// (no copy failed, or another request is sending them), 410 (the content is no longer kept), or the mailbox's
    /// problem as the send answers it.
    /// </summary>
    public async Task<SendOutcome> ResendAsync(CurrentUser me, Guid id, TrackingUrls urls, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var found = await db.Messages.Where(m => m.Id == id && m.UserId == me.Id && m.TeamId == me.TeamId)
            .Select(m => new { Failed = m.Copies.Count(c => c.NotSentReason != null) }).FirstOrDefaultAsync(ct);
        if (found is null) return NoSuchMessage;
        if (found.Failed == 0)
        {
            return new SendOutcome(null, null, StatusCodes.Status409Conflict, "Every copy of this message was sent.",
                "No copy of this message failed to send: there is nothing to send again.");
        }
        var content = await db.UnsentContents.Include(c => c.Attachments).AsNoTracking().FirstOrDefaultAsync(c => c.TrackedMessageId == id, ct);
        if (content is null || content.KeptUntil <= now)
        {
            // Expired: gone now rather than at the next upkeep.
            if (content is not null) await db.UnsentContents.Where(c => c.TrackedMessageId == id).ExecuteDeleteAsync(ct);
            return new SendOutcome(null, null, StatusCodes.Status410Gone, "The message's content is no longer kept.",
                $"What sending the copies that were not sent again needs (the body and files) is kept for {Invitations.DescribeLifetime(mailboxOptions.Value.KeepUnsentFor)} " +
                "after the send (Mailboxes:KeepUnsentFor). Send a new message to these recipients.");
        }
        var (mailbox, transport, refused) = await MailboxAsync(me, new SendRequest(content.MailboxId, null, null, null, null, null, null), ct);
        if (refused is not null)
        {
            return refused.Errors is null ? refused : new SendOutcome(null, new Dictionary<string, string[]>
            {
                ["mailboxId"] = ["The mailbox this message was sent through has been removed: send a new message to these recipients from a connected mailbox."],
            });
        }
        if (TrackedHtml.TryParse(content.Html, out _) is not { } body)
        {
            return new SendOutcome(null, null, StatusCodes.Status410Gone, "The message's content is no longer kept.",
                "The kept body can no longer be prepared as it was. Send a new message to these recipients.");
        }

        var claim = Guid.NewGuid();
        var failed = db.Copies.Where(c => c.TrackedMessageId == id && c.NotSentReason != null);
        // Copies still claimed by a request that never released them: its process died, perhaps after they left. Taken
        // over below, and looked for in Sent before they are sent (a copy another request takes first is not ours).
        var stale = StaleBefore(now);
        var interrupted = (await failed.Where(c => c.ResendClaim != null && c.ResendClaimedAt < stale).Select(c => c.Id).ToListAsync(ct)).ToHashSet();
        var claimed = await ClaimAsync(failed, claim, now, ct);
        if (claimed == 0)
        {
            return new SendOutcome(null, null, StatusCodes.Status409Conflict, "These copies are being sent again already.",
                "Another request is sending this message's copies that were not sent; its message page shows what became of them.");
        }
        return await HoldingClaimAsync(claim, async delivering =>
        {
            // Read after the claim: the copies as they are now.
            var message = await db.Messages.Include(m => m.Recipients).Include(m => m.Copies).ThenInclude(c => c.Links)
                .AsSplitQuery().FirstOrDefaultAsync(m => m.Id == id, ct);
            if (message is null) return NoSuchMessage;
            var shares = await ContentLinks.FindSharesAsync(db, me, body.Hrefs(), urls, ct);
            var documentLinks = new List<ContentLink>();
            var send = new List<CopyToSend>();
            var claimedCopies = message.Copies.Where(c => c.ResendClaim == claim).ToList();
            var (left, note) = await LookInSentAsync(mailbox, transport, claimedCopies, interrupted, ct);
            foreach (var copy in claimedCopies)
            {
                var recipients = message.Recipients.Where(r => r.CopyId == copy.Id).OrderBy(r => r.Role).ThenBy(r => r.Address, StringComparer.Ordinal)
                    .Select(r => r.Address).ToList();
                send.Add(new CopyToSend(copy.Id, recipients, $"<{copy.MessageIdHeader}>",
                    left.ContainsKey(copy.Id) ? null : Rebuild(message, copy, body, shares, urls, documentLinks)));
            }
            db.ContentLinks.AddRange(documentLinks);
            await db.SaveChangesAsync(ct);
            send = [.. send.OrderBy(c => message.Recipients.First(r => r.CopyId == c.Id).Role).ThenBy(c => c.Recipients[0], StringComparer.Ordinal)];
            var request = new SendRequest(mailbox.Id, null, message.Subject, null, null, null, content.Html, content.Text);
            var attachments = content.Attachments.OrderBy(a => a.Ordinal).Select(a => new OutgoingAttachment(a.FileName, a.MediaType, a.Content)).ToList();
            delivering();
            return await DeliverAsync(me, mailbox, transport, message, request, attachments, send, left, CancellationToken.None, note, again: true);
        });
    }

    /// <summary>
    /// Runs <paramref name="work"/> holding <paramref name="claim"/> on copies (a resend's, or a stopped send's retry's),
    /// renewed while it runs however long that takes, so that only a dead request's claim goes stale. Released when the
    /// work answers, or fails before it calls the action it is given (the copies may be handed over from then on). A
    /// failure after that keeps the claim: it goes stale, and the resend that takes the copies over then looks for them
    /// in Sent rather than sending them again blindly.
    /// </summary>
    async Task<SendOutcome> HoldingClaimAsync(Guid claim, Func<Action, Task<SendOutcome>> work)
    {
        using var sending = new CancellationTokenSource();
        var renewal = RenewClaimAsync(claim, mailboxOptions.Value.ResendClaimHold / 5, sending.Token);
        var delivering = false;
        var answered = false;
        try
        {
            var outcome = await work(() => delivering = true);
            answered = true;
            return outcome;
        }
        finally
        {
            await sending.CancelAsync();
            await renewal;
            if (answered || !delivering) await ReleaseClaimAsync(claim);
        }
    }

    /// <summary>
    /// Claims those of <paramref name="copies"/> that no live request holds (unclaimed, or claimed longer ago than
    /// Mailboxes:ResendClaimHold: that request died), in one conditional update, so that two requests never both hold a
    /// copy. Answers how many it took.
    /// </summary>
    Task<int> ClaimAsync(IQueryable<MessageCopy> copies, Guid claim, DateTimeOffset now, CancellationToken ct)
    {
        var stale = StaleBefore(now);
        return copies.Where(c => c.ResendClaim == null || c.ResendClaimedAt < stale)
            .ExecuteUpdateAsync(u => u.SetProperty(c => c.ResendClaim, claim).SetProperty(c => c.ResendClaimedAt, now), ct);
    }

    /// <summary>A claim made before this was not renewed within Mailboxes:ResendClaimHold: its request died.</summary>
    DateTimeOffset StaleBefore(DateTimeOffset now) => now - mailboxOptions.Value.ResendClaimHold;

    Task ReleaseClaimAsync(Guid claim) => db.Copies.Where(c => c.ResendClaim == claim)
        .ExecuteUpdateAsync(u => u.SetProperty(c => c.ResendClaim, (Guid?)null).SetProperty(c => c.ResendClaimedAt, (DateTimeOffset?)null), CancellationToken.None);

    /// <summary>
    /// Renews a claim on copies every <paramref name="every"/> until <paramref name="stop"/>, on a context of its own (the
    /// request's is busy sending). A renewal that fails is tried again at the next tick; the claim goes stale only if
    /// every renewal within the hold fails.
    /// </summary>
    async Task RenewClaimAsync(Guid claim, TimeSpan every, CancellationToken stop)
    {
        using var timer = new PeriodicTimer(every, clock);
        try
        {
            while (await timer.WaitForNextTickAsync(stop))
            {
                try
                {
                    await using var scope = services.GetRequiredService<IServiceScopeFactory>().CreateAsyncScope();
                    var renewing = scope.ServiceProvider.GetRequiredService<AppDbContext>();
                    var now = clock.GetUtcNow();
                    await renewing.Copies.Where(c => c.ResendClaim == claim).ExecuteUpdateAsync(u => u.SetProperty(c => c.ResendClaimedAt, now), stop);
                }
                catch (Exception ex) when (ex is not OperationCanceledException)
                {
                    services.GetRequiredService<ILogger<MailSender>>().LogWarning(ex, "Could not renew the claim of a resend");
                }
            }
        }
        catch (OperationCanceledException)
        {
        }
    }

    /// <summary>The mailbox the request sends through and its transport, or why it cannot send.</summary>
    async Task<(MailboxConnection Mailbox, IMailTransport Transport, SendOutcome? Refused)> MailboxAsync(CurrentUser me, SendRequest request, CancellationToken ct)
    {
        var from = AccountService.NormalizeAddress(request.From);
        var mailboxes = db.Mailboxes.Where(m => m.UserId == me.Id);
        // The mailbox for the address with its domain written either way (punycode or Unicode): registration takes either
        // form of one of the user's addresses.
        var fromForms = from is null ? [] : AccountService.StoredForms(from);
        var mailbox = request.MailboxId is { } mailboxId
            ? await mailboxes.FirstOrDefaultAsync(m => m.Id == mailboxId, ct)
            : from is null ? null : await mailboxes.OrderBy(m => m.Kind).FirstOrDefaultAsync(m => fromForms.Contains(m.Address), ct);
        if (mailbox is null)
        {
            return (null!, null!, new SendOutcome(null, new Dictionary<string, string[]>
            {
                ["mailboxId"] = [request.MailboxId is null
                    ? "No connected mailbox sends as this address. Connect it first (POST /api/mailboxes/imap) or name one with mailboxId."
                    : "No such mailbox."],
            }));
        }
        if (services.GetKeyedService<IMailTransport>(mailbox.Kind) is not { } transport)
        {
            return (mailbox, null!, new SendOutcome(null, null, StatusCodes.Status501NotImplemented, "Sending through this kind of mailbox is not built yet.",
                $"{mailbox.Kind} mailboxes cannot send yet; connect the mailbox over IMAP and SMTP."));
        }
        if (mailbox.Status != MailboxStatus.Active)
        {
            return (mailbox, transport, new SendOutcome(null, null, StatusCodes.Status409Conflict, "The mailbox needs to be reconnected.",
                mailbox.StatusMessage ?? "Connect the mailbox again."));
        }
        return (mailbox, transport, null);
    }

    /// <summary>
    /// What the sender's Sent folder keeps of a tracked mail (see <see cref="OutgoingCopy.ForSentFolder"/>): the copy's
    /// headers (subject, date, Message-ID, In-Reply-To, References, List-Unsubscribe…) over the body as the sender wrote
    /// it, and every recipient, Bcc included, as a mail client keeps its own sent mail. Nothing in it is ours to count:
    /// the sender reading it, or following its links, is not taken for a recipient.
    /// </summary>
    public static MimeMessage ForSentFolder(MailboxAddress sender, MimeMessage copy, TrackedMessage message, string html, string? text,
        IReadOnlyList<OutgoingAttachment>? attachments = null)
    {
        var keep = Compose(sender, message, copy.MessageId ?? "", html, text, copy.Date, attachments);
        keep.Bcc.AddRange(message.Recipients.Where(r => r.Role == RecipientRole.Bcc).Select(r => new MailboxAddress(r.Name, r.Address)));
        foreach (var header in copy.Headers)
        {
            if (keep.Headers.Contains(header.Field) || header.Field.StartsWith("Content-", StringComparison.OrdinalIgnoreCase)) continue;
            keep.Headers.Add(header.Clone());
        }
        return keep;
    }

    /// <summary>
    /// One copy as it leaves: To and Cc show everyone (so reply-all reaches them), Bcc never; our Message-ID; the
    /// tracked HTML with a plain-text alternative; the attachments, if any, in a multipart/mixed around it, each file's
    /// name RFC 2231-encoded where it is not ASCII and its type the one its bytes show.
    /// </summary>
    public static MimeMessage Compose(MailboxAddress sender, TrackedMessage message, string messageId, string html, string? text, DateTimeOffset date,
        IReadOnlyList<OutgoingAttachment>? attachments = null)
    {
        var mime = new MimeMessage();
        mime.From.Add(sender);
        mime.To.AddRange(message.Recipients.Where(r => r.Role == RecipientRole.To).Select(r => new MailboxAddress(r.Name, r.Address)));
        mime.Cc.AddRange(message.Recipients.Where(r => r.Role == RecipientRole.Cc).Select(r => new MailboxAddress(r.Name, r.Address)));
        mime.Subject = message.Subject;
        mime.Date = date;
        mime.MessageId = messageId.Trim('<', '>');
        var body = new BodyBuilder { HtmlBody = html, TextBody = text ?? HtmlText.ToPlainText(html) };
        foreach (var file in attachments ?? [])
        {
            // Over the one array the request brought: per-recipient copies (and the Sent version) do not each copy 25 MB.
            var part = new MimePart(ContentType.Parse(file.MediaType))
            {
                Content = new MimeContent(new MemoryStream(file.Content, writable: false)),
                ContentDisposition = new ContentDisposition(ContentDisposition.Attachment),
                ContentTransferEncoding = ContentEncoding.Base64,
                FileName = file.FileName,
            };
            body.Attachments.Add(part);
            // RFC 2231 (filename*=utf-8''…) for a name that is not ASCII, as mail clients read it; not RFC 2047 words.
            foreach (var parameter in part.ContentDisposition!.Parameters.Concat(part.ContentType.Parameters).Where(p => p.Name is "filename" or "name"))
                parameter.EncodingMethod = ParameterEncodingMethod.Rfc2231;
        }
        mime.Body = body.ToMessageBody();
        return mime;
    }
}
