using EmailTracking.Data;
using EmailTracking.Server.Mailboxes.Gmail;
using EmailTracking.Server.Replies;
using Google.Apis.Auth.OAuth2;
using Google.Apis.Http;
using Google.Apis.Services;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Gmail;

/// <summary>
/// Finds the tracked message behind a sent mail the user has open in Gmail, when nothing has recorded its thread yet
/// (no mailbox connected, or the connector has not read the Sent folder so far). Mail tracked from the compose card
/// leaves with the Message-ID Gmail gives it, and its body is not ours to read with the add-on's metadata scope; its
/// headers are: the sender, the recipients and the subject, read with the add-on's own per-message tokens. A message
/// tracked from the compose card that went from this sender to exactly those recipients, with that subject, shortly
/// before, is the one. Its thread, Message-ID and send time are then recorded as the connector would.
/// </summary>
/// <remarks>
/// The user often opens the conversation on an answer instead (Gmail opens a thread on its newest message). An answer
/// (it has In-Reply-To or References) from one of a tracked message's recipients, with its subject once the reply
/// prefixes are taken off, that arrived within the week after the message was tracked, names the conversation as
/// well, when exactly one tracked message fits (with two, which one it answers is not known): it gets the answer's
/// thread. Only the thread: the answer's In-Reply-To may name a later, untracked mail of the conversation rather than
/// the tracked one, so no Message-ID is taken from it.
/// </remarks>
public sealed class GmailSentMatch(IOptionsMonitor<GmailOptions> gmail, AppDbContext db, SentMailScanner sent, ILogger<GmailSentMatch> log)
{
    /// <summary>How long before sending the draft may have been tracked.</summary>
    public static readonly TimeSpan Window = TimeSpan.FromDays(7);
    /// <summary>Gmail's clock and ours may differ a little.</summary>
    static readonly TimeSpan Skew = TimeSpan.FromMinutes(10);
    /// <summary>The card must not wait long for Gmail: without an answer it shows what is known.</summary>
    public static readonly TimeSpan Timeout = TimeSpan.FromSeconds(4);

    /// <param name="Answers">It has In-Reply-To or References: it answers something.</param>
    public sealed record OpenedMessage(string Id, string ThreadId, bool Sent, string? From, IReadOnlyList<string> Recipients, string? Subject,
        string? MessageId, DateTimeOffset? Date, bool Answers);

    /// <summary>The tracked message the opened mail is, recorded against its thread; null when none matches or Gmail did not answer.</summary>
    public async Task<Guid?> MatchAsync(User user, string messageIdHex, string threadHex, string userOAuthToken, string messageToken, CancellationToken ct)
    {
        OpenedMessage? opened;
        using (var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct))
        {
            timeout.CancelAfter(Timeout);
            try
            {
                opened = await ReadAsync(messageIdHex, userOAuthToken, messageToken, timeout.Token);
            }
            catch (Exception ex) when (ex is Google.GoogleApiException or HttpRequestException or OperationCanceledException or Newtonsoft.Json.JsonException
                                       && !ct.IsCancellationRequested)
            {
                log.LogWarning(ex, "Could not read the headers of the Gmail message the user has open; its card shows what is already known");
                return null;
            }
        }
        if (opened is null || opened.Date is not { } date || opened.ThreadId != threadHex) return null;
        if (!opened.Sent) return await MatchAnswerAsync(user, opened, date, threadHex, ct);
        var from = Accounts.AccountService.NormalizeAddress(opened.From);
        // One of the user's addresses, and the tracked draft's sender, with the domain written either way (punycode or Unicode).
        var fromForms = from is null ? [] : Accounts.AccountService.StoredForms(from);
        if (from is null || !await db.UserAddresses.AnyAsync(a => a.UserId == user.Id && fromForms.Contains(a.Address), ct)) return null;

        // Compared as AccountService.AddressKey does: Gmail's headers carry a punycode domain, which MimeKit reads in
        // Unicode, while the draft's recipient was tracked as the user wrote it.
        var wanted = opened.Recipients.Select(Accounts.AccountService.AddressKey).ToHashSet(StringComparer.Ordinal);
        var earliest = date - Window;
        var latest = date + Skew;
        var candidates = await db.Messages.AsNoTracking()
            .Where(m => m.UserId == user.Id && m.TeamId == user.TeamId && m.Source == MessageSource.GmailAddon && fromForms.Contains(m.FromAddress)
                        && m.CreatedAt >= earliest && m.CreatedAt <= latest
                        && m.Copies.All(c => c.ProviderThreadId == null))
            .OrderByDescending(m => m.CreatedAt).Take(50)
            .Select(m => new { m.Id, m.Subject, Recipients = m.Recipients.Where(r => r.Role != RecipientRole.Bcc).Select(r => r.Address).ToList() })
            .ToListAsync(ct);
        var subject = opened.Subject?.Trim() ?? "";
        var match = candidates.FirstOrDefault(c => c.Recipients.Select(Accounts.AccountService.AddressKey).ToHashSet(StringComparer.Ordinal).SetEquals(wanted)
                                                   && (c.Subject.Trim().Length == 0 || string.Equals(c.Subject.Trim(), subject, StringComparison.Ordinal)));
        if (match is null) return null;

