using System.Buffers;
using System.Globalization;
using System.Text;
using System.Text.Json;
using System.Text.RegularExpressions;
using MimeKit;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Says what an inbound message is: a person's reply, an auto-reply (with the stated return date), a bounce (with
/// each failed recipient, its status and whether the address is dead) or a complaint. Pure: no database, no I/O
/// beyond the stream it is given, safe to share as a singleton.
/// </summary>
/// <remarks>
/// Order of the rules: feedback reports (complaints), RFC 3464 delivery reports, Amazon SES notifications, the plain
/// text reports of servers that do not send RFC 3464, auto-reply headers, auto-reply text; anything else is human.
/// Reports come first because mail servers mark their bounces <c>Auto-Submitted: auto-replied</c> too.
/// </remarks>
public sealed partial class InboundClassifier
{
    private readonly InboundClassifierOptions options;
    private readonly TimeProvider time;
    private readonly ParserOptions parserOptions;

    public InboundClassifier(InboundClassifierOptions? options = null, TimeProvider? time = null)
    {
        this.options = options ?? new InboundClassifierOptions();
        this.time = time ?? TimeProvider.System;
        parserOptions = ParserOptions.Default.Clone();
        parserOptions.MaxMimeDepth = Math.Max(4, this.options.MaxDepth);
    }

    /// <summary>True for a status the classifier inferred from the error text (x.0.9yy) rather than read from the report.</summary>
    public static bool IsInferredStatus(string? status) => status is { Length: 7 } && status[1] == '.' && status[2..5] == "0.9";

    /// <summary>
    /// Parses and classifies a message. Never throws for bad input: empty, truncated, binary or otherwise unreadable
    /// input comes back as <see cref="InboundKind.Unparseable"/> with the reason.
    /// </summary>
    public InboundClassification ClassifyStream(Stream stream)
    {
        ArgumentNullException.ThrowIfNull(stream);
        MimeMessage message;
        try
        {
            // A seekable stream (a file) is parsed in place: the parts' content is not copied into memory.
            var parser = new MimeParser(parserOptions, stream, persistent: stream.CanSeek);
            message = parser.ParseMessage();
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            return Unparseable($"not a MIME message: {e.Message}");
        }
        using var parsed = message;
        if (message.Headers.Count == 0)
            return Unparseable("no header fields");
        // "name: test" is a well-formed header field: a YAML or JSON file parses as a message with a few such fields and
        // would be called a person's reply. Every message, report and notice has at least one of these.
        if (!HasMessageField(message.Headers))
            return Unparseable("none of a message's header fields (From, To, Subject, Date, Message-ID, Received, …): not an email message");
        try
        {
            return Classify(message);
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // Streams that fail while a part is read lazily (persistent parsing of a file that changed or broke).
            return Unparseable($"could not read the message's parts: {e.Message}");
        }
    }

    private static InboundClassification Unparseable(string reason) => new(InboundKind.Unparseable, reason);

    private static readonly HeaderId[] MessageFields =
    [
        HeaderId.From, HeaderId.Sender, HeaderId.To, HeaderId.Cc, HeaderId.Date, HeaderId.Subject, HeaderId.MessageId, HeaderId.Received,
        HeaderId.ReturnPath, HeaderId.MimeVersion, HeaderId.ContentType, HeaderId.InReplyTo, HeaderId.References, HeaderId.ResentFrom, HeaderId.ResentTo,
    ];

    private static bool HasMessageField(HeaderList headers)
    {
        foreach (var id in MessageFields)
        {
            if (headers.Contains(id))
                return true;
        }
        return false;
    }

    /// <summary>Classifies a parsed message.</summary>
    public InboundClassification Classify(MimeMessage message)
    {
        ArgumentNullException.ThrowIfNull(message);
        return Classify(message, 0);
    }

    private InboundClassification Classify(MimeMessage message, int depth)
    {
        var v = new MessageView(message, options);

        if (Complaint(v) is { } complaint)
            return complaint;
        if ((ReadReceipt(v) ?? PlainReadReceipt(v)) is { } receipt)
            return receipt;
        if (DeliveryReport(v) is { } report)
            return report;
        if (AmazonSes(v) is { } ses)
            return ses;
        if (TextReport(v, depth) is { } bounce)
            return bounce;

        var (top, quoted) = AutoReplyRules.SplitQuoted(v.Text);
        var helpDesk = HelpDeskRules.StampingSystem(v);
        if (AutoReplyRules.HeaderVerdict(v, helpDesk) is { } headerReason)
            return AutoReply(v, headerReason, top);
        if (AutoReplyRules.ContentVerdict(v, top, quoted, out var wording) is { } contentReason)
            return AutoReply(v, contentReason, top);
        if (HelpDeskRules.Verdict(v, top, helpDesk) is { } acknowledgement)
            return AutoReply(v, acknowledgement, top);

        // On a mail marked Auto-Submitted by a help desk that marks all its mail so, "no auto-reply header" would read as a
        // mistake: say why the header did not count.
        var headers = helpDesk is not null && (v.HasHeader("Auto-Submitted") || v.HasHeader("X-Auto-Response-Suppress"))
            ? $"an agent's answer through {helpDesk}, whose Auto-Submitted header is on every mail it sends, agents' answers too; no help desk acknowledgement's wording"
            : "no auto-reply header";
        return new InboundClassification(InboundKind.Human,
            wording is not null ? $"a person's reply: {headers}, no report format; " + wording
            : quoted ? $"a person's reply: {headers}, no report format, and text written above the quoted original"
                     : $"a person's reply: {headers}, no report format, and no out-of-office wording");
    }

    /// <summary>
    /// Of a numeric date's two readings, when nothing in the notice tells its order ("until 04/01/2027" from a Gmail address in
    /// English, dated in UTC): the earlier. Taken too early, the next step meets the same notice and the sequence pauses
    /// again; taken too late (1 April for a 4 January return), it waits three months for nothing.
    /// </summary>
    private static DateOnly? Earlier(DateOnly? a, DateOnly? b) => a is null ? b : b is null ? a : a < b ? a : b;

    /// <param name="top">The text above any quoted original: the notice's own words, where its return date is.</param>
    private InboundClassification AutoReply(MessageView v, string reason, string top)
    {
        var (sent, behind, offset) = SentDate(v.Message);
        var text = v.Subject + "\n" + top;
        // Only dates written with a slash or a dash have an order to tell (dotted ones are day first everywhere): most
        // notices have neither, and their hints are not looked for.
        var order = text.AsSpan().ContainsAny('/', '-') ? DateOrder.MonthFirst(v, text) : false;
        var date = (order is { } monthFirst ? ReturnDates.Find(text, sent, monthFirst, behind) : Earlier(ReturnDates.Find(text, sent, true, behind), ReturnDates.Find(text, sent, false, behind)))
                   ?? AppleVacationEnd(v, sent);
        return new InboundClassification(InboundKind.AutoReply, reason)
        {
            ReturnDate = date, ReturnDateOffset = date is null ? null : offset, Departed = AutoReplyRules.SaysDeparted(v.Subject + "\n" + top),
        };
    }

