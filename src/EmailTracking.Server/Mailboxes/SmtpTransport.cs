using EmailTracking.Data;
using MailKit;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>Sends through the mailbox's SMTP server (MailKit) and stores a copy in its Sent folder over IMAP.</summary>
public sealed class SmtpTransport(MailboxSecrets secrets, IOptions<MailboxOptions> options, ILogger<SmtpTransport> log) : IMailTransport
{
    public async Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct)
    {
        var secret = secrets.UnprotectImap(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored credentials can no longer be read. Connect the mailbox again.", needsReconnect: true);
        using var smtp = await MailConnect.SmtpAsync(secret, options.Value, ct);
        var results = new List<CopySendResult>();
        OutgoingCopy? first = null;
        string? fatal = null;
        var fatalIsTemporary = false;
        foreach (var copy in copies)
        {
            if (fatal is not null)
            {
                // Never handed over: whatever stopped the connection, these did not leave.
                results.Add(new CopySendResult(copy.CopyId, false, fatal, Temporary: fatalIsTemporary));
                continue;
            }
            try
            {
                await smtp.SendAsync(copy.Message, copy.Sender, copy.Envelope, ct);
                results.Add(new CopySendResult(copy.CopyId, true, null, copy.Message.MessageId));
                first ??= copy;
            }
            catch (SmtpCommandException ex) when (ex.ErrorCode is SmtpErrorCode.RecipientNotAccepted)
            {
                // 4xx (greylisting, a full mailbox for now, rate limits) is a refusal for now; 5xx is final.
                results.Add(new CopySendResult(copy.CopyId, false, $"The server refused {ex.Mailbox?.Address}: {(int)ex.StatusCode} {ex.Message}",
                    Temporary: IsTemporary(ex)));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var problem = MailConnect.Translate("SMTP", secret.Smtp, ex, ct);
                // Nothing left yet and the server will not take mail at all: the caller says so as a whole.
                if (results.Count == 0 && problem is MailboxException { NeedsReconnect: true } whole) throw whole;
                fatal = problem.Message;
                // A reply code is an answer: the server refused this message (4xx for now, 5xx for good) and kept nothing.
                // Anything else (a dropped connection, no answer in time) may have come after the server took the message.
                fatalIsTemporary = ex is SmtpCommandException command ? IsTemporary(command) : problem is not MailboxException { NeedsReconnect: true };
                results.Add(new CopySendResult(copy.CopyId, false, fatal, Temporary: fatalIsTemporary,
                    MayHaveLeft: fatalIsTemporary && ex is not SmtpCommandException));
                log.LogWarning(ex, "Sending through {Address} stopped", mailbox.Address);
            }
        }
        try
        {
            await smtp.DisconnectAsync(true, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException)
        {
            log.LogDebug(ex, "SMTP QUIT failed after sending");
        }
        var warning = first is not null && options.Value.AppendToSent ? await AppendToSentAsync(secret, SentFolderVersion(first), ct) : null;
        return new TransportResult(results, warning);
    }

    /// <summary>What the Sent folder keeps of the first copy that left: its untracked version under its Message-ID.</summary>
    static MimeMessage SentFolderVersion(OutgoingCopy copy)
    {
        if (copy.ForSentFolder is not { } keep) return copy.Message;
        if (copy.Message.MessageId is { } id) keep.MessageId = id;
        return keep;
    }

    static bool IsTemporary(SmtpCommandException ex) => (int)ex.StatusCode is >= 400 and < 500;

    /// <summary>Searches the Sent folder for the Message-ID; a mailbox whose sent mail is not stored there (AppendToSent off) cannot tell.</summary>
    public async Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct)
    {
        if (!options.Value.AppendToSent) return null;
        var secret = secrets.UnprotectImap(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored credentials can no longer be read. Connect the mailbox again.", needsReconnect: true);
        try
        {
            using var imap = await MailConnect.ImapAsync(secret, options.Value, ct);
            var sent = await ImapWatch.FindSentFolderAsync(imap, ct);
            if (sent is null) return false;
            await sent.OpenAsync(FolderAccess.ReadOnly, ct);
            var found = await sent.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", messageId), ct);
            await imap.DisconnectAsync(true, ct);
            return found.Count > 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw MailConnect.Translate("IMAP", secret.Imap, ex, ct);
        }
    }

    /// <summary>Stores the sent mail in the Sent folder (created when the mailbox has none); a failure is a warning, not an error.</summary>
    async Task<string?> AppendToSentAsync(ImapSmtpSecret secret, MimeMessage message, CancellationToken ct)
    {
        try
        {
            using var imap = await MailConnect.ImapAsync(secret, options.Value, ct);
            var sent = await ImapWatch.FindSentFolderAsync(imap, ct);
            if (sent is null)
            {
                var personal = imap.GetFolder(imap.PersonalNamespaces[0]);
                sent = await personal.CreateAsync("Sent", true, ct)
                    ?? throw new MailboxException("The mailbox has no Sent folder and none could be created.", needsReconnect: false);
            }
            await sent.AppendAsync(message, MessageFlags.Seen, ct);
            await imap.DisconnectAsync(true, ct);
            return null;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogWarning(ex, "Could not store the sent mail in the Sent folder");
            return "The mail was sent but could not be stored in the Sent folder: " + MailConnect.Translate("IMAP", secret.Imap, ex, ct).Message;
        }
    }
}
