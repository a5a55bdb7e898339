using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using EmailTracking.Data;
using EmailTracking.Server.Outbox;
using EmailTracking.Server.Web;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Salesforce;

/// <summary>
/// Logs outbox events to a team's Salesforce org as Tasks. Sent mail and answers become a completed Task on the
/// Contact (with its Account as WhatId) or the Lead with that address; opens, clicks, out-of-office answers and
/// bounces become a small Task of their own when the connection logs them.
/// <para>
/// Idempotency: every Task is written with an upsert on the external-id field <c>EmailTracking_Key__c</c>
/// (<c>PATCH /sobjects/Task/EmailTracking_Key__c/{key}</c>), the key coming from the delivery's idempotency key.
/// A redelivery (at-least-once outbox) updates the Task it made the first time instead of making a second one,
/// with no state of ours between the call and its answer.
/// </para>
/// </summary>
public sealed class SalesforceTarget(AppDbContext db, SalesforceClient client, SalesforceAuth auth, IOptions<SalesforceOptions> options,
    ILogger<SalesforceTarget> log) : IDeliveryTarget
{
    public const string TargetKind = "salesforce";
    public string Kind => TargetKind;

    const int MaxSubject = 255;
    const int MaxDescription = 32_000;
    /// <summary>Salesforce's Email fields hold 80 characters.</summary>
    const int MaxEmail = 80;

    public async Task<DeliveryResult> DeliverAsync(Guid targetId, OutboxMessage message, CancellationToken ct)
    {
        var p = message.Payload;
        var c = await db.SalesforceConnections.FirstOrDefaultAsync(x => x.Id == targetId, ct);
        if (c is null) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: "Salesforce is no longer connected for this team.");
        if (c.TeamId != p.TeamId) return new DeliveryResult(DeliveryOutcome.Dead, Detail: "The event belongs to another team than this Salesforce connection.");
        if (c.Status == SalesforceStatus.NeedsReconnect)
            return new DeliveryResult(DeliveryOutcome.NeedsReconnect, Detail: c.StatusMessage ?? "Salesforce needs to be reconnected.");
        if (!Logs(c, p.Type)) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: $"This Salesforce connection does not log {p.Type} events.");
        if (string.IsNullOrWhiteSpace(message.IdempotencyKey)) return new DeliveryResult(DeliveryOutcome.Dead, Detail: "The delivery has no idempotency key.");

        var addresses = AddressesOf(p);
        if (addresses.Count == 0) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: "The event names no usable email address to find in Salesforce.");

        try
        {
            var who = await FindPersonAsync(c, addresses, ct);
            if (who is null)
            {
                if (c.UnknownRecipients == UnknownRecipientPolicy.Skip)
                    return new DeliveryResult(DeliveryOutcome.Skipped, Detail: $"No Contact or Lead in Salesforce has the address {addresses[0]}.");
                who = await CreateLeadAsync(c, addresses[0], ct);
            }
            var (id, created) = await client.UpsertAsync(c, "Task", options.Value.TaskKeyField, TaskKey(message.IdempotencyKey), TaskFields(p, who), ct);
            log.LogDebug("Salesforce Task {TaskId} {Action} for {Type} {Key}", id, created ? "created" : "updated", p.Type, message.IdempotencyKey);
            return new DeliveryResult(DeliveryOutcome.Delivered, StatusCode: created ? 201 : 200, ExternalId: id);
        }
        catch (SalesforceAuthException ex) when (!ex.Transient)
        {
            await NeedsReconnectAsync(c, ex, ct);
            return new DeliveryResult(DeliveryOutcome.NeedsReconnect, Detail: ex.Message);
        }
        catch (SalesforceAuthException ex)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: ex.Message);
        }
        catch (SalesforceApiException ex)
        {
            return Classify(ex);
        }
        catch (HttpRequestException ex)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: "Salesforce could not be reached: " + ex.Message);
        }
        catch (TaskCanceledException ex) when (!ct.IsCancellationRequested)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: "Salesforce did not answer in time: " + ex.Message);
        }
        catch (JsonException ex)
        {
            return new DeliveryResult(DeliveryOutcome.Retry, Detail: "Salesforce's answer could not be read: " + ex.Message);
        }
    }

    /// <summary>Which events a connection logs (document views count as clicks: a click on a document link).</summary>
    public static bool Logs(SalesforceConnection c, string type) => type switch
    {
        OutboxEventTypes.MessageSent => c.LogSent,
        OutboxEventTypes.ReplyReceived => c.LogReplies,
        OutboxEventTypes.MessageOpened => c.LogOpens,
        OutboxEventTypes.LinkClicked or OutboxEventTypes.DocumentViewed or OutboxEventTypes.DocumentLinkFollowed => c.LogClicks,
        OutboxEventTypes.AutoReplyReceived => c.LogAutoReplies,
        OutboxEventTypes.BounceReceived => c.LogBounces,
        _ => false,
    };

    /// <summary>
    /// Limits and outages are retried (with Salesforce's Retry-After when it sends one); a request Salesforce refuses as it
    /// is (a validation rule, a required field, a field the org does not have) is dead, with Salesforce's own words.
    /// </summary>
    DeliveryResult Classify(SalesforceApiException ex)
    {
        if (ex.Status == 300)
        {
            return new DeliveryResult(DeliveryOutcome.Dead, ex.Status,
                $"Several Salesforce Tasks have this event's {options.Value.TaskKeyField}: the field must be marked Unique (see the README's Salesforce setup).");
        }
        var detail = string.Join("; ", ex.Errors.Select(e => e.Fields.Count > 0 ? $"{e.ErrorCode}: {e.Message} ({string.Join(", ", e.Fields)})" : $"{e.ErrorCode}: {e.Message}"));
        if (ex.Status == 429 || ex.Has("REQUEST_LIMIT_EXCEEDED") || ex.Status >= 500 || ex.Has("UNABLE_TO_LOCK_ROW") || ex.Has("SERVER_UNAVAILABLE"))
            return new DeliveryResult(DeliveryOutcome.Retry, ex.Status, detail, ex.RetryAfter);
        // A 401 that a new token did not cure: the session keeps being refused; try later rather than drop the event.
        if (ex.Status == 401) return new DeliveryResult(DeliveryOutcome.Retry, ex.Status, detail);
        return new DeliveryResult(DeliveryOutcome.Dead, ex.Status, detail);
    }

    async Task NeedsReconnectAsync(SalesforceConnection c, SalesforceAuthException ex, CancellationToken ct)
    {
        auth.Forget(c.Id);
        var why = ex.Error == "invalid_grant"
            ? $"Salesforce refused the connection's credentials ({ex.Description ?? ex.Error}): an admin connects Salesforce again. Events wait until then."
            : ex.Message + ". An admin connects Salesforce again; events wait until then.";
        if (why.Length > 1000) why = why[..1000];
        // Only the credentials that failed: an admin who reconnected meanwhile replaced them, and stays connected.
        var marked = await db.SalesforceConnections.Where(x => x.Id == c.Id && x.ProtectedSecret == c.ProtectedSecret)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, SalesforceStatus.NeedsReconnect).SetProperty(x => x.StatusMessage, why), ct);
        if (marked > 0) log.LogWarning("Salesforce connection {Id} of team {Team} needs reconnecting: {Error}", c.Id, c.TeamId, ex.Message);
    }

    /// <summary>Who the event is about: the recipient (sent, opens, clicks, bounces) or the one who answered.</summary>
    static List<string> AddressesOf(OutboxPayload p)
    {
        string?[] raw = p.Type is OutboxEventTypes.ReplyReceived or OutboxEventTypes.AutoReplyReceived
            ? [p.FromAddress ?? p.Recipient]
            : p.Recipient is not null ? [p.Recipient] : [.. p.Recipients];
        return raw.Select(Normalize).OfType<string>().Distinct().ToList();
    }

    /// <summary>Lower case, trimmed, one @ with something on both sides, no control characters, short enough for Salesforce.</summary>
    internal static string? Normalize(string? address)
    {
        var a = address?.Trim().ToLowerInvariant();
        if (string.IsNullOrEmpty(a) || a.Length > MaxEmail || a.Any(char.IsControl) || a.Contains(' ')) return null;
        var at = a.LastIndexOf('@');
        return at > 0 && at < a.Length - 1 && a.IndexOf('@') == at ? a : null;
    }

    sealed record Person(string Id, string? AccountId, bool IsLead);

    /// <summary>
    /// A Contact with one of the addresses (in the event's order), else an unconverted Lead. Two SOQL queries at most; the
    /// addresses go in as escaped literals.
    /// </summary>
    async Task<Person?> FindPersonAsync(SalesforceConnection c, List<string> addresses, CancellationToken ct)
    {
        var list = string.Join(", ", addresses.Select(SalesforceClient.Literal));
        var contacts = await client.QueryAsync(c, $"SELECT Id, AccountId, Email FROM Contact WHERE Email IN ({list}) LIMIT 20", ct);
        foreach (var a in addresses)
        {
            if (contacts.FirstOrDefault(r => string.Equals(r["Email"], a, StringComparison.OrdinalIgnoreCase)) is { } contact)
                return new Person(contact.Id, string.IsNullOrEmpty(contact["AccountId"]) ? null : contact["AccountId"], false);
        }
        var leads = await client.QueryAsync(c, $"SELECT Id, Email FROM Lead WHERE Email IN ({list}) AND IsConverted = false LIMIT 20", ct);
        foreach (var a in addresses)
        {
            if (leads.FirstOrDefault(r => string.Equals(r["Email"], a, StringComparison.OrdinalIgnoreCase)) is { } lead) return new Person(lead.Id, null, true);
        }
        return null;
    }

    /// <summary>A Lead for an unknown address: last name from the local part, company from the domain (both required on Lead).</summary>
    async Task<Person> CreateLeadAsync(SalesforceConnection c, string address, CancellationToken ct)
    {
        var at = address.IndexOf('@');
        var local = address[..at];
        var domain = address[(at + 1)..];
        var lastName = string.Join(' ', local.Split(['.', '_', '-', '+'], StringSplitOptions.RemoveEmptyEntries).Select(Capitalize));
        var company = domain.Split('.') is { Length: > 1 } parts ? string.Join('.', parts[..^1]) : domain;
        var id = await client.CreateAsync(c, "Lead", new JsonObject
        {
            ["LastName"] = lastName.Length == 0 ? local : lastName,
            ["Company"] = company,
            ["Email"] = address,
            ["Description"] = "Created by EmailTracking for an email address that was neither a Contact nor a Lead.",
        }, ct);
        return new Person(id, null, true);

        static string Capitalize(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];
    }

    /// <summary>
    /// The external id of the Task: the idempotency key when it is short and plain, else a SHA-256 of it (the same key
    /// always gives the same value, and the field holds at most 255 characters).
    /// </summary>
    internal static string TaskKey(string idempotencyKey) =>
        idempotencyKey.Length <= 80 && idempotencyKey.All(ch => char.IsAsciiLetterOrDigit(ch) || ch is '-' or '_' or '.' or ':')
            ? idempotencyKey
            : "sha256-" + Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(idempotencyKey)));

    JsonObject TaskFields(OutboxPayload p, Person who)
    {
        var subject = p.Type switch
        {
            OutboxEventTypes.MessageSent => "Email: ",
            OutboxEventTypes.ReplyReceived => "Reply: ",
            OutboxEventTypes.AutoReplyReceived => "Auto-reply: ",
            OutboxEventTypes.BounceReceived => "Bounce: ",
            OutboxEventTypes.MessageOpened => "Opened: ",
            OutboxEventTypes.LinkClicked => "Clicked: ",
            OutboxEventTypes.DocumentViewed => "Viewed: ",
            OutboxEventTypes.DocumentLinkFollowed => "Followed a link: ",
            _ => "",
        } + (string.IsNullOrWhiteSpace(p.Subject) ? "(no subject)" : p.Subject.Trim());
        var when = p.Type == OutboxEventTypes.MessageSent ? p.SentAt ?? p.OccurredAt : p.OccurredAt;
        var fields = new JsonObject
        {
            ["Subject"] = Cut(subject.ReplaceLineEndings(" "), MaxSubject),
            ["WhoId"] = who.Id,
            ["ActivityDate"] = SalesforceClient.Date(when),
            ["Status"] = "Completed",
            ["Description"] = Cut(Description(p, when), MaxDescription),
        };
        // A Task on a Lead cannot name a WhatId; a Contact's Account is what the activity is about.
        if (!who.IsLead && who.AccountId is not null) fields["WhatId"] = who.AccountId;
        return fields;
    }

    static string Description(OutboxPayload p, DateTimeOffset when)
    {
        var sb = new StringBuilder();
        switch (p.Type)
        {
            case OutboxEventTypes.MessageSent:
                sb.AppendLine($"Sent by {p.SenderAddress} to {string.Join(", ", p.Recipients)}.");
                break;
            case OutboxEventTypes.ReplyReceived or OutboxEventTypes.AutoReplyReceived:
                sb.AppendLine($"{(p.Type == OutboxEventTypes.ReplyReceived ? "Reply" : "Automatic reply")} from {p.FromAddress ?? p.Recipient} to {p.SenderAddress}'s email.");
                break;
            case OutboxEventTypes.BounceReceived:
                sb.AppendLine($"The email from {p.SenderAddress} to {p.Recipient ?? string.Join(", ", p.Recipients)} bounced{(p.Reason is null ? "" : ": " + p.Reason)}.");
                break;
            case OutboxEventTypes.MessageOpened:
                sb.AppendLine($"{p.Recipient ?? "A recipient"} opened the email from {p.SenderAddress}.");
                break;
            case OutboxEventTypes.LinkClicked:
                sb.AppendLine($"{p.Recipient ?? "A recipient"} clicked {p.LinkUrl} in the email from {p.SenderAddress}.");
                break;
            case OutboxEventTypes.DocumentViewed:
                sb.AppendLine($"{p.Recipient ?? "A recipient"} viewed the document {p.DocumentName} sent by {p.SenderAddress}.");
                break;
            case OutboxEventTypes.DocumentLinkFollowed:
                sb.AppendLine($"{p.Recipient ?? "A recipient"} followed the link {p.LinkUrl} on page {p.Page} of the document {p.DocumentName} sent by {p.SenderAddress}.");
                break;
        }
        sb.AppendLine("When: " + when.UtcDateTime.ToString("yyyy-MM-dd HH:mm 'UTC'", CultureInfo.InvariantCulture));
        if (!string.IsNullOrWhiteSpace(p.Excerpt)) sb.AppendLine().AppendLine(p.Excerpt.Trim()).AppendLine();
        sb.Append(SummaryLine(p.Summary));
        return sb.ToString();
    }

    /// <summary>The message's tracking so far, as one line.</summary>
    public static string SummaryLine(OutboxSummary s) => string.Create(CultureInfo.InvariantCulture,
        $"Tracking: {s.Opens} {(s.Opens == 1 ? "open" : "opens")}, {s.Clicks} {(s.Clicks == 1 ? "click" : "clicks")}, {s.PagesRead} {(s.PagesRead == 1 ? "page" : "pages")} read, {(s.Replied ? "replied" : "no reply yet")}.");

    static string Cut(string s, int max) => TextClip.Shorten(s, max);
}

/// <summary>The team's Salesforce org, when it logs the event type (a connection that needs reconnecting still collects: its deliveries wait).</summary>
public sealed class SalesforceSubscribers(AppDbContext db) : Outbox.IOutboxSubscribers
{
    public string Kind => SalesforceTarget.TargetKind;

    public async Task<IReadOnlyList<Guid>> TargetsAsync(Guid teamId, string eventType, CancellationToken ct)
    {
        var connections = await db.SalesforceConnections.AsNoTracking().Where(c => c.TeamId == teamId).ToListAsync(ct);
        return [.. connections.Where(c => SalesforceTarget.Logs(c, eventType)).Select(c => c.Id)];
    }
}