    /// <summary>
    /// The last day of an iCloud vacation reply, from the header iCloud puts on it
    /// (<c>X-Apple-Criteria: {kind=VACATION,startDate=2019-11-30T15:00:00Z,endDate=2020-01-10T14:59:59Z}</c>), for a
    /// notice whose text gives no date ("I'm only sleeping."). The times are the owner's midnights in UTC: the start's
    /// time of day gives the owner's offset, and the end, moved by it, the owner's last day.
    /// </summary>
    private static DateOnly? AppleVacationEnd(MessageView v, DateOnly sent)
    {
        if (v.Header("X-Apple-Criteria") is not { } criteria || AppleCriteria().Match(criteria) is not { Success: true } m)
            return null;
        if (!DateTimeOffset.TryParse(m.Groups["end"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var end))
            return null;
        // No one is back by then (9999-12-31 is what a notice "until I turn it off" may say): no date, as for a year in
        // the text. Moved by the owner's offset, such an end could also pass the last instant there is.
        if (end.Year >= ReturnDates.NoReturnFromYear)
            return null;
        var offset = TimeSpan.Zero;
        var start = AppleCriteriaStart().Match(criteria);
        if (start.Success && DateTimeOffset.TryParse(start.Groups["start"].Value, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var begin))
        {
            // Local midnight at 15:00 UTC is UTC+9; at 08:00 UTC, UTC-8.
            offset = -begin.UtcDateTime.TimeOfDay;
            if (offset <= TimeSpan.FromHours(-12))
                offset += TimeSpan.FromDays(1);
        }
        var last = DateOnly.FromDateTime(end.UtcDateTime + offset);
        return last >= sent.AddDays(-1) ? last : null;
    }

    [GeneratedRegex(@"\bkind=VACATION\b.*?\bendDate=(?<end>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", RegexOptions.IgnoreCase)]
    private static partial Regex AppleCriteria();

    [GeneratedRegex(@"\bstartDate=(?<start>\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)", RegexOptions.IgnoreCase)]
    private static partial Regex AppleCriteriaStart();

    /// <summary>The notice's day by the clock of its Date, whether its writer may still be on the day before, and that clock's offset.</summary>
    private (DateOnly Day, bool WriterMayBeADayBehind, TimeSpan Offset) SentDate(MimeMessage message)
    {
        var date = message.Date;
        // A date far from today (unset, 1970, 9999) says nothing about when the notice was sent: today does.
        if (date == DateTimeOffset.MinValue || date.Year < 1990 || date.Year > 2200)
            date = time.GetUtcNow();
        return (DateOnly.FromDateTime(date.DateTime), ReturnDates.WriterMayBeADayBehind(date), date.Offset);
    }

    // ---------------------------------------------------------------- complaints

    private InboundClassification? Complaint(MessageView v)
    {
        if (v.FeedbackReports.Count > 0 || v.ReportType == "feedback-report")
        {
            var recipients = new List<string>();
            string? feedbackType = null;
            foreach (var report in v.FeedbackReports)
            {
                foreach (var field in report.Fields)
                {
                    switch (field.Field.ToLowerInvariant())
                    {
                        case "feedback-type":
                            feedbackType ??= field.Value?.Trim().ToLowerInvariant();
                            break;
                        case "original-rcpt-to":
                        case "removal-recipient":
                            if (DeliveryFields.AddressOf(field.Value) is { } address && !recipients.Contains(address))
                                recipients.Add(address);
                            break;
                    }
                }
            }
            if (recipients.Count == 0 && v.Original is not null)
                recipients.AddRange(v.Original.To.Mailboxes.Select(m => Addresses.Clean(m.Address)).Where(a => a.Contains('@')).Distinct());
            return ComplaintResult(v, recipients, feedbackType ?? "abuse",
                $"feedback report (ARF, multipart/report; report-type=feedback-report{(feedbackType is null ? "" : $", Feedback-Type: {feedbackType}")})");
        }

        // Hotmail/Outlook.com junk-mail reports (JMRP): the reported message attached, its recipient in a header.
        if (v.Original?.Headers["X-HmXmrOriginalRecipient"] is { Length: > 0 } hotmailRecipient)
            return ComplaintResult(v, [Addresses.Clean(hotmailRecipient)], "abuse", "Outlook.com junk-mail report (X-HmXmrOriginalRecipient in the attached message)");

        // Apple Mail's one-click unsubscribe: the person who unsubscribed is the sender.
        if (v.Header("X-Apple-Unsubscribe") is { } apple && apple.Trim().Equals("true", StringComparison.OrdinalIgnoreCase))
            return ComplaintResult(v, v.FromAddress.Length > 0 ? [v.FromAddress] : [], "opt-out", "Apple Mail unsubscribe request (X-Apple-Unsubscribe: true)");
        return null;
    }

    private InboundClassification ComplaintResult(MessageView v, List<string> recipients, string feedbackType, string reason)
    {
        var (_, originalText) = OriginalMessage.Split(v.Text);
        return new InboundClassification(InboundKind.Complaint, reason)
        {
            Recipients = recipients.Take(options.MaxRecipients).Select(a => new FailedRecipient(a, null, false, BounceCause.Complaint, null)).ToList(),
            OriginalMessageId = OriginalMessage.Normalize(v.Original?.MessageId) ?? OriginalMessage.MessageIdIn(originalText),
            FeedbackType = feedbackType,
        };
    }

    // ---------------------------------------------------------------- RFC 8098

    /// <summary>
    /// A read receipt: a message disposition notification (RFC 8098, and RFC 3798 and 2298 before it), which Outlook,
    /// Exchange, Thunderbird, Lotus Notes and others send as a <c>multipart/report; report-type=disposition-notification</c>
    /// when a recipient reads (or deletes unread) a message that asked for one. Its fields say which message
    /// (Original-Message-ID), whose mailbox (Final-Recipient) and what happened (Disposition: the action mode, how the
    /// receipt was sent, and the disposition type). Clients that set no Auto-Submitted on it would otherwise make it a
    /// person's reply: one that quotes our Message-ID in In-Reply-To (Thunderbird's) would then stop a sequence.
    /// </summary>
    private static InboundClassification? ReadReceipt(MessageView v)
    {
        if (v.DispositionNotifications.Count == 0 && v.ReportType != "disposition-notification")
            return null;
        string? finalRecipient = null, originalRecipient = null, disposition = null, originalId = null;
        foreach (var part in v.DispositionNotifications)
        {
            HeaderList fields;
            try
            {
                fields = part.Fields;
            }
            catch (FormatException)
            {
                // A body MimeKit cannot read as fields: still a read receipt, of an unknown disposition.
                continue;
            }
            foreach (var field in fields)
            {
                switch (field.Field.ToLowerInvariant())
                {
                    case "final-recipient":
                        finalRecipient ??= field.Value;
                        break;
                    case "original-recipient":
                        originalRecipient ??= field.Value;
                        break;
                    case "disposition":
                        disposition ??= field.Value;
                        break;
                    case "original-message-id":
                        originalId ??= OriginalMessage.Normalize(field.Value);
                        break;
                }
            }
        }

        var (mode, type) = ParseDisposition(disposition);
        var opened = type == "displayed" && mode == "manual-action";
        var address = DeliveryFields.AddressOf(finalRecipient) ?? DeliveryFields.AddressOf(originalRecipient)
                      ?? (v.FromAddress.Contains('@') ? v.FromAddress : null);
        var said = disposition is null ? null : MessageView.Clip(disposition.Trim(), 300);
        var reason = type switch
        {
            null => "read receipt (RFC 8098 disposition notification) without a readable Disposition field",
            "displayed" when opened => $"read receipt (RFC 8098 disposition notification): the reader's mail client displayed the message (Disposition: {said})",
            "displayed" => $"read receipt (RFC 8098 disposition notification): displayed by an automatic action, not by the reader (Disposition: {said})",
            "deleted" => $"read receipt (RFC 8098 disposition notification): deleted without being read (Disposition: {said})",
            _ => $"read receipt (RFC 8098 disposition notification): {type}, not displayed (Disposition: {said})",
        };
        return new InboundClassification(InboundKind.Receipt, reason)
        {
            Recipients = address is null ? [] : [new FailedRecipient(address, null, false, BounceCause.Delivered, said)],
            Disposition = type,
            Opened = opened,
            OriginalMessageId = originalId ?? OriginalMessage.Normalize(v.Original?.MessageId) ?? OriginalMessage.MessageIdIn(v.OriginalText),
        };
    }

    /// <summary>
    /// A read receipt written as plain text, without the report part: the subject a client gives it ("Read:", "Not
    /// read:", "Gelesen:", "Lu :", "Leído:", "Lido:", "Letto:", "Gelezen:", "Return Receipt"), and a short text, above
    /// no quoted original, that starts with "Your message" and says it was read or deleted unread, in the seven
    /// languages (the form Outlook and Exchange write). A person answering with such a subject writes something else
    /// first, or quotes the original.
    /// </summary>
    private static InboundClassification? PlainReadReceipt(MessageView v)
    {
        if (!ReceiptSubject().IsMatch(v.Subject))
            return null;
        var (top, quoted) = AutoReplyRules.SplitQuoted(v.Text);
        if (quoted)
            return null;
        var text = TextTools.Squeeze(top, 1200, lower: true);
        if (text.Length >= 1200 || !ReceiptYourMessage().IsMatch(text))
            return null;
        var deleted = ReceiptDeletedText().IsMatch(text);
        if (!deleted && !ReceiptReadText().IsMatch(text))
            return null;
        var address = v.FromAddress.Contains('@') ? v.FromAddress : null;
        return new InboundClassification(InboundKind.Receipt, deleted
            ? "read receipt in plain text (no report part): your message was deleted without being read"
            : "read receipt in plain text (no report part): the reader's mail client reports your message read")
        {
            Recipients = address is null ? [] : [new FailedRecipient(address, null, false, BounceCause.Delivered, null)],
            Disposition = deleted ? "deleted" : "displayed",
            Opened = !deleted,
            OriginalMessageId = OriginalMessage.Normalize(v.Original?.MessageId),
        };
    }

    [GeneratedRegex(@"^\s*(?:read|not read|gelesen|ungelesen|nicht gelesen|lu|non lu|le[íi]do|no le[íi]do|lido|n[ãa]o lido|letto|non letto|gelezen|niet gelezen)\s*:|" +
        @"^\s*(?:return receipt|read receipt|read report|lesebest[äa]tigung|accus[ée] de lecture|confirmaci[óo]n de lectura|confirma[çc][ãa]o de leitura|conferma di lettura|leesbevestiging)\b",
        RegexOptions.IgnoreCase)]
    private static partial Regex ReceiptSubject();

    [GeneratedRegex(@"^\W*(?:your message|ihre nachricht|votre message|su mensaje|(?:a )?sua mensagem|il (?:suo )?messaggio|uw bericht)\b")]
    private static partial Regex ReceiptYourMessage();

    [GeneratedRegex(@"\bwas read on\b|\bwas read at\b|\bhas been read\b|\bwas displayed\b|wurde am .{0,200}?gelesen|wurde gelesen|a [ée]t[ée] lu(?:e)? le\b|" +
        @"se ley[óo] el|fue le[íi]do|foi lid[ao] em|foi lid[ao]\b|[èe] stato letto|is gelezen op|werd gelezen")]
    private static partial Regex ReceiptReadText();

    [GeneratedRegex(@"deleted without being read|ungelesen gel[öo]scht|ohne gelesen zu werden gel[öo]scht|supprim[ée]e? sans avoir [ée]t[ée] lue?|" +
        @"(?:se elimin[óo]|eliminado) sin (?:ser )?le[íe]|exclu[íi]d[ao] sem ser lid[ao]|eliminat[oa] senza essere lett[oa]|verwijderd zonder (?:te zijn |dat het is )?gelezen")]
    private static partial Regex ReceiptDeletedText();

    /// <summary>
    /// The action mode and the disposition type of a Disposition field, lower case:
    /// <c>manual-action/MDN-sent-automatically; displayed</c> → (<c>manual-action</c>, <c>displayed</c>). RFC 2298's
    /// modifiers after the type (<c>displayed/error</c>) and RFC 8098's after a comma are dropped; comments are ignored.
    /// Either is null when the field does not give it.
    /// </summary>
    internal static (string? Mode, string? Type) ParseDisposition(string? field)
    {
        if (string.IsNullOrWhiteSpace(field))
            return (null, null);
        var value = StripComments(field);
        var semicolon = value.IndexOf(';');
        if (semicolon < 0)
            return (null, null);
        static string? Token(string s)
        {
            var t = s.Trim();
            var end = t.AsSpan().IndexOfAny("/,; \t");
            if (end >= 0)
                t = t[..end];
            return t.Length == 0 ? null : t.ToLowerInvariant();
        }
        return (Token(value[..semicolon]), Token(value[(semicolon + 1)..]));
    }

    /// <summary>A structured field's value without its (RFC 5322) comments, nested ones included.</summary>
    private static string StripComments(string value)
    {
        if (!value.Contains('('))
            return value;
        var sb = new StringBuilder(value.Length);
        var depth = 0;
        foreach (var c in value)
        {
            if (c == '(')
                depth++;
            else if (c == ')' && depth > 0)
                depth--;
            else if (depth == 0)
                sb.Append(c);
        }
        return sb.ToString();
    }

    // ---------------------------------------------------------------- RFC 3464

    private InboundClassification? DeliveryReport(MessageView v)
    {
        var fields = new List<RecipientFields>();
        string? perMessageId = null;
        foreach (var part in v.DeliveryStatuses)
        {
            fields.AddRange(DeliveryFields.FromPart(part, options.MaxRecipients));
            perMessageId ??= DeliveryFields.PerMessageField(part, "X-Original-Message-ID") ?? DeliveryFields.PerMessageField(part, "Original-Message-ID");
        }
        var source = "RFC 3464 delivery report (multipart/report; report-type=delivery-status)";
        if (fields.Count == 0)
        {
            // Delivery-status fields written as plain text (Amazon WorkMail, some gateways).
            if (!v.Text.AsSpan().ContainsAny(RecipientFieldWord))
                return null;
            fields = DeliveryFields.FromText(v.Text, options.MaxRecipients);
            if (fields.Count == 0)
                return null;
            source = "delivery-status fields in the text of a report";
            if (v.DeliveryStatuses.Count == 0 && !LooksLikeReportSender(v))
                return null;
        }

        // The human-readable part is read only when the fields leave something open (most reports need it not at all).
        (string Notice, string Original)? split = null;
        (string Notice, string Original) Split() => split ??= OriginalMessage.Split(v.Text);
        Dictionary<string, string>? blocks = null;
        Dictionary<string, string> Blocks() => blocks ??= TextBounce.FindRecipients(Split().Notice, Excluded(v, Split().Original), options.MaxRecipients)
            .ToDictionary(r => r.Address, r => r.Diagnostic);

        var failed = new List<FailedRecipient>();
        var delivered = 0;
        string? deliveredAction = null;
        var deliveredTo = new List<FailedRecipient>();
        foreach (var f in fields)
        {
            var address = DeliveryFields.AddressOf(f.FinalRecipient);
            // A final address without a domain ("@relay:user@server", "user@localhost") says less than the original one.
            if (address is null || !address[(address.IndexOf('@') + 1)..].Contains('.'))
                address = DeliveryFields.AddressOf(f.OriginalRecipient) ?? address;
            if (address is null)
                continue;
            var sentTo = DeliveryFields.AddressOf(f.OriginalRecipient) is { } original && original != address ? original : null;
            var action = (f.Action ?? "").Trim().ToLowerInvariant();
            var spaceOrParen = action.AsSpan().IndexOfAny(' ', '(', ';');
            if (spaceOrParen > 0)
                action = action[..spaceOrParen];
            var statusField = SmtpCodes.FieldStatus(f.Status);
            if (action is "delivered" or "relayed" or "expanded" || (statusField is not null && statusField[0] == '2' && action is not ("failed" or "delayed")))
            {
                delivered++;
                deliveredAction ??= action is "relayed" or "expanded" ? action : "delivered";
                if (deliveredTo.Count < options.MaxRecipients)
                    deliveredTo.Add(new FailedRecipient(address, statusField, false, BounceCause.Delivered, DeliveryFields.DiagnosticText(f.Diagnostic) is { Length: > 0 } said ? MessageView.Clip(said.Trim(), 2000) : null));
                continue;
            }
            var diagnostic = DeliveryFields.DiagnosticText(f.Diagnostic);
            var diagnosticFromText = string.IsNullOrWhiteSpace(diagnostic);
            if (diagnosticFromText)
                diagnostic = Blocks().GetValueOrDefault(address);
            var single = fields.Count == 1;
            var recipientAddress = address;
            // The human-readable part often says more than the fields (Postfix: "in reply to RCPT TO command").
            string? Context()
            {
                var block = diagnosticFromText ? null : Blocks().GetValueOrDefault(recipientAddress);
                return !string.IsNullOrWhiteSpace(block) ? block : single ? MessageView.Clip(Split().Notice, 3000) : null;
            }
            failed.Add(Recipient(address, statusField, diagnostic, action == "delayed", Context) with { SentTo = sentTo });
            if (failed.Count >= options.MaxRecipients)
                break;
        }

        if (failed.Count == 0 && delivered > 0)
        {
            return new InboundClassification(InboundKind.Receipt, $"delivery success notice ({source}, Action: {deliveredAction}) — not a failure and not a person")
            {
                Recipients = deliveredTo,
                Disposition = deliveredAction,
                OriginalMessageId = OriginalMessage.Normalize(v.Original?.MessageId) ?? OriginalMessage.Normalize(perMessageId) ?? OriginalMessage.MessageIdIn(v.OriginalText),
            };
        }
        if (failed.Count == 0)
            return null;
        return BounceResult(v, failed, source, OriginalMessage.Normalize(perMessageId), Split);
    }

    /// <summary>
    /// What every Final-Recipient or Original-Recipient field holds. A SearchValues rather than Contains with
    /// OrdinalIgnoreCase: with invariant globalization that Contains compares character by character, which on
    /// reports that are not RFC 3464 was most of the cost of looking for the fields.
    /// </summary>
    private static readonly SearchValues<string> RecipientFieldWord = SearchValues.Create(["-recipient"], StringComparison.OrdinalIgnoreCase);

    /// <param name="contextSource">The rest of the notice, consulted (and only then read) when the address's own lines hold no code or cause.</param>
    private static FailedRecipient Recipient(string address, string? statusField, string? diagnostic, bool delayed, Func<string?>? contextSource = null)
    {
        var diag = diagnostic is null ? null : MessageView.Clip(diagnostic.Trim(), 2000);
        string? context = null;
        var contextRead = contextSource is null;
        string? Context()
        {
            if (!contextRead)
            {
                context = contextSource!();
                contextRead = true;
            }
            return context;
        }
        var inText = SmtpCodes.FindStatus(diag, except: statusField) ?? (statusField is null ? SmtpCodes.FindStatus(Context()) : null);
        // The reply code only breaks a tie between a Status field and a code in the text of another class.
        var reply = statusField is not null && inText is not null && statusField[0] != inText[0]
            ? SmtpCodes.FindReplyCode(diag) ?? SmtpCodes.FindReplyCode(Context())
            : null;
        var status = SmtpCodes.Prefer(statusField, inText, reply);
        var cause = BounceCauses.Decide(status, diag, Context, delayed);
        if (status is null || (delayed && status[0] == '5' && statusField is null))
        {
            var temporary = delayed || BounceCauses.LooksTemporary(string.IsNullOrWhiteSpace(diag) ? Context() : diag);
            status = BounceCauses.InferredStatus(cause, temporary, !string.IsNullOrWhiteSpace(diag));
        }
        var permanent = BounceCauses.IsHard(cause, status, diag);
        return new FailedRecipient(address, status, permanent, cause, string.IsNullOrWhiteSpace(diag) ? null : TextTools.Squeeze(diag, 500, lower: false));
    }

    private static InboundClassification BounceResult(MessageView v, List<FailedRecipient> failed, string reason, string? perMessageId,
        Func<(string Notice, string Original)> split)
    {
        var messageId = OriginalMessage.Normalize(v.Original?.MessageId)
                        ?? perMessageId
                        ?? OriginalMessage.MessageIdIn(split().Original)
                        ?? OriginalMessage.MessageIdIn(v.OriginalText)
                        ?? OriginalMessage.MessageIdIn(split().Notice);
        return new InboundClassification(InboundKind.Bounce, reason)
        {
            Recipients = failed,
            Status = failed.Count > 0 ? failed[0].Status : null,
            Permanent = failed.Count > 0 ? failed[0].Permanent : null,
            OriginalMessageId = messageId,
        };
    }

    /// <summary>Addresses a report mentions that are not failed recipients: the report's own sender and addressee, the original's sender (by <see cref="Addresses.Key"/>).</summary>
    private static HashSet<string> Excluded(MessageView v, string originalText)
    {
        var set = new HashSet<string>(StringComparer.Ordinal);
        void Add(string? address)
        {
            if (!string.IsNullOrWhiteSpace(address))
                set.Add(Addresses.Key(Addresses.Clean(address)));
        }
        Add(v.FromAddress);
        Add(v.ToAddress);
        if (v.Original is { } original)
        {
            foreach (var m in original.From.Mailboxes.Concat(original.Sender is null ? [] : [original.Sender]).Concat(original.ReplyTo.Mailboxes))
                Add(m.Address);
            Add(OriginalMessage.Normalize(original.Headers[HeaderId.ReturnPath]));
        }
        else if (OriginalFrom().Match(originalText) is { Success: true } from && from.Groups["value"].Value is var value && Addresses.Email(value).Match(value) is { Success: true } address)
        {
            Add(address.Value);
        }
        return set;
    }

    // ---------------------------------------------------------------- Amazon SES (SNS notifications as JSON)

    private InboundClassification? AmazonSes(MessageView v)
    {
        // Sent by Amazon SNS (or SES itself); JSON in a person's mail is just text.
        if (!v.FromAddress.EndsWith("amazonaws.com", StringComparison.Ordinal) && !v.FromAddress.EndsWith("amazonses.com", StringComparison.Ordinal))
            return null;
        var text = v.Text.TrimStart();
        if (!text.StartsWith('{') || !text.Contains("notificationType", StringComparison.Ordinal))
            return null;
        // SNS wraps lines longer than 998 characters as "!" + line break + space; undo that before parsing.
        text = SnsLineWrap().Replace(text, "");
        var end = EndOfJsonObject(text);
        if (end < 0)
            return null;
        JsonDocument doc;
        try
        {
            doc = JsonDocument.Parse(text[..(end + 1)], new JsonDocumentOptions { MaxDepth = 16 });
        }
        catch (JsonException)
        {
            return null;
        }
        // An SNS envelope ({"Type":"Notification","Message":"{…}"}) carries the SES notification as a string.
        if (doc.RootElement.ValueKind == JsonValueKind.Object && !doc.RootElement.TryGetProperty("notificationType", out _)
            && doc.RootElement.TryGetProperty("Message", out var inner) && inner.ValueKind == JsonValueKind.String)
        {
            var innerText = inner.GetString() ?? "";
            doc.Dispose();
            try
            {
                doc = JsonDocument.Parse(innerText, new JsonDocumentOptions { MaxDepth = 16 });
            }
            catch (JsonException)
            {
                return null;
            }
        }
        using (doc)
        {
            var root = doc.RootElement;
            if (root.ValueKind != JsonValueKind.Object || !root.TryGetProperty("notificationType", out var typeElement))
                return null;
            var type = typeElement.GetString() ?? "";
            string? messageId = null;
            if (root.TryGetProperty("mail", out var mail) && mail.ValueKind == JsonValueKind.Object &&
                mail.TryGetProperty("headers", out var headers) && headers.ValueKind == JsonValueKind.Array)
            {
                foreach (var h in headers.EnumerateArray())
                {
                    if (h.ValueKind == JsonValueKind.Object && h.TryGetProperty("name", out var n) && string.Equals(n.GetString(), "Message-ID", StringComparison.OrdinalIgnoreCase)
                        && h.TryGetProperty("value", out var value))
                        messageId = OriginalMessage.Normalize(value.GetString());
                }
            }
            switch (type)
            {
                case "Bounce" when root.TryGetProperty("bounce", out var bounce) && bounce.ValueKind == JsonValueKind.Object:
                    var failed = new List<FailedRecipient>();
                    var transient = bounce.TryGetProperty("bounceType", out var bt) && bt.GetString() == "Transient";
                    if (bounce.TryGetProperty("bouncedRecipients", out var list) && list.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var r in list.EnumerateArray().Take(options.MaxRecipients))
                        {
                            if (r.ValueKind != JsonValueKind.Object || !r.TryGetProperty("emailAddress", out var a) || DeliveryFields.AddressOf(a.GetString()) is not { } address)
                                continue;
                            var status = r.TryGetProperty("status", out var s) ? SmtpCodes.FindStatus(s.GetString()) : null;
                            var diagnostic = r.TryGetProperty("diagnosticCode", out var d) ? DeliveryFields.DiagnosticText(d.GetString()) : null;
                            failed.Add(Recipient(address, status, diagnostic, transient));
                        }
                    }
                    return BounceResult(v, failed, "Amazon SES bounce notification (notificationType: Bounce)", messageId, () => ("", ""));
                case "Complaint" when root.TryGetProperty("complaint", out var complaint) && complaint.ValueKind == JsonValueKind.Object:
                    var recipients = new List<FailedRecipient>();
                    if (complaint.TryGetProperty("complainedRecipients", out var complained) && complained.ValueKind == JsonValueKind.Array)
                    {
                        foreach (var r in complained.EnumerateArray().Take(options.MaxRecipients))
                        {
                            if (r.ValueKind == JsonValueKind.Object && r.TryGetProperty("emailAddress", out var a) && DeliveryFields.AddressOf(a.GetString()) is { } address)
                                recipients.Add(new FailedRecipient(address, null, false, BounceCause.Complaint, null));
                        }
                    }
                    var feedbackType = complaint.TryGetProperty("complaintFeedbackType", out var ft) ? ft.GetString() : null;
                    return new InboundClassification(InboundKind.Complaint, "Amazon SES complaint notification (notificationType: Complaint)")
                    {
                        Recipients = recipients,
                        OriginalMessageId = messageId,
                        FeedbackType = feedbackType ?? "abuse",
                    };
                case "Delivery":
                    var delivered = new List<FailedRecipient>();
                    if (root.TryGetProperty("delivery", out var delivery) && delivery.ValueKind == JsonValueKind.Object)
                    {
                        var response = delivery.TryGetProperty("smtpResponse", out var sr) && sr.ValueKind == JsonValueKind.String ? sr.GetString() : null;
                        // One SMTP answer for the whole delivery: read once, given to each recipient.
                        var status = SmtpCodes.FindStatus(response);
                        var said = response is null ? null : MessageView.Clip(response, 2000);
                        if (delivery.TryGetProperty("recipients", out var to) && to.ValueKind == JsonValueKind.Array)
                        {
                            foreach (var r in to.EnumerateArray().Take(options.MaxRecipients))
                            {
                                if (r.ValueKind == JsonValueKind.String && DeliveryFields.AddressOf(r.GetString()) is { } address)
                                    delivered.Add(new FailedRecipient(address, status, false, BounceCause.Delivered, said));
                            }
                        }
                    }
                    return new InboundClassification(InboundKind.Receipt, "Amazon SES delivery notification (notificationType: Delivery) — not a failure and not a person")
                    {
                        Recipients = delivered,
                        Disposition = "delivered",
                        OriginalMessageId = messageId,
                    };
                default:
                    return null;
            }
        }
    }