        var copy = await FirstCopyAsync(match.Id, ct);
        await sent.RecordAsync(copy, InboundPipeline.Clean(opened.MessageId), threadHex, null, date, ct);
        log.LogInformation("Gmail message {Message} in thread {Thread} is tracked message {Tracked} (matched by its headers)", opened.Id, threadHex, match.Id);
        return match.Id;
    }

    /// <summary>The opened mail is an answer to a tracked message not yet known by its thread: see the remarks above.</summary>
    async Task<Guid?> MatchAnswerAsync(User user, OpenedMessage opened, DateTimeOffset date, string threadHex, CancellationToken ct)
    {
        var author = Accounts.AccountService.NormalizeAddress(opened.From);
        if (!opened.Answers || author is null) return null;
        // The recipient as tracked, or the user's own address, may have their domain in Unicode while the answer's header
        // has it in punycode.
        var authorForms = Accounts.AccountService.StoredForms(author);
        if (await db.UserAddresses.AnyAsync(a => a.UserId == user.Id && authorForms.Contains(a.Address), ct)) return null;
        var earliest = date - Window;
        var latest = date + Skew;
        var candidates = await db.Messages.AsNoTracking()
            .Where(m => m.UserId == user.Id && m.TeamId == user.TeamId && m.Source == MessageSource.GmailAddon
                        && m.CreatedAt >= earliest && m.CreatedAt <= latest
                        && m.Copies.All(c => c.ProviderThreadId == null) && m.Recipients.Any(r => authorForms.Contains(r.Address)))
            .OrderByDescending(m => m.CreatedAt).Take(50)
            .Select(m => new { m.Id, m.Subject })
            .ToListAsync(ct);
        var subject = Subjects.Topic(opened.Subject);
        var matching = candidates.Where(c => Subjects.Topic(c.Subject) == subject).Take(2).ToList();
        // Two tracked emails on that topic to that person (a fresh follow-up, say): which one this answers is not known.
        if (matching.Count != 1) return null;
        var match = matching[0];

        var copy = await FirstCopyAsync(match.Id, ct);
        await sent.RecordAsync(copy, null, threadHex, null, null, ct);
        log.LogInformation("Gmail message {Message} answers tracked message {Tracked}: thread {Thread} recorded (matched by its headers)", opened.Id, match.Id, threadHex);
        return match.Id;
    }

    /// <summary>The tracked message's (first) copy, with what <see cref="SentMailScanner.RecordAsync"/> needs loaded.</summary>
    Task<MessageCopy> FirstCopyAsync(Guid messageId, CancellationToken ct) =>
        db.Copies.Include(c => c.TrackedMessage).Include(c => c.Links).Where(c => c.TrackedMessageId == messageId).OrderBy(c => c.Id).FirstAsync(ct);

    /// <summary>users.messages.get format=metadata with the add-on's tokens: the user's in Authorization, the message's in X-Goog-Gmail-Access-Token.</summary>
    async Task<OpenedMessage?> ReadAsync(string messageIdHex, string userOAuthToken, string messageToken, CancellationToken ct)
    {
        using var client = new GmailClient(new BaseClientService.Initializer
        {
            HttpClientInitializer = new AddonTokens(userOAuthToken, messageToken),
            ApplicationName = "EmailTracking",
            BaseUri = gmail.CurrentValue.ApiBaseUri,
            DefaultExponentialBackOffPolicy = Google.Apis.Http.ExponentialBackOffPolicy.None,
            GZipEnabled = true,
        });
        var request = client.GetMessage(messageIdHex, GmailClient.MessageFormat.Metadata);
        request.MetadataHeaders = new Google.Apis.Util.Repeatable<string>(["From", "To", "Cc", "Subject", "Message-ID", "Date", "In-Reply-To", "References"]);
        var m = await request.ExecuteAsync(ct);
        if (m.Id is null || m.ThreadId is null) return null;
        var recipients = new List<string>();
        foreach (var header in new[] { m.Header("To"), m.Header("Cc") })
        {
            if (header is not null && InternetAddressList.TryParse(header, out var list))
                recipients.AddRange(list.Mailboxes.Select(x => x.Address.ToLowerInvariant()));
        }
        DateTimeOffset? date = m.InternalDate is { } ms ? DateTimeOffset.FromUnixTimeMilliseconds(ms) : null;
        var answers = !string.IsNullOrWhiteSpace(m.Header("In-Reply-To")) || !string.IsNullOrWhiteSpace(m.Header("References"));
        return new OpenedMessage(m.Id, m.ThreadId, m.HasLabel("SENT"), m.Header("From"), recipients, m.Header("Subject"), m.Header("Message-ID"), date, answers);
    }

    /// <summary>Both tokens on every request of the client.</summary>
    sealed class AddonTokens(string userOAuthToken, string messageToken) : IConfigurableHttpClientInitializer, IHttpExecuteInterceptor
    {
        public void Initialize(ConfigurableHttpClient httpClient) => httpClient.MessageHandler.AddExecuteInterceptor(this);

        public Task InterceptAsync(HttpRequestMessage request, CancellationToken cancellationToken)
        {
            request.Headers.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", userOAuthToken);
            request.Headers.Remove("X-Goog-Gmail-Access-Token");
            request.Headers.Add("X-Goog-Gmail-Access-Token", messageToken);
            return Task.CompletedTask;
        }
    }
}
