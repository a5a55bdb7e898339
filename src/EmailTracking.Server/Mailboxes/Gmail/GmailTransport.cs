using System.Globalization;
using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Replies;
using Google;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Mailboxes.Gmail;

/// <summary>
/// Sends tracked copies through the Gmail API (users.messages.send, raw MIME; through the media upload URI when
/// larger than <see cref="GmailOptions.MaxSimpleSendBytes"/>), then reads back the Message-ID Gmail
/// actually kept and the thread it put the mail in: Gmail is reported to replace a client's Message-ID on this path,
/// and answers quote the one the recipient received. Gmail stores the copy in Sent by itself. Each copy carries its
/// pixel token in the <see cref="SentMailScanner.TokenHeader"/> header, by which it is found in Sent whatever its
/// Message-ID became.
/// </summary>
public sealed class GmailTransport(AppDbContext db, MailboxSecrets secrets, GmailAuth auth, IOptions<GmailOptions> options, TimeProvider clock,
    ILogger<GmailTransport> log) : IMailTransport
{
    /// <summary>How many sent mails a look for one copy reads at most before it says it cannot tell.</summary>
    const int MaxSentExamined = 500;

    public async Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct)
    {
        var o = options.Value;
        if (!o.IsConfigured) throw new MailboxException("Gmail is not configured on this server (Mailboxes:Gmail:ClientId and ClientSecret).", needsReconnect: false);
        var secret = secrets.Unprotect<GmailSecret>(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored Gmail access can no longer be read (the server's keys changed). Connect Gmail again.", needsReconnect: true);
        using var client = auth.CreateClient(mailbox.Id, secret);
        var ids = copies.Select(c => c.CopyId).ToList();
        var tokens = await db.Copies.Where(c => ids.Contains(c.Id)).ToDictionaryAsync(c => c.Id, c => c.PixelToken, ct);
        var results = new List<CopySendResult>();
        string? fatal = null;
        string? warning = null;
        foreach (var copy in copies)
        {
            if (fatal is not null)
            {
                results.Add(new CopySendResult(copy.CopyId, false, fatal));
                continue;
            }
            GmailMessage sent;
            try
            {
                var bytes = Serialize(AddressedToEnvelope(copy, tokens.GetValueOrDefault(copy.CopyId)));
                // Large mail (attachments) goes through the upload URI; the rest as raw in the JSON body.
                var upload = bytes.Length > o.MaxSimpleSendBytes;
                var raw = upload ? null : Base64Url.Encode(bytes);
                Task<GmailMessage> Send(string? thread, CancellationToken c) => upload
                    ? client.UploadAndSendAsync(bytes, thread, c)
                    : client.SendMessage(new GmailMessage { Raw = raw, ThreadId = thread }).ExecuteAsync(c);
                // Not repeated on errors after which the mail may have left: a copy sent twice is worse than one reported failed.
                // Gmail files the mail in a thread only when the send names it (References alone start a new conversation).
                try
                {
                    sent = await GmailCalls.RunAsync(c => Send(copy.ThreadId, c), o, clock, ct, idempotent: false);
                }
                catch (GoogleApiException ex) when (copy.ThreadId is not null && ex.HttpStatusCode is HttpStatusCode.BadRequest or HttpStatusCode.NotFound)
                {
                    // The thread is gone (the user deleted the conversation for good): Gmail refused the send, so nothing
                    // left, and the mail goes as a conversation of its own rather than not at all.
                    log.LogInformation("Gmail {Address} refused thread {Thread} ({Problem}); sending the copy in a new thread", mailbox.Address, copy.ThreadId,
                        ex.Error?.Message ?? ex.Message);
                    sent = await GmailCalls.RunAsync(c => Send(null, c), o, clock, ct, idempotent: false);
                }
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var problem = GmailCalls.Translate(ex, mailbox.Address, ct);
                if (problem is MailboxException { NeedsReconnect: true } whole)
                {
                    // Nothing left yet: the caller reports the mailbox as a whole. Otherwise the rest cannot go either.
                    if (results.Count == 0) throw whole;
                    fatal = whole.Message;
                }
                if (problem is not MailboxException) log.LogError(ex, "Sending through Gmail {Address} failed", mailbox.Address);
                else log.LogWarning("Sending a copy through Gmail {Address} failed: {Problem}", mailbox.Address, problem.Message);
                // Throttling (a 429, or the 403 Gmail answers for its usage limits), Google's own errors, the network, or
                // no answer in time: worth another try later. Throttling and a 503 say Google did not take the request;
                // after the others the send request was made, so Gmail may have sent the mail all the same.
                var temporary = GmailCalls.IsRateLimit(ex) || ex is GoogleApiException { HttpStatusCode: >= HttpStatusCode.InternalServerError }
                    or HttpRequestException or System.Net.Sockets.SocketException or IOException or TimeoutException or OperationCanceledException;
                var notTaken = GmailCalls.IsRateLimit(ex) || ex is GoogleApiException { HttpStatusCode: HttpStatusCode.ServiceUnavailable };
                results.Add(new CopySendResult(copy.CopyId, false, problem.Message, Temporary: temporary, MayHaveLeft: temporary && !notTaken));
                continue;
            }

            string? kept = null;
            try
            {
                var meta = await GmailCalls.RunAsync(c =>
                {
                    var get = client.GetMessage(sent.Id!, GmailClient.MessageFormat.Metadata);
                    get.MetadataHeaders = new[] { "Message-ID" };
                    return get.ExecuteAsync(c);
                }, o, clock, ct);
                kept = meta.Header("Message-ID");
                sent.ThreadId ??= meta.ThreadId;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // The mail left. The watch meets it in Sent and records its Message-ID then.
                log.LogWarning(ex, "Could not read back the Message-ID of Gmail message {Id}", sent.Id);
                warning = "Gmail sent the mail, but the Message-ID it kept could not be read yet; it is picked up from the Sent folder shortly.";
            }
            results.Add(new CopySendResult(copy.CopyId, true, null, kept ?? copy.Message.MessageId, sent.ThreadId));
        }
        return new TransportResult(results, warning);
    }

    /// <summary>
    /// Gmail keeps what it sent: a search for the Message-ID (Gmail's rfc822msgid: operator) in sent mail, and, as Gmail
    /// gives mail sent through its API a Message-ID of its own, the sent mail since the copy was registered, by the
    /// token header each copy carries. Null when there is more sent mail than a look reads.
    /// </summary>
    public async Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct) =>
        (await FindInSentAsync(mailbox, [new SentQuery(messageId, pixelToken)], ct))[0].Left;

    /// <summary>As <see cref="IsInSentAsync"/> for each copy, with the Message-ID Gmail kept and its thread, as a send reads them back.</summary>
    public async Task<IReadOnlyList<SentLookup>> FindInSentAsync(MailboxConnection mailbox, IReadOnlyList<SentQuery> copies, CancellationToken ct)
    {
        var o = options.Value;
        if (!o.IsConfigured) return [.. copies.Select(_ => new SentLookup(null, Why: "Gmail is not configured on this server, so its Sent folder cannot be asked."))];
        var secret = secrets.Unprotect<GmailSecret>(mailbox.ProtectedSecret)
            ?? throw new MailboxException("The stored Gmail access can no longer be read (the server's keys changed). Connect Gmail again.", needsReconnect: true);
        using var client = auth.CreateClient(mailbox.Id, secret);
        try
        {
            var found = new SentLookup?[copies.Count];
            // Not found by our Message-ID: looked for by token, all of them in one read of the sent mail.
            var byToken = new Dictionary<string, int>(StringComparer.Ordinal);
            for (var i = 0; i < copies.Count; i++)
            {
                found[i] = await ByMessageIdAsync(client, copies[i].MessageId.Trim('<', '>'), ct);
                if (found[i] is null) byToken[copies[i].PixelToken] = i;
            }
            if (byToken.Count > 0) await ByTokenAsync(client, byToken, found, ct);
            return [.. found.Select(f => f!)];
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw GmailCalls.Translate(ex, mailbox.Address, ct);
        }
    }

    /// <summary>The copy in sent mail by our Message-ID (Gmail's rfc822msgid: operator), when Gmail kept it; else null.</summary>
    async Task<SentLookup?> ByMessageIdAsync(GmailClient client, string messageId, CancellationToken ct)
    {
        var page = await GmailCalls.RunAsync(c =>
        {
            var list = client.ListMessages();
            list.Q = $"in:sent rfc822msgid:{messageId}";
            list.MaxResults = 1;
            return list.ExecuteAsync(c);
        }, options.Value, clock, ct);
        return page.Messages is [var byId, ..] ? new SentLookup(true, messageId, byId.ThreadId) : null;
    }

    /// <summary>
    /// The copies (by pixel token, each with its place in <paramref name="found"/>) among the mail sent since the
    /// earliest of them was registered, read once by the token header each copy carries, as Gmail gives mail sent
    /// through its API a Message-ID of its own. Each copy is answered in <paramref name="found"/>.
    /// </summary>
    async Task ByTokenAsync(GmailClient client, Dictionary<string, int> byToken, SentLookup?[] found, CancellationToken ct)
    {
        var o = options.Value;
        var tokens = byToken.Keys.ToList();
        var registered = await db.Copies.Where(c => tokens.Contains(c.PixelToken)).Select(c => c.TrackedMessage!.CreatedAt).ToListAsync(ct);
        // A copy this server does not know (it is gone) has no mail to look for.
        if (registered.Count == 0)
        {
            foreach (var i in byToken.Values) found[i] = new SentLookup(false);
            return;
        }
        // An hour's leeway for clocks.
        var after = string.Create(CultureInfo.InvariantCulture, $"in:sent after:{registered.Min().AddHours(-1).ToUnixTimeSeconds()}");
        var examined = 0;
        string? pageToken = null;
        do
        {
            var sent = await GmailCalls.RunAsync(c =>
            {
                var list = client.ListMessages();
                list.Q = after;
                list.MaxResults = o.PageSize;
                list.PageToken = pageToken;
                return list.ExecuteAsync(c);
            }, o, clock, ct);
            foreach (var id in (sent.Messages ?? []).Select(m => m.Id).OfType<string>())
            {
                if (++examined > MaxSentExamined)
                {
                    foreach (var i in byToken.Values)
                    {
                        found[i] = new SentLookup(null, Why: $"More than {MaxSentExamined} mails were sent from this Gmail account since the copy was registered; " +
                            "a look reads no more, so it cannot tell whether the copy left.");
                    }
                    return;
                }
                GmailMessage meta;
                try
                {
                    meta = await GmailCalls.RunAsync(c =>
                    {
                        var get = client.GetMessage(id, GmailClient.MessageFormat.Metadata);
                        get.MetadataHeaders = new[] { SentMailScanner.TokenHeader, "Message-ID" };
                        return get.ExecuteAsync(c);
                    }, o, clock, ct);
                }
                catch (Exception ex) when (GmailCalls.IsNotFound(ex))
                {
                    continue; // deleted since it was listed
                }
                if (meta.Header(SentMailScanner.TokenHeader)?.Trim() is { } token && byToken.Remove(token, out var place))
                {
                    found[place] = new SentLookup(true, meta.Header("Message-ID"), meta.ThreadId);
                    if (byToken.Count == 0) return;
                }
            }
            pageToken = sent.NextPageToken;
        } while (!string.IsNullOrEmpty(pageToken));
        foreach (var i in byToken.Values) found[i] = new SentLookup(false);
    }

    /// <summary>
    /// Gmail delivers to the addresses in To, Cc and Bcc; there is no separate envelope. A copy meant for some of the
    /// recipients therefore names only those: the others are left out of its To and Cc, and envelope addresses that
    /// are in neither go in Bcc (which Gmail removes before delivery). The copy's pixel token goes in a header.
    /// </summary>
    static MimeMessage AddressedToEnvelope(OutgoingCopy copy, string? token)
    {
        var message = copy.Message;
        var envelope = copy.Envelope.Select(a => a.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        var listed = message.To.Mailboxes.Concat(message.Cc.Mailboxes).Concat(message.Bcc.Mailboxes)
            .Select(a => a.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        // A copy of its own, so that the caller's message is left as it was.
        var clone = MimeMessage.Load(new MemoryStream(Serialize(message)));
        if (token is not null) clone.Headers[SentMailScanner.TokenHeader] = token;
        if (listed.SetEquals(envelope)) return clone;
        Keep(clone.To, envelope);
        Keep(clone.Cc, envelope);
        clone.Bcc.Clear();
        var shown = clone.To.Mailboxes.Concat(clone.Cc.Mailboxes).Select(a => a.Address).ToHashSet(StringComparer.OrdinalIgnoreCase);
        clone.Bcc.AddRange(copy.Envelope.Where(a => !shown.Contains(a.Address)));
        return clone;
    }

    static void Keep(InternetAddressList list, HashSet<string> envelope)
    {
        foreach (var a in list.Mailboxes.Where(a => !envelope.Contains(a.Address)).ToList()) list.Remove(a);
    }

    static byte[] Serialize(MimeMessage message)
    {
        using var stream = new MemoryStream();
        message.WriteTo(FormatOptions.Default, stream);
        return stream.ToArray();
    }
}

/// <summary>Base64url as Gmail uses it for raw messages: no padding on the way out, padding optional on the way in.</summary>
public static class Base64Url
{
    public static string Encode(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    /// <summary>Also accepts standard base64 (some senders use it where base64url is documented).</summary>
    public static byte[] Decode(string text)
    {
        var s = text.Trim().Replace('-', '+').Replace('_', '/');
        s = s.PadRight(s.Length + (4 - s.Length % 4) % 4, '=');
        return Convert.FromBase64String(s);
    }
}