    /// <summary>Index of the brace that closes the JSON object the text starts with, or -1.</summary>
    private static int EndOfJsonObject(string text)
    {
        var depth = 0;
        var inString = false;
        for (var i = 0; i < text.Length; i++)
        {
            var c = text[i];
            if (inString)
            {
                if (c == '\\')
                    i++;
                else if (c == '"')
                    inString = false;
                continue;
            }
            if (c == '"')
                inString = true;
            else if (c == '{')
                depth++;
            else if (c == '}' && --depth == 0)
                return i;
        }
        return -1;
    }

    [GeneratedRegex(@"!\r?\n ")]
    private static partial Regex SnsLineWrap();

    // ---------------------------------------------------------------- non-standard text reports

    private InboundClassification? TextReport(MessageView v, int depth)
    {
        var failedHeader = v.Header("X-Failed-Recipients");
        // Every way into a report needs one of these; a person's reply has none, so it costs no text scanning.
        if (failedHeader is null && v.DeliveryStatuses.Count == 0 && v.ReportType != "delivery-status"
            && !IsSystemSender(v) && !IsNullSender(v) && !IsBounceSubject(v.Subject))
            return null;
        var (notice, originalText) = OriginalMessage.Split(v.Text);
        var head = notice.Length > 8000 ? notice[..8000] : notice;
        var why = WhyTextReport(v, head, failedHeader);
        if (why is null)
            return null;

        var exclude = Excluded(v, originalText);
        var found = TextBounce.FindRecipients(notice, exclude, options.MaxRecipients);
        if (found.Count == 0)
        {
            // Some reports go to the very address that failed (a test, or a sender writing to herself): look again
            // without leaving anyone out, but only take an address that stands alone as failed.
            found = TextBounce.FindRecipients(notice, new HashSet<string>(), options.MaxRecipients)
                .Where(r => r.Strength >= TextBounce.StandaloneStrength).ToList();
        }
        var failed = new List<FailedRecipient>();
        var noticeDiagnostic = MessageView.Clip(notice.Trim(), 3000);

        // The address's own lines explain it; when they do not (Gmail, Domino, MailMarshal put the explanation above or
        // below the address), the notice as a whole does, as long as it is about this one address only.
        FailedRecipient Make(string address, string? block, int count)
        {
            var hasBlock = !string.IsNullOrWhiteSpace(block);
            return Recipient(address, null, hasBlock ? block : noticeDiagnostic, delayed: false, hasBlock && count == 1 ? () => noticeDiagnostic : null);
        }

        if (failedHeader is not null && (found.Count == 0 || found[0].Strength < TextBounce.StandaloneStrength))
        {
            var blocks = found.ToDictionary(r => r.Address, r => r.Diagnostic);
            foreach (Match m in Addresses.Email(failedHeader).Matches(failedHeader))
            {
                var address = Addresses.Clean(m.Value);
                if (failed.Any(f => Addresses.Key(f.Address) == Addresses.Key(address)) || failed.Count >= options.MaxRecipients)
                    continue;
                blocks.TryGetValue(address, out var block);
                failed.Add(Make(address, block, Math.Max(1, blocks.Count)));
            }
        }
        if (failed.Count == 0)
        {
            foreach (var r in found)
                failed.Add(Make(r.Address, r.Diagnostic, found.Count));
        }
        if (failed.Count == 0 && v.Original is { } inner && depth < 2 && LooksLikeReport(inner))
        {
            // A gateway that wraps the report it received in one of its own (Trend Micro in front of Sendmail).
            var nested = Classify(inner, depth + 1);
            if (nested.Kind == InboundKind.Bounce && nested.Recipients.Count > 0)
                return nested with { Reason = why + "; the failure is in the report it carries: " + nested.Reason };
        }
        if (failed.Count == 0)
        {
            // Nothing names the address (Verizon's MMS gateway, old Sendmail): the original's only addressee is the one.
            var to = v.Original is { } original
                ? original.To.Mailboxes.Concat(original.Cc.Mailboxes).Select(m => Addresses.Clean(m.Address)).Where(a => a.Contains('@')).Distinct().ToList()
                : OriginalMessage.ToAddressesIn(originalText);
            to.RemoveAll(a => exclude.Contains(Addresses.Key(a)));
            if (to.Count == 1)
                failed.Add(Recipient(to[0], null, noticeDiagnostic, delayed: false));
        }
        return BounceResult(v, failed, why, null, () => (notice, originalText));
    }

