using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <param name="Attachments">Files to attach, each with its name and its bytes (base64 in JSON); at most
/// Mailboxes:MaxAttachmentBytes (25 MB) together. Every copy carries them all.</param>
public sealed record SendRequest(
    Guid? MailboxId, string? From, string? Subject, List<string>? To, List<string>? Cc, List<string>? Bcc, string? Html,
    string? Text = null, bool PerRecipient = true, MessageSource Source = MessageSource.Api, List<AttachmentRequest>? Attachments = null);

public sealed record SentCopy(Guid CopyId, List<string> Recipients, string MessageId, bool Sent, string? Error);

public sealed record SendResponse(Guid Id, Guid MailboxId, DateTimeOffset? SentAt, List<SentCopy> Copies, string? Warning);

/// <summary>The answer to a send: the copies as sent, or validation errors, or a problem with the mailbox.</summary>
public sealed record SendOutcome(SendResponse? Response, Dictionary<string, string[]>? Errors, int? ProblemStatus = null, string? ProblemTitle = null, string? ProblemDetail = null);

/// <summary>
/// Registers a tracked message and sends it through the user's connected mailbox, each copy with our Message-ID
/// (MIME built with MimeKit), so that answers can be matched. The transport depends on the mailbox's kind.
/// </summary>
public sealed class MailSender(AppDbContext db, IServiceProvider services, TrackingTargets targets, TimeProvider clock,
    Microsoft.Extensions.Options.IOptions<TrackingOptions> tracking, Microsoft.Extensions.Options.IOptions<MailboxOptions> mailboxOptions)
{
    /// <param name="id">The message's id when the caller chose it: the Compose page's form carries one, so that the
    /// same form posted twice (a double click) is one message, the second insert refused by the key.</param>
    public async Task<SendOutcome> SendAsync(CurrentUser me, SendRequest request, TrackingUrls urls, CancellationToken ct, Guid? id = null)
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
            return new SendOutcome(null, new Dictionary<string, string[]>
            {
                ["mailboxId"] = [request.MailboxId is null
                    ? "No connected mailbox sends as this address. Connect it first (POST /api/mailboxes/imap) or name one with mailboxId."
                    : "No such mailbox."],
            });
        }
        if (services.GetKeyedService<IMailTransport>(mailbox.Kind) is not { } transport)
        {
            return new SendOutcome(null, null, StatusCodes.Status501NotImplemented, "Sending through this kind of mailbox is not built yet.",
                $"{mailbox.Kind} mailboxes cannot send yet; connect the mailbox over IMAP and SMTP.");
        }
        if (mailbox.Status != MailboxStatus.Active)
        {
            return new SendOutcome(null, null, StatusCodes.Status409Conflict, "The mailbox needs to be reconnected.",
                mailbox.StatusMessage ?? "Connect the mailbox again.");
        }

        // The files are checked before anything is registered: a refused file leaves no message behind.
        var (attachments, attachmentErrors) = Attachments.Check(request.Attachments, mailboxOptions.Value.MaxAttachmentBytes);
        if (attachmentErrors is not null) return new SendOutcome(null, new Dictionary<string, string[]> { ["attachments"] = attachmentErrors });

        var register = new MessagesApi.RegisterRequest(request.From ?? mailbox.Address, request.Subject, request.To, request.Cc, request.Bcc,
            request.Html, request.PerRecipient, null, request.Source);
        var (registered, errors) = await MessagesApi.RegisterAsync(register, me, db, tracking.Value, urls, clock, ct, id);
        if (registered is null) return new SendOutcome(null, errors);

        var message = await db.Messages.Include(m => m.Recipients).Include(m => m.Copies).ThenInclude(c => c.Links)
            .AsSplitQuery().FirstAsync(m => m.Id == registered.Id, ct);
        var senderName = await db.Users.Where(u => u.Id == me.Id).Select(u => u.DisplayName).FirstOrDefaultAsync(ct);
        var sender = new MailboxAddress(senderName, message.FromAddress);
        var names = message.Recipients.ToDictionary(r => r.Address, r => r.Name);
        var outgoing = registered.Copies.Select(copy => new OutgoingCopy(copy.Id,
            Compose(sender, message, copy.MessageId, copy.Html, request.Text, clock.GetUtcNow(), attachments), sender,
            [.. copy.Recipients.Select(a => new MailboxAddress(names.GetValueOrDefault(a), a))])).ToList();
        if (outgoing.Count > 0)
        {
            // One untracked version for the Sent folder, whichever copy it ends up standing for.
            var keep = ForSentFolder(sender, outgoing[0].Message, message, request.Html!, request.Text, attachments);
            outgoing = [.. outgoing.Select(o => o with { ForSentFolder = keep })];
        }

        TransportResult result;
        try
        {
            result = await transport.SendAsync(mailbox, outgoing, ct);
        }
        catch (MailboxException ex)
        {
            // Nothing left: the registration goes too, so that the list shows no mail that was never sent.
            db.Messages.Remove(message);
            if (ex.NeedsReconnect)
            {
                mailbox.Status = MailboxStatus.NeedsReconnect;
                mailbox.StatusMessage = ex.Message.Length > 1000 ? ex.Message[..1000] : ex.Message;
            }
            await db.SaveChangesAsync(CancellationToken.None);
            return new SendOutcome(null, null, StatusCodes.Status502BadGateway, "The mailbox could not send; nothing was sent.", ex.Message);
        }

        var byCopy = result.Copies.ToDictionary(c => c.CopyId);
        foreach (var copy in message.Copies)
        {
            if (!byCopy.TryGetValue(copy.Id, out var r) || !r.Sent) continue;
            var kept = r.SentMessageId?.Trim('<', '>');
            if (!string.IsNullOrEmpty(kept) && kept != copy.MessageIdHeader) copy.SentMessageIdHeader = kept;
            if (!string.IsNullOrEmpty(r.ProviderThreadId)) copy.ProviderThreadId = r.ProviderThreadId;
        }
        if (result.Copies.Any(c => c.Sent))
        {
            message.SentAt = clock.GetUtcNow();
        }
        await db.SaveChangesAsync(CancellationToken.None);
        if (result.Copies.Any(c => c.Sent)) await targets.MessageChangedAsync(message.Id, CancellationToken.None);

        var copies = registered.Copies.Select(c => byCopy.TryGetValue(c.Id, out var r)
            ? new SentCopy(c.Id, c.Recipients, c.MessageId, r.Sent, r.Error)
            : new SentCopy(c.Id, c.Recipients, c.MessageId, false, "Not sent.")).ToList();
        var warning = result.Warning;
        if (copies.Any(c => !c.Sent)) warning = string.Join(" ", new[] { warning, "Some copies were not sent; see each copy's error." }.Where(w => w is not null));
        return new SendOutcome(new SendResponse(message.Id, mailbox.Id, message.SentAt, copies, warning), null);
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
