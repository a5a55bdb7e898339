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
        foreach (var copy in copies)
        {
            if (fatal is not null)
            {
                results.Add(new CopySendResult(copy.CopyId, false, fatal));
                continue;
            }
            var token = tokens.GetValueOrDefault(copy.CopyId);
            string? draftId = null;
            try
            {
                var draft = await session.Client.Me.Messages.PostAsync(ToGraph(copy, token), cancellationToken: ct)
                    ?? throw new MailboxException("Microsoft Graph created no message.", needsReconnect: false);
                draftId = draft.Id;
                await session.Client.Me.Messages[draftId].Send.PostAsync(cancellationToken: ct);
                draftId = null;
                var sent = token is null ? null : await FindSentAsync(session.Client, token, ct);
                if (sent is null) log.LogInformation("The sent copy {Copy} was not found in Sent Items yet; the mailbox's watch records it when it appears", copy.CopyId);
                results.Add(new CopySendResult(copy.CopyId, true, null, sent?.InternetMessageId, sent?.ConversationId));
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                var problem = GraphConnector.Translate(ex, ct);
                if (draftId is not null) await DeleteDraftAsync(session.Client, draftId);
                if (!results.Any(r => r.Sent) && problem is MailboxException { NeedsReconnect: true } whole) throw whole;
                if (problem is MailboxException { NeedsReconnect: true } || ex is ApiException { ResponseStatusCode: 429 or >= 500 } || ex is HttpRequestException)
                {
                    fatal = problem.Message;
                }
                results.Add(new CopySendResult(copy.CopyId, false, problem.Message));
                log.LogWarning(ex, "Sending copy {Copy} through {Address} failed", copy.CopyId, mailbox.Address);
            }
        }
        return new TransportResult(results, null);
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

    /// <summary>
    /// The sent copy in Sent Items, found by our extended property (Exchange files it a moment after the send). Where
    /// a server refuses that filter, the latest sent items' x-et-token headers are compared instead.
    /// </summary>
    async Task<Message?> FindSentAsync(GraphServiceClient client, string token, CancellationToken ct)
    {
        var o = options.Value;
        var byProperty = true;
        for (var attempt = 1; attempt <= o.SentLookupAttempts; attempt++)
        {
            try
            {
                if (byProperty)
                {
                    var page = await client.Me.MailFolders["sentitems"].Messages.GetAsync(rc =>
                    {
                        rc.QueryParameters.Filter = $"singleValueExtendedProperties/Any(ep: ep/id eq '{TokenProperty}' and ep/value eq '{token}')";
                        rc.QueryParameters.Select = ["id", "internetMessageId", "conversationId"];
                        rc.QueryParameters.Top = 1;
                    }, ct);
                    if (page?.Value?.FirstOrDefault() is { } found) return found;
                }
                else
                {
                    var page = await client.Me.MailFolders["sentitems"].Messages.GetAsync(rc =>
                    {
                        rc.QueryParameters.Select = ["id", "internetMessageId", "conversationId", "internetMessageHeaders"];
                        rc.QueryParameters.Orderby = ["sentDateTime desc"];
                        rc.QueryParameters.Top = 25;
                    }, ct);
                    var found = page?.Value?.FirstOrDefault(m => m.InternetMessageHeaders?.Any(h =>
                        string.Equals(h.Name, TokenHeaderName, StringComparison.OrdinalIgnoreCase) && h.Value?.Trim() == token) == true);
                    if (found is not null) return found;
                }
            }
            catch (ApiException ex) when (ex.ResponseStatusCode == 400 && byProperty)
            {
                log.LogInformation("Sent Items cannot be searched by extended property ({Code}); comparing headers instead", GraphConnector.Code(ex));
                byProperty = false;
                continue;
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
            {
                // Sent is sent: the watch of Sent Items records the real Message-ID later.
                log.LogInformation(ex, "Looking up the sent copy failed");
                return null;
            }
            if (attempt < o.SentLookupAttempts) await Task.Delay(o.SentLookupDelay * attempt, clock, ct);
        }
        return null;
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