    /// <summary>Why the message is a report in a non-standard format, or null when it is not one.</summary>
    private static string? WhyTextReport(MessageView v, string head, string? failedHeader)
    {
        if (failedHeader is not null)
            return "delivery failure report (X-Failed-Recipients header)";
        if (v.DeliveryStatuses.Count > 0 || v.ReportType == "delivery-status")
            return "delivery failure report (multipart/report; report-type=delivery-status)";
        if (AutoSubjectPrefix().IsMatch(v.Subject))
            return null;
        var system = IsSystemSender(v);
        var subject = IsBounceSubject(v.Subject);
        // The text's patterns are tried only when a rule gets to them: a system sender's report mostly ends at the first.
        Match? strongMatch = null;
        Match Strong() => strongMatch ??= FirstStrongReportText(head);
        bool? weakMatch = null;
        bool Weak() => weakMatch ??= WeakReportText().IsMatch(head);
        if (system && Strong() is { Success: true } strong)
            return $"delivery failure report from {SenderLabel(v)} (\"{strong.Value.Trim()}\")";
        if (system && subject)
            return $"delivery failure report from {SenderLabel(v)} (subject \"{MessageView.Clip(v.Subject, 80)}\")";
        // A postmaster answering a person ("Re: delays delivering to litwareinc.com … Hello Jordan, … so nothing bounced")
        // from a mail client, or greeting them by name. A reply's subject alone does not tell: Verizon's gateway answers
        // "Re:Nyaan" with its report.
        var answer = AnswerPrefix().IsMatch(v.Subject);
        if (system && !(answer && (v.HasHeader("User-Agent") || AutoReplyRules.NamesTheSender(v, head))) && Weak())
            return $"delivery failure report from {SenderLabel(v)}";
        if (IsNullSender(v) && Strong() is { Success: true } strongNull)
            return $"delivery failure report with a null Return-Path (\"{strongNull.Value.Trim()}\")";
        if (IsNullSender(v) && subject && Weak())
            return $"delivery failure report with a null Return-Path (subject \"{MessageView.Clip(v.Subject, 80)}\")";
        // A no-reply sender is a machine too, though not a mail server (KDDI's au one net).
        if (v.FromLocalPart is "no-reply" or "noreply" or "do-not-reply" or "donotreply" && subject && Strong() is { Success: true } strongNoReply)
            return $"delivery failure report from {SenderLabel(v)} (subject \"{MessageView.Clip(v.Subject, 80)}\", \"{strongNoReply.Value.Trim()}\")";
        // From a person: only a report forwarded whole, with a mail server's subject and its template sentences, so that
        // "Re: Delivery failed — the parcel could not be delivered to our office" stays a person's reply.
        // A person's answer to a report that was forwarded to them ("Re: Fwd: Returned mail: …", the report quoted below)
        // is their reply, not the report: its failed address is no news of this message.
        if (!answer && ReportSubject().IsMatch(v.Subject) && ReportTemplate().Match(head) is { Success: true } template)
            return $"forwarded delivery failure report (subject \"{MessageView.Clip(v.Subject, 80)}\", \"{template.Value.Trim()}\")";
        return null;
    }

