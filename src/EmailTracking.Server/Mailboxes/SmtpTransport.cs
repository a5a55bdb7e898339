using EmailTracking.Data;
using MailKit;
using MailKit.Net.Imap;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Sends through the mailbox's SMTP server (MailKit) and stores a copy in its Sent folder over IMAP. The copy is stored
/// before the mail is handed over, marked with <see cref="SendingKeyword"/>, and the mark is cleared once the server has
/// accepted the mail (the copy is removed when it certainly did not leave): so that whatever moment the process stops
/// at, the Sent folder tells <see cref="IsInSentAsync"/> "left", "never left" or "cannot know", never a wrong "never left".
/// </summary>
public sealed class SmtpTransport(MailboxSecrets secrets, IOptions<MailboxOptions> options, ILogger<SmtpTransport> log) : IMailTransport
{
    /// <summary>
    /// The IMAP keyword on a Sent copy stored before its mail was handed to the SMTP server and not yet known to have been
    /// accepted. Only where the Sent folder takes keywords of its own (PERMANENTFLAGS with \*) and the server removes one
    /// message by its UID (UIDPLUS); elsewhere the copy is stored after the server accepted the mail, as a mail client does.
    /// </summary>
    public const string SendingKeyword = "$EmailTrackingSending";

    public async Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct)
    {
        var secret = secrets.UnprotectImap(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored credentials can no longer be read. Connect the mailbox again.", needsReconnect: true);
        using var smtp = await MailConnect.SmtpAsync(secret, options.Value, ct);
        // The first copy's Sent version goes in before anything is handed over; nothing is sent if it cannot be stored.
        using var early = copies.Count > 0 && options.Value.AppendToSent ? await StoreBeforeSendingAsync(secret, SentFolderVersion(copies[0]), ct) : null;
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
                if (results.Count == 0 && problem is MailboxException { NeedsReconnect: true } whole)
                {
                    if (early is not null) await early.SettleAsync(EarlyCopy.Outcome.NeverLeft, ct);
                    throw whole;
                }
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
        string? warning = null;
        if (early is not null)
        {
            // The mark goes once the server took the mail; it stays when the mail may have left; the copy goes when it did not.
            var r = results[0];
            warning = await early.SettleAsync(r.Sent ? EarlyCopy.Outcome.Left : r.MayHaveLeft ? EarlyCopy.Outcome.Unknown : EarlyCopy.Outcome.NeverLeft, ct);
            // Another copy left instead (the first was refused): it is stored after, as without the mark.
            if (!r.Sent && !r.MayHaveLeft && first is not null) warning = await AppendToSentAsync(secret, SentFolderVersion(first), ct) ?? warning;
        }
        else if (first is not null && options.Value.AppendToSent)
        {
            warning = await AppendToSentAsync(secret, SentFolderVersion(first), ct);
        }
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

    /// <summary>
    /// Searches the Sent folder for the Message-ID. A copy without <see cref="SendingKeyword"/> means the mail left (the
    /// mark was cleared once the server accepted it, or the provider filed its own copy, as Gmail's SMTP does); only
    /// copies still marked mean the process stopped while the mail was being handed over: it cannot be known (null).
    /// None found: it never left, where the copy is stored before sending (AppendToSent, in a Sent folder that keeps our
    /// mark); where it is stored after sending, or not at all, not finding it cannot tell (null).
    /// </summary>
    public async Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct) =>
        (await FindInSentAsync(mailbox, [new SentQuery(messageId, pixelToken)], ct))[0].Left;

    /// <summary>
    /// As <see cref="IsInSentAsync"/>, for one copy. Several copies of one send cannot be told apart: the Sent folder
    /// keeps one version of the send, stored before the first copy is handed over (or after the first that left), so
    /// it says nothing of the others.
    /// </summary>
    public async Task<IReadOnlyList<SentLookup>> FindInSentAsync(MailboxConnection mailbox, IReadOnlyList<SentQuery> copies, CancellationToken ct)
    {
        if (copies.Count == 0) return [];
        if (copies.Count > 1)
        {
            return [.. copies.Select(_ => new SentLookup(null, Why: $"The mail went over SMTP as {copies.Count} copies, one per recipient, and the Sent " +
                "folder keeps one version of a send (as a mail client keeps one), under one copy's Message-ID: it cannot tell which of the others left."))];
        }
        var secret = secrets.UnprotectImap(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored credentials can no longer be read. Connect the mailbox again.", needsReconnect: true);
        var messageId = copies[0].MessageId.Trim('<', '>');
        try
        {
            using var imap = await MailConnect.ImapAsync(secret, options.Value, ct);
            var sent = await ImapWatch.FindSentFolderAsync(imap, ct);
            if (sent is null) return [new SentLookup(null, Why: "The mailbox has no Sent folder, so it cannot tell whether the mail left.")];
            // Read-write, as when the copy is stored: only then does the server say whether the folder keeps our mark.
            await sent.OpenAsync(FolderAccess.ReadWrite, ct);
            var keepsMark = sent.PermanentFlags.HasFlag(MessageFlags.UserDefined) && imap.Capabilities.HasFlag(ImapCapabilities.UidPlus);
            var found = await sent.SearchAsync(MailKit.Search.SearchQuery.HeaderContains("Message-ID", messageId), ct);
            var kept = found.Count == 0 ? [] : await sent.FetchAsync(found, MessageSummaryItems.Flags, ct);
            await imap.DisconnectAsync(true, ct);
            if (kept.Any(c => !IsMarked(c))) return [new SentLookup(true)];
            if (kept.Count > 0)
            {
                return [new SentLookup(null, Why: "Its copy in the Sent folder is still marked as being sent: the process stopped while the mail was " +
                    "being handed to the SMTP server, so it may or may not have left.")];
            }
            if (!options.Value.AppendToSent)
            {
                return [new SentLookup(null, Why: "This server stores no Sent copy over IMAP (Mailboxes:AppendToSent is off), and the SMTP server may " +
                    "keep none: not finding one does not say the mail never left.")];
            }
            if (!keepsMark)
            {
                return [new SentLookup(null, Why: "The Sent folder cannot keep our mark (no keywords of ours, or no UIDPLUS), so its copy is stored " +
                    "only after the SMTP server accepted the mail: a send that stopped in between left none, and not finding one does not say it never left.")];
            }
            return [new SentLookup(false)];
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw MailConnect.Translate("IMAP", secret.Imap, ex, ct);
        }
    }

    static bool IsMarked(IMessageSummary copy) => copy.Keywords?.Any(k => string.Equals(k, SendingKeyword, StringComparison.OrdinalIgnoreCase)) == true;

    /// <summary>
    /// Stores the Sent version of the mail about to leave, marked as being sent: null where the folder cannot keep the
    /// mark (the copy is then stored after sending). A failure here stops the send (nothing has left): sent without a
    /// copy stored first, a crash just after the server took it would look like mail that never left.
    /// </summary>
    async Task<EarlyCopy?> StoreBeforeSendingAsync(ImapSmtpSecret secret, MimeMessage message, CancellationToken ct)
    {
        ImapClient? imap = null;
        try
        {
            imap = await MailConnect.ImapAsync(secret, options.Value, ct);
            var sent = await SentFolderAsync(imap, ct);
            await sent.OpenAsync(FolderAccess.ReadWrite, ct);
            if (!sent.PermanentFlags.HasFlag(MessageFlags.UserDefined) || !imap.Capabilities.HasFlag(ImapCapabilities.UidPlus))
            {
                log.LogDebug("The Sent folder at {Host} takes no keywords of ours or the server lacks UIDPLUS: its copy is stored after sending", secret.Imap.Host);
                await imap.DisconnectAsync(true, ct);
                imap.Dispose();
                return null;
            }
            var uid = await sent.AppendAsync(new AppendRequest(message, MessageFlags.Seen, [SendingKeyword]), ct)
                ?? throw new MailboxException("The IMAP server did not say where it stored the Sent copy.", needsReconnect: false);
            var early = new EarlyCopy(options.Value, log, secret, imap, sent, uid);
            imap = null;
            return early;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            imap?.Dispose();
            var problem = MailConnect.Translate("IMAP", secret.Imap, ex, ct);
            log.LogWarning(ex, "Could not store the Sent copy before sending; nothing was sent");
            throw problem is MailboxException m
                ? new MailboxException("Nothing was sent: its copy could not be stored in the Sent folder first. " + m.Message, m.NeedsReconnect)
                : problem;
        }
    }

    /// <summary>The mailbox's Sent folder, created when it has none.</summary>
    static async Task<IMailFolder> SentFolderAsync(ImapClient imap, CancellationToken ct)
    {
        if (await ImapWatch.FindSentFolderAsync(imap, ct) is { } sent) return sent;
        var personal = imap.GetFolder(imap.PersonalNamespaces[0]);
        return await personal.CreateAsync("Sent", true, ct)
            ?? throw new MailboxException("The mailbox has no Sent folder and none could be created.", needsReconnect: false);
    }

    /// <summary>A Sent copy stored before its mail was handed over, still marked as being sent, on the IMAP connection that stored it.</summary>
    sealed class EarlyCopy(MailboxOptions options, ILogger log, ImapSmtpSecret secret, ImapClient imap, IMailFolder folder, UniqueId uid) : IDisposable
    {
        public enum Outcome { Left, NeverLeft, Unknown }

        bool settled;

        /// <summary>
        /// Left: the mark goes. Never left: the copy goes. Unknown: both stay, and the mark says so to a later look.
        /// Tried again on a new connection when the first has gone meanwhile (a long send); a failure is a warning.
        /// </summary>
        public async Task<string?> SettleAsync(Outcome outcome, CancellationToken ct)
        {
            if (settled) return null;
            settled = true;
            if (outcome == Outcome.Unknown) return null;
            try
            {
                try
                {
                    await ApplyAsync(folder, outcome, ct);
                }
                catch (Exception ex) when (ex is IOException or ImapProtocolException or System.Net.Sockets.SocketException or ServiceNotConnectedException)
                {
                    log.LogDebug(ex, "The IMAP connection went during the send; settling the Sent copy on a new one");
                    using var again = await MailConnect.ImapAsync(secret, options, ct);
                    var sent = await ImapWatch.FindSentFolderAsync(again, ct)
                        ?? throw new MailboxException("The Sent folder is gone.", needsReconnect: false);
                    await sent.OpenAsync(FolderAccess.ReadWrite, ct);
                    if (sent.UidValidity != folder.UidValidity) throw new MailboxException("The Sent folder was replaced meanwhile.", needsReconnect: false);
                    await ApplyAsync(sent, outcome, ct);
                    await again.DisconnectAsync(true, ct);
                }
                await imap.DisconnectAsync(true, ct);
                return null;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                log.LogWarning(ex, "Could not settle the Sent copy ({Outcome})", outcome);
                var why = MailConnect.Translate("IMAP", secret.Imap, ex, ct).Message;
                return outcome == Outcome.Left
                    ? "The mail was sent, but its copy in the Sent folder is still marked as being sent: " + why
                    : "The mail was not sent, but its copy in the Sent folder could not be removed: " + why;
            }
        }

        async Task ApplyAsync(IMailFolder sent, Outcome outcome, CancellationToken ct)
        {
            if (outcome == Outcome.Left)
            {
                await sent.StoreAsync(uid, new StoreFlagsRequest(StoreAction.Remove, [SendingKeyword]) { Silent = true }, ct);
                return;
            }
            await sent.StoreAsync(uid, new StoreFlagsRequest(StoreAction.Add, MessageFlags.Deleted) { Silent = true }, ct);
            await sent.ExpungeAsync([uid], ct);
        }

        public void Dispose() => imap.Dispose();
    }

    /// <summary>Stores the sent mail in the Sent folder (created when the mailbox has none); a failure is a warning, not an error.</summary>
    async Task<string?> AppendToSentAsync(ImapSmtpSecret secret, MimeMessage message, CancellationToken ct)
    {
        try
        {
            using var imap = await MailConnect.ImapAsync(secret, options.Value, ct);
            var sent = await SentFolderAsync(imap, ct);
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
