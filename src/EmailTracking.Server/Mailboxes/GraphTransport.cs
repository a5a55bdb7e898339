using EmailTracking.Data;
using EmailTracking.Server.Replies;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using Microsoft.Graph;
using Microsoft.Graph.Models;
using Microsoft.Kiota.Abstractions;
using MimeKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// Sends tracked copies through Microsoft Graph: each copy is created as a message carrying our pixel token in an
/// <c>x-et-token</c> internet header (it travels with the mail) and in a named extended property of ours (it stays on
/// the Sent Items copy, so that copy can be found), then sent. Exchange gives the sent mail a Message-ID of its own,
/// so the copy is looked up in Sent Items afterwards for its real internetMessageId and conversationId.
/// </summary>
public sealed class GraphTransport(GraphConnector graph, AppDbContext db, IOptions<GraphOptions> options, TimeProvider clock, ILogger<GraphTransport> log)
    : IMailTransport
{
    /// <summary>Our named MAPI property (in a namespace GUID of ours) holding the copy's pixel token.</summary>
    public const string TokenProperty = "String {6f1d2c1e-8a4b-4f3e-9d7a-2b5c8e0f4a61} Name EmailTrackingToken";

    public const string TokenHeaderName = "x-et-token";

    public async Task<TransportResult> SendAsync(MailboxConnection mailbox, IReadOnlyList<OutgoingCopy> copies, CancellationToken ct)
    {
        var session = graph.Open(mailbox);
        var ids = copies.Select(c => c.CopyId).ToList();
        var tokens = await db.Copies.Where(c => ids.Contains(c.Id)).ToDictionaryAsync(c => c.Id, c => c.PixelToken, ct);
        var results = new List<CopySendResult>();
        string? fatal = null;
        var fatalIsTemporary = false;
        foreach (var copy in copies)
        {
            if (fatal is not null)
            {
                results.Add(new CopySendResult(copy.CopyId, false, fatal, Temporary: fatalIsTemporary));
                continue;
            }
            string? draftId = null;
            var sending = false;
            try
            {
                var draft = await session.Client.Me.Messages.PostAsync(ToGraph(copy, tokens.GetValueOrDefault(copy.CopyId)), cancellationToken: ct)
                    ?? throw new MailboxException("Microsoft Graph created no message.", needsReconnect: false);
                draftId = draft.Id;
                await AttachAsync(session.Client, draftId!, copy.Message, ct);
                sending = true;
                await session.Client.Me.Messages[draftId].Send.PostAsync(cancellationToken: ct);
                draftId = null;
                results.Add(new CopySendResult(copy.CopyId, true, null));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // The send request failed: Exchange may have taken it all the same (not so when attaching failed before it).
                var sendFailed = sending;
                var problem = GraphConnector.Translate(ex, ct);
                if (ex is ApiException { ResponseStatusCode: 401 })
                {
                    // Refused before it expired: only a refused refresh means the user must sign in again.
                    problem = await session.RefreshAfterRefusalAsync(ct)
                        ?? new MailboxException("Microsoft Graph refused the access token; a new one was obtained, send again.", needsReconnect: false, ex);
                }
                if (draftId is not null) await DeleteDraftAsync(session.Client, draftId);
                if (!results.Any(r => r.Sent) && problem is MailboxException { NeedsReconnect: true } whole) throw whole;
                var reconnect = problem is MailboxException { NeedsReconnect: true };
                // Graph's answer, also when the SDK gave up its own retries (still throttled after them).
                var serviceTrouble = GraphConnector.LastAnswer(ex) is { ResponseStatusCode: 401 or 429 or >= 500 } || ex is HttpRequestException;
                // Throttling, Microsoft's own errors, the network, or no answer in time: worth another try later.
                var temporary = !reconnect && (serviceTrouble || ex is TimeoutException or OperationCanceledException);
                if (reconnect || serviceTrouble)
                {
                    fatal = problem.Message;
                    fatalIsTemporary = temporary;
                }
                results.Add(new CopySendResult(copy.CopyId, false, problem.Message, Temporary: temporary, MayHaveLeft: temporary && sendFailed));
                log.LogWarning(ex, "Sending copy {Copy} through {Address} failed", copy.CopyId, mailbox.Address);
            }
        }

        // Then the real Message-IDs, all copies at once: Exchange files each in Sent Items a moment after its send.
        var pending = results.Where(r => r.Sent && tokens.ContainsKey(r.CopyId)).ToDictionary(r => r.CopyId, r => tokens[r.CopyId]);
        var found = await FindSentAsync(session.Client, pending, ct);
        foreach (var copyId in pending.Keys.Where(id => !found.ContainsKey(id)))
        {
            log.LogInformation("The sent copy {Copy} was not found in Sent Items yet; the mailbox's watch records it when it appears", copyId);
        }
        return new TransportResult([.. results.Select(r => found.TryGetValue(r.CopyId, out var m)
            ? r with { SentMessageId = m.InternetMessageId, ProviderThreadId = m.ConversationId }
            : r)], null);
    }

    /// <summary>
    /// The copy's files on its draft, each as Graph's large-attachment guide says: under 3 MB one POST of a
    /// fileAttachment (contentBytes) on the message's attachments; from 3 MB an upload session (createUploadSession)
    /// and PUTs of byte ranges (Content-Range, each under 4 MB, in the order nextExpectedRanges asks) by the SDK's
    /// <see cref="LargeFileUploadTask{T}"/>, on the client's own pipeline (the upload URL is pre-authenticated; the
    /// token goes only to Graph's own host).
    /// </summary>
    async Task AttachAsync(GraphServiceClient client, string draftId, MimeMessage mime, CancellationToken ct)
    {
        var o = options.Value;
        foreach (var part in mime.Attachments.OfType<MimePart>().Where(p => p.Content is not null))
        {
            using var decoded = new MemoryStream();
            await part.Content!.DecodeToAsync(decoded, ct);
            var bytes = decoded.ToArray();
            var name = part.FileName ?? "attachment";
            var type = part.ContentType.MimeType;
            if (bytes.Length < o.SmallAttachmentBytes)
            {
                await client.Me.Messages[draftId].Attachments.PostAsync(new FileAttachment { Name = name, ContentType = type, ContentBytes = bytes }, cancellationToken: ct);
                continue;
            }
            var session = await client.Me.Messages[draftId].Attachments.CreateUploadSession.PostAsync(
                new Microsoft.Graph.Me.Messages.Item.Attachments.CreateUploadSession.CreateUploadSessionPostRequestBody
                {
                    AttachmentItem = new AttachmentItem { AttachmentType = AttachmentType.File, Name = name, Size = bytes.Length, ContentType = type },
                }, cancellationToken: ct) ?? throw new MailboxException("Microsoft Graph opened no upload session for " + name + ".", needsReconnect: false);
            decoded.Position = 0;
            var upload = new LargeFileUploadTask<FileAttachment>(session, decoded, o.UploadSliceBytes, client.RequestAdapter);
            var result = await upload.UploadAsync(cancellationToken: ct);
            if (!result.UploadSucceeded) throw new MailboxException($"Microsoft Graph did not take the attachment {name}.", needsReconnect: false);
        }
    }

    /// <summary>
    /// The copy as a Graph message. Graph has no envelope apart from the headers: a copy goes to exactly the people it
    /// shows, so a copy for one recipient names only that recipient (in their role; Bcc stays hidden).
    /// </summary>
    static Message ToGraph(OutgoingCopy copy, string? token)
    {
        var mime = copy.Message;
        var envelope = copy.Envelope.Select(a => a.Address.ToLowerInvariant()).ToHashSet();
        var to = mime.To.Mailboxes.Where(a => envelope.Contains(a.Address.ToLowerInvariant())).ToList();
        var cc = mime.Cc.Mailboxes.Where(a => envelope.Contains(a.Address.ToLowerInvariant())).ToList();
        var shown = to.Concat(cc).Select(a => a.Address.ToLowerInvariant()).ToHashSet();
        var bcc = copy.Envelope.Where(a => !shown.Contains(a.Address.ToLowerInvariant())).ToList();
        var message = new Message
        {
            Subject = mime.Subject ?? "",
            Body = new ItemBody { ContentType = BodyType.Html, Content = mime.HtmlBody ?? System.Net.WebUtility.HtmlEncode(mime.TextBody ?? "") },
            ToRecipients = [.. to.Select(Recipient)],
            CcRecipients = [.. cc.Select(Recipient)],
            BccRecipients = [.. bcc.Select(Recipient)],
        };
        if (token is not null)
        {
            message.InternetMessageHeaders = [new InternetMessageHeader { Name = TokenHeaderName, Value = token }];
            message.SingleValueExtendedProperties = [new SingleValueLegacyExtendedProperty { Id = TokenProperty, Value = token }];
        }
        return message;
    }

    static Microsoft.Graph.Models.Recipient Recipient(MailboxAddress a) => new() { EmailAddress = new EmailAddress { Address = a.Address, Name = string.IsNullOrEmpty(a.Name) ? null : a.Name } };

    /// <summary>Outlook replaces the Message-ID at send: the copy is looked for in Sent Items by our token.</summary>
    public async Task<bool?> IsInSentAsync(MailboxConnection mailbox, string messageId, string pixelToken, CancellationToken ct)
    {
        var session = graph.Open(mailbox);
        try
        {
            // A search that failed is no answer: "not in Sent" would have the copy sent a second time.
            var found = await FindSentAsync(session.Client, new Dictionary<Guid, string> { [Guid.Empty] = pixelToken }, ct, mustAnswer: true);
            return found.Count > 0;
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw GraphConnector.Translate(ex, ct);
        }
    }

    /// <summary>Each copy in Sent Items by our token, with the Message-ID Exchange gave it and its conversation, as a send reads them back.</summary>
    public async Task<IReadOnlyList<SentLookup>> FindInSentAsync(MailboxConnection mailbox, IReadOnlyList<SentQuery> copies, CancellationToken ct)
    {
        var session = graph.Open(mailbox);
        var keys = copies.Select(_ => Guid.NewGuid()).ToList();
        try
        {
            // A search that failed is no answer: "not in Sent" would have the copy sent a second time.
            var found = await FindSentAsync(session.Client, keys.Zip(copies).ToDictionary(p => p.First, p => p.Second.PixelToken), ct, mustAnswer: true);
            return [.. keys.Select(k => found.TryGetValue(k, out var m) ? new SentLookup(true, m.InternetMessageId, m.ConversationId) : new SentLookup(false))];
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            throw GraphConnector.Translate(ex, ct);
        }
    }

    /// <summary>
    /// The sent copies in Sent Items by copy, found by our extended property. Where a server refuses that filter, the
    /// latest sent items' x-et-token headers (from their MIME) are compared instead. Looking up is best effort: sent
    /// is sent, and the watch of Sent Items records what is not found here.
    /// </summary>
    /// <param name="mustAnswer">A failed search throws rather than return what was found so far (whether a copy left).</param>
    async Task<Dictionary<Guid, Message>> FindSentAsync(GraphServiceClient client, Dictionary<Guid, string> pending, CancellationToken ct, bool mustAnswer = false)
    {
        var o = options.Value;
        var found = new Dictionary<Guid, Message>();
        var read = new HashSet<string>();
        var byProperty = true;
        for (var attempt = 1; attempt <= o.SentLookupAttempts && found.Count < pending.Count; attempt++)
        {
            try
            {
                if (byProperty)
                {
                    foreach (var (copyId, token) in pending.Where(p => !found.ContainsKey(p.Key)))
                    {
                        var page = await client.Me.MailFolders["sentitems"].Messages.GetAsync(rc =>
                        {
                            rc.QueryParameters.Filter = $"singleValueExtendedProperties/Any(ep: ep/id eq '{TokenProperty}' and ep/value eq '{token}')";
                            rc.QueryParameters.Select = ["id", "internetMessageId", "conversationId"];
                            rc.QueryParameters.Top = 1;
                        }, ct);
                        if (page?.Value?.FirstOrDefault() is { } m) found[copyId] = m;
                    }
                }
                else
                {
                    var page = await client.Me.MailFolders["sentitems"].Messages.GetAsync(rc =>
                    {
                        rc.QueryParameters.Select = ["id", "internetMessageId", "conversationId"];
                        rc.QueryParameters.Orderby = ["sentDateTime desc"];
                        rc.QueryParameters.Top = Math.Min(100, pending.Count + 25);
                    }, ct);
                    foreach (var m in page?.Value ?? [])
                    {
                        // A sent item's headers never change: each is read once, whatever the attempt.
                        if (m.Id is null || !read.Add(m.Id)) continue;
                        var header = await TokenHeaderAsync(client, m.Id, ct);
                        var copy = pending.FirstOrDefault(p => p.Value == header);
                        if (header is not null && copy.Value is not null) found[copy.Key] = m;
                    }
                }
            }
            catch (ApiException ex) when (ex.ResponseStatusCode == 400 && byProperty)
            {
                log.LogInformation("Sent Items cannot be searched by extended property ({Code}); comparing headers instead", GraphConnector.Code(ex));
                byProperty = false;
                continue;
            }
            catch (Exception ex) when (!mustAnswer && (ex is not OperationCanceledException || !ct.IsCancellationRequested))
            {
                log.LogInformation(ex, "Looking up the sent copies failed");
                return found;
            }
            if (found.Count < pending.Count && attempt < o.SentLookupAttempts) await Task.Delay(o.SentLookupDelay * attempt, clock, ct);
        }
        return found;
    }

    /// <summary>
    /// A sent item's x-et-token, from the head of its MIME: Graph gives no internetMessageHeaders for items in Sent
    /// Items (custom headers are only in the MIME), so only the headers are read and the rest is left unread.
    /// </summary>
    static async Task<string?> TokenHeaderAsync(GraphServiceClient client, string id, CancellationToken ct)
    {
        await using var stream = await client.Me.Messages[id].Content.GetAsync(cancellationToken: ct);
        if (stream is null) return null;
        try
        {
            var headers = await new MimeParser(stream, MimeFormat.Entity).ParseHeadersAsync(ct);
            return headers[TokenHeaderName]?.Trim();
        }
        catch (FormatException)
        {
            return null;
        }
    }

    async Task DeleteDraftAsync(GraphServiceClient client, string id)
    {
        try
        {
            using var cts = new CancellationTokenSource(TimeSpan.FromSeconds(10));
            await client.Me.Messages[id].DeleteAsync(cancellationToken: cts.Token);
        }
        catch (Exception ex)
        {
            log.LogInformation(ex, "Could not delete the unsent draft {Id}", id);
        }
    }
}