    /// <summary>
    /// The first match of <see cref="StrongReportText"/>, as its own scan would find it. In ASCII text the pattern is
    /// tried only where one of <see cref="StrongReportStarts"/> begins, since every match begins with one of them: the
    /// pattern's own scan tries nearly every position of a long notice, its branches having no common start. Other
    /// text goes to the pattern's scan, whose case rules reach beyond ASCII.
    /// </summary>
    private static Match FirstStrongReportText(string head)
    {
        if (!Ascii.IsValid(head))
            return StrongReportText().Match(head);
        var span = head.AsSpan();
        var at = span.IndexOfAny(StrongReportStarts);
        while (at >= 0)
        {
            if (StrongReportTextAt().Match(head, at) is { Success: true } match)
                return match;
            var next = span[(at + 1)..].IndexOfAny(StrongReportStarts);
            at = next < 0 ? -1 : at + 1 + next;
        }
        return Match.Empty;
    }

    /// <summary>
    /// Words with which every match of <see cref="StrongReportText"/> begins (ASCII case aside): each branch of the
    /// pattern starts with one of them verbatim. Keep them in step with the pattern.
    /// </summary>
    private static readonly SearchValues<string> StrongReportStarts = SearchValues.Create(
        ["this message was created", "this is the ", "wasn't able to deliver", "the following ", "---", "delivery ", "did not reach the following",
         "could not ", "unable to deliver", "your message ", "your mail ", "message ", "the original message was received", "there was an error delivering",
         "an error occurred while trying", "was not delivered to", "failed permanently", "recipient", "automatic bounce notification",
         "email you sent was rejected", "mail delivery failed", "undeliverable ", "i'm sorry to ", "non-delivery report", "permanent error"],
        StringComparison.OrdinalIgnoreCase);

    private static string SenderLabel(MessageView v) => v.FromAddress.Length > 0 ? v.FromAddress : v.FromName.Length > 0 ? v.FromName : "the mail system";

    private static bool IsSystemSender(MessageView v) =>
        Addresses.IsSystemMailbox(v.FromLocalPart) || IsSystemSenderName(v.FromName)
        || Addresses.IsListManager(v.FromLocalPart, v.Message.Headers)
        || (v.FromAddress.Length == 0 && (IsNullSender(v) || IsSystemSenderName(v.Header("From") ?? "")));

    private static bool IsNullSender(MessageView v) => v.Header("Return-Path") is { } rp && rp.Replace(" ", "") is "<>" or "";

    private static bool LooksLikeReport(MimeMessage message)
    {
        var from = message.From.Mailboxes.FirstOrDefault();
        var local = (from?.Address ?? "").Split('@')[0].ToLowerInvariant();
        return Addresses.IsSystemMailbox(local) || Addresses.IsListManager(local, message.Headers) || message.Body is MultipartReport
               || IsSystemSenderName(from?.Name ?? "") || IsBounceSubject(message.Subject ?? "");
    }

    private static bool LooksLikeReportSender(MessageView v) => IsSystemSender(v) || IsNullSender(v) || IsBounceSubject(v.Subject);

    private static bool IsBounceSubject(string subject) => MayMatch(subject, BounceSubjectWords) && BounceSubject().IsMatch(subject);

    private static bool IsSystemSenderName(string name) => MayMatch(name, SystemSenderWords) && SystemSenderName().IsMatch(name);

    /// <summary>
    /// Whether a case-insensitive pattern can match the text: ASCII text only when it holds one of the pattern's words
    /// (on ASCII, ordinal ignore-case is the pattern's own case-insensitivity). Other text always goes to the pattern,
    /// whose case rules reach beyond ASCII and which has words that are not ASCII. Every human reply's subject and
    /// sender name are tested, and a pattern costs several times the search for its words.
    /// </summary>
    private static bool MayMatch(string text, SearchValues<string> words) => !Ascii.IsValid(text) || text.AsSpan().ContainsAny(words);

    /// <summary>Words one of which every match of <see cref="BounceSubject"/> in ASCII text holds. Keep them in step with the pattern.</summary>
    private static readonly SearchValues<string> BounceSubjectWords = SearchValues.Create(
        ["deliver", "fail", "return", "error", "could not", "bounce", "zustellbar", "non remis", "non distribu", "entreg", "recapitabile", "onbestelbaar",
         "bezorgd", "reject", "loop", "duplicate"], StringComparison.OrdinalIgnoreCase);

    /// <summary>Words one of which every match of <see cref="SystemSenderName"/> holds. Keep them in step with the pattern.</summary>
    private static readonly SearchValues<string> SystemSenderWords = SearchValues.Create(["mail", "postmaster", "delivery", "ndr administrator"], StringComparison.OrdinalIgnoreCase);

    [GeneratedRegex(@"^[ \t>]*(?:From|Return-Path|Sender)[ \t]*:[ \t]*(?<value>[^\n]*)", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex OriginalFrom();

    [GeneratedRegex(@"^\s*(?:automatic reply|auto(?:matic)?[- ]?(?:reply|response)|autoreply|out of (?:the )?office|abwesenheitsnotiz|automatische antwort|r[ée]ponse automatique|" +
        @"respuesta autom[áa]tica|resposta autom[áa]tica|risposta automatica|automatisch antwoord)\b", RegexOptions.IgnoreCase)]
    private static partial Regex AutoSubjectPrefix();

    [GeneratedRegex(@"mail delivery|mailer-daemon|mailer daemon|postmaster|delivery (?:system|subsystem|status)|mail administrator|mail system|ndr administrator|internet mail service|mail delivery software", RegexOptions.IgnoreCase)]
    private static partial Regex SystemSenderName();

    [GeneratedRegex(@"undeliver|non[- ]?deliver|not (?:be )?delivered|delivery (?:status|failure|failed|has failed|problem|report|notification|error|incomplete)|" +
        @"mail delivery failed|failure notice|returned mail|return(?:ed)? to sender|mail system error|could not (?:be )?(?:deliver|sent)|delivery failure|mail failure|" +
        @"bounce|message delivery has failed|warning: could not send|unzustellbar|nicht zustellbar|non remis|non distribu|no entregado|no se pudo entregar|" +
        @"n[ãa]o (?:foi )?entregue|non recapitabile|onbestelbaar|niet bezorgd|mail error|error notification|\bfailed\b|failure|rejected|returned|\bloop\b|duplicate|" +
        @"メールエラー|エラー|未達|配信", RegexOptions.IgnoreCase)]
    private static partial Regex BounceSubject();

    // An answer's subject prefix in the languages mail clients write it ("Re:", "AW:", "SV:", "Vs:", "R:", "RIF:", "Odp:",
    // "YNT:", "回复:"), not a forward's.
    [GeneratedRegex(@"^\s*(?:re|aw|antw|sv|vs|r|rif|res|odp|ynt|答复|回复|回覆)\s*(?:\[\d+\])?\s*[:：]", RegexOptions.IgnoreCase)]
    private static partial Regex AnswerPrefix();

    // Subjects mail servers give their failure notices (not words a person might use in a subject).
    [GeneratedRegex(@"undelivered mail returned to sender|returned mail:|mail delivery failed|delivery status notification|^\W*(?:fwd?|wg|tr|rv|i)?\W*undeliverable|" +
        @"failure notice|non[- ]?delivery (?:report|notification)|mail system error|message delivery has failed|warning: could not send message|" +
        @"^\W*(?:fwd?|wg|tr|rv|i)?\W*unzustellbar|nicht zustellbar:|non remis|delivery notification: delivery has failed", RegexOptions.IgnoreCase)]
    private static partial Regex ReportSubject();

    // Sentences only mail servers write, word for word.
    [GeneratedRegex(@"this message was created automatically by mail delivery software|this is the qmail-send program|wasn't able to deliver your message to the following|" +
        @"the following addresses had (?:permanent fatal errors|transient non-fatal errors)|-{3,}\s*transcript of session follows|" +
        @"delivery to the following recipients? failed permanently|delivery has failed to these recipients or groups|did not reach the following recipient|" +
        @"this is the postfix program|this is the mail system at host|the original message was received at|there was an error delivering your mail to|" +
        @"an error occurred while trying to deliver the mail to the following recipients|technical details of permanent failure|" +
        @"your message did not reach some or all of the intended recipients|automatic bounce notification", RegexOptions.IgnoreCase)]
    private static partial Regex ReportTemplate();

    // Template sentences of mail servers' failure notices.
    private const string StrongReportTextPattern = @"this message was created automatically by mail delivery software|this is the qmail-send program|wasn't able to deliver your message|" +
        @"the following addresses had (?:permanent fatal errors|delivery problems|delivery errors|transient non-fatal errors)|-{3,}\s*transcript of session follows|" +
        @"delivery to the following recipients? (?:failed|was delayed|has been delayed)|delivery has failed to these recipients|did not reach the following recipient|" +
        @"this is the postfix program|this is the mail system at host|could not be delivered to one or more|unable to deliver (?:your )?message to|" +
        @"your message (?:could not|cannot|was not|wasn't|has not been) (?:be )?delivered|message (?:could not|cannot) be delivered|the original message was received at|" +
        @"there was an error delivering your mail|an error occurred while trying to deliver|was not delivered to|failed permanently|" +
        @"delivery to .{1,80} failed|could not deliver (?:the )?(?:message|mail)|message delivery has failed|the following recipients? (?:was|were) (?:rejected|undeliverable)|" +
        @"recipients? (?:was|were) rejected by|automatic bounce notification|email you sent was rejected|could not be delivered to|your mail (?:message )?to the following address|" +
        @"delivery of (?:your|the) (?:message|mail) (?:to .{1,80} )?(?:has )?failed|mail delivery failed|undeliverable (?:mail|message)|" +
        @"the following message to .{1,80} was undeliverable|i'm sorry to (?:have to )?inform you|non-delivery report|unable to deliver|delivery failure|" +
        @"your message did not reach|permanent error|message not delivered|could not be sent to";

    [GeneratedRegex(StrongReportTextPattern, RegexOptions.IgnoreCase)]
    private static partial Regex StrongReportText();

    /// <summary><see cref="StrongReportText"/> tried at the start position given to Match only.</summary>
    [GeneratedRegex(@"\G(?:" + StrongReportTextPattern + ")", RegexOptions.IgnoreCase)]
    private static partial Regex StrongReportTextAt();

    [GeneratedRegex(@"deliver|recipient|rejected|undeliverable|unknown user|user unknown|mailbox|failed|failure|error|returned|bounce|not (?:a )?member|loop|" +
        @"配信|送信できません|エラー", RegexOptions.IgnoreCase)]
    private static partial Regex WeakReportText();
}
