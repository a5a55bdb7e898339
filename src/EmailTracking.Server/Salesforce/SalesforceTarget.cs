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
        // A connection marked for the server's own credentials (as earlier versions did) is tried again: once the
        // operator fixes the setting it comes back by itself.
        var markedForServer = c.Status == SalesforceStatus.NeedsReconnect && MarkedForServerConfiguration(c.StatusMessage);
        if (c.Status == SalesforceStatus.NeedsReconnect && !markedForServer)
            return new DeliveryResult(DeliveryOutcome.NeedsReconnect, Detail: c.StatusMessage ?? "Salesforce needs to be reconnected.");
        if (c.AuthKind == SalesforceAuthKind.JwtBearer && !await SalesforceService.JwtAllowedAsync(db, options.Value, c.TeamId, ct))
        {
            // Made before Salesforce:JwtTeams was set, or the team was taken off it: the server's JWT user acts in an org
            // that is not this team's to log into.
            const string why = "This team may no longer use the server's JWT user (Salesforce:JwtTeams does not name it): an admin connects " +
                               "Salesforce again with the Salesforce sign-in. Events wait until then.";
            await MarkNeedsReconnectAsync(c, why, "jwt_team_not_allowed", ct);
            return new DeliveryResult(DeliveryOutcome.NeedsReconnect, Detail: why);
        }
        if (!Logs(c, p.Type)) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: $"This Salesforce connection does not log {p.Type} events.");
        if (string.IsNullOrWhiteSpace(message.IdempotencyKey)) return new DeliveryResult(DeliveryOutcome.Dead, Detail: "The delivery has no idempotency key.");

        var addresses = AddressesOf(p);
        if (addresses.Count == 0) return new DeliveryResult(DeliveryOutcome.Skipped, Detail: "The event names no usable email address to find in Salesforce.");

        try
        {
            if (markedForServer) await ActiveAgainAsync(c, ct);
            // Shared Activities matters only when the event names several people: one describe per connection (cached).
            var shared = addresses.Count > 1 && await SharedActivitiesAsync(c, ct);
            var people = await FindPeopleAsync(c, addresses, shared, ct);
            if (people.Related.Count == 0)
            {
                if (c.UnknownRecipients == UnknownRecipientPolicy.Skip)
                    return new DeliveryResult(DeliveryOutcome.Skipped, Detail: $"No Contact or Lead in Salesforce has the address {addresses[0]}.");
                people = new People([await CreateLeadAsync(c, addresses[0], ct)], [], null);
            }
            var (what, whatNote) = await WhatAsync(c, people.Related[0], ct);
            var key = TaskKey(message.IdempotencyKey);
            (string Id, bool Created) task;
            try
            {
                task = await client.UpsertAsync(c, "Task", options.Value.TaskKeyField, key, TaskFields(p, people, what, shared), ct);
            }
            catch (SalesforceApiException ex) when (shared && ex.Errors.Any(e => e.ErrorCode == "INVALID_FIELD" && Names(e, TaskWhoIds)))
            {
                // The describe said the org relates several people to a Task, the upsert says otherwise (the field is not
                // there for this user, or the connection now reaches another org): log on the first one as without
                // Shared Activities, name the others in the Task, and describe again in a while.
                auth.RememberSharedActivities(c.Id, false);
                log.LogWarning("Salesforce refused {Field} for connection {Id} of team {Team}; the Task is related to one person: {Error}",
                    TaskWhoIds, c.Id, c.TeamId, ex.Message);
                people = people.FirstOnly($"Salesforce refused {TaskWhoIds}: {ex.Errors.First(e => e.ErrorCode == "INVALID_FIELD").Message}");
                task = await client.UpsertAsync(c, "Task", options.Value.TaskKeyField, key, TaskFields(p, people, what, sharedActivities: false), ct);
            }
            log.LogDebug("Salesforce Task {TaskId} {Action} for {Type} {Key}", task.Id, task.Created ? "created" : "updated", p.Type, message.IdempotencyKey);
            return new DeliveryResult(DeliveryOutcome.Delivered, StatusCode: task.Created ? 201 : 200, Detail: Join(people.Outcome(), whatNote), ExternalId: task.Id);
        }
        catch (SalesforceAuthException ex) when (ex.ServerConfiguration)
        {
            // Every team's deliveries get this answer: it is the operator's to fix, and no team's connection is marked
            // (an admin's reconnect would not help, and marked connections would stay so after the fix). The delivery
            // waits as for a reconnect, using up no attempt.
            var detail = ServerConfigurationDetail(ex);
            if (auth.ReportServerError()) log.LogError("Salesforce refuses the server's own credentials; every team's Salesforce deliveries wait until an operator fixes the settings: {Error}. {Detail}", ex.Message, detail);
            else log.LogDebug("Salesforce connection {Id} of team {Team}: {Error}", c.Id, c.TeamId, ex.Message);
            return new DeliveryResult(DeliveryOutcome.NeedsReconnect, Detail: detail);
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
    /// Limits wait without using up attempts (REQUEST_LIMIT_EXCEEDED comes without a Retry-After, and the daily API limit
    /// is a rolling 24 hours); outages are retried (with Salesforce's Retry-After when it sends one); a request Salesforce
    /// refuses as it is (a validation rule, a required field, a field the org does not have) is dead, with Salesforce's
    /// own words.
    /// </summary>
    DeliveryResult Classify(SalesforceApiException ex)
    {
        if (ex.Status == 300)
        {
            return new DeliveryResult(DeliveryOutcome.Dead, ex.Status,
                $"Several Salesforce Tasks have this event's {options.Value.TaskKeyField}: the field must be marked Unique (see the README's Salesforce setup).");
        }
        var detail = string.Join("; ", ex.Errors.Select(e => e.Fields.Count > 0 ? $"{e.ErrorCode}: {e.Message} ({string.Join(", ", e.Fields)})" : $"{e.ErrorCode}: {e.Message}"));
        if (ex.Status == 429 || ex.Has("REQUEST_LIMIT_EXCEEDED"))
            return new DeliveryResult(DeliveryOutcome.Limited, ex.Status, detail, ex.RetryAfter);
        if (ex.Status >= 500 || ex.Has("UNABLE_TO_LOCK_ROW") || ex.Has("SERVER_UNAVAILABLE"))
            return new DeliveryResult(DeliveryOutcome.Retry, ex.Status, detail, ex.RetryAfter);
        // A 401 that a new token did not cure: the session keeps being refused; try later rather than drop the event.
        if (ex.Status == 401) return new DeliveryResult(DeliveryOutcome.Retry, ex.Status, detail);
        return new DeliveryResult(DeliveryOutcome.Dead, ex.Status, detail);
    }

    static string ServerConfigurationDetail(SalesforceAuthException ex) => ex.Error == "invalid_key"
        ? ex.Message + ". The server's operator fixes Salesforce:JwtPrivateKeyPath (or JwtPrivateKeyPem); events wait until then, and no reconnect is needed."
        : ex.Message + ". Salesforce refused the server's connected-app credentials: the server's operator checks Salesforce:ClientId and " +
          "Salesforce:ClientSecret (a secret renewed on the connected app must be set there too); events wait until then, and no reconnect is needed.";

    /// <summary>Whether a connection was marked needs-reconnect for the server's credentials (by a version before they were told apart).</summary>
    static bool MarkedForServerConfiguration(string? statusMessage) =>
        statusMessage is not null && (statusMessage.StartsWith("Salesforce sign-in failed: invalid_client", StringComparison.Ordinal)
            || statusMessage.StartsWith("Salesforce sign-in failed: invalid_key", StringComparison.Ordinal));

    /// <summary>
    /// A connection marked for the server's credentials whose sign-in works again is active again (only with the
    /// credentials that were marked: a reconnect meanwhile made it active already). A refusal is thrown.
    /// </summary>
    async Task ActiveAgainAsync(SalesforceConnection c, CancellationToken ct)
    {
        await client.CheckAccessAsync(c, ct);
        var lifted = await db.SalesforceConnections.Where(x => x.Id == c.Id && x.ProtectedSecret == c.ProtectedSecret && x.Status == SalesforceStatus.NeedsReconnect)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, SalesforceStatus.Active).SetProperty(x => x.StatusMessage, (string?)null), ct);
        if (lifted > 0) log.LogInformation("Salesforce connection {Id} of team {Team} works again: the server's credentials were fixed", c.Id, c.TeamId);
    }

    Task NeedsReconnectAsync(SalesforceConnection c, SalesforceAuthException ex, CancellationToken ct) => MarkNeedsReconnectAsync(c,
        ex.Error == "invalid_grant"
            ? $"Salesforce refused the connection's credentials ({ex.Description ?? ex.Error}): an admin connects Salesforce again. Events wait until then."
            : ex.Message + ". An admin connects Salesforce again; events wait until then.",
        ex.Message, ct);

    async Task MarkNeedsReconnectAsync(SalesforceConnection c, string why, string error, CancellationToken ct)
    {
        auth.Forget(c.Id);
        if (why.Length > 1000) why = why[..1000];
        // Only the credentials that failed: an admin who reconnected meanwhile replaced them, and stays connected.
        var marked = await db.SalesforceConnections.Where(x => x.Id == c.Id && x.ProtectedSecret == c.ProtectedSecret)
            .ExecuteUpdateAsync(u => u.SetProperty(x => x.Status, SalesforceStatus.NeedsReconnect).SetProperty(x => x.StatusMessage, why), ct);
        if (marked > 0) log.LogWarning("Salesforce connection {Id} of team {Team} needs reconnecting: {Error}", c.Id, c.TeamId, error);
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

    sealed record Person(string Id, string Email, string? AccountId, bool IsLead);

    /// <summary>The field that relates a Task to several Contacts (or one Lead) in an org with Shared Activities.</summary>
    const string TaskWhoIds = "TaskWhoIds";

    /// <summary>Salesforce relates a Task to one Lead or up to 50 Contacts (TaskRelation, Shared Activities).</summary>
    internal const int MaxContactsPerTask = 50;

    /// <summary>Addresses per SOQL query: the query goes in the URL, and a message may name hundreds of people.</summary>
    const int AddressesPerQuery = 50;

    /// <summary>
    /// Whom the Task is related to (the first is its WhoId), the people Salesforce knows that it could not be related
    /// to, and why.
    /// </summary>
    sealed record People(List<Person> Related, List<Person> NotRelated, string? Why)
    {
        /// <summary>Only the first person related, the others named (the org refused to relate several).</summary>
        public People FirstOnly(string why) => new([Related[0]], [.. Related.Skip(1), .. NotRelated], why);

        /// <summary>The line the Task's description carries about the people it is not related to, if any.</summary>
        public string? Note => NotRelated.Count switch
        {
            0 => null,
            <= NamedInNote => $"Not related to this Task ({Why}): {string.Join(", ", NotRelated.Select(n => n.Email))}.",
            _ => $"Not related to this Task ({Why}): {string.Join(", ", NotRelated.Take(NamedInNote).Select(n => n.Email))} and {NotRelated.Count - NamedInNote} more.",
        };

        /// <summary>A message to hundreds of people: the note names some, so that the Task's tracking line still fits.</summary>
        const int NamedInNote = 60;

        /// <summary>What the delivery log says beyond "delivered": how many people, and the note.</summary>
        public string? Outcome()
        {
            if (Related.Count <= 1 && NotRelated.Count == 0) return null;
            var related = Related.Count == 1 ? $"Related to 1 {(Related[0].IsLead ? "Lead" : "Contact")}." : $"Related to {Related.Count} Contacts.";
            return Note is null ? related : related + " " + Note;
        }
    }

    static string? Join(string? a, string? b) => a is null ? b : b is null ? a : a + " " + b;

    /// <summary>
    /// What the Task is about (its WhatId). A Task on a Lead has none (Salesforce refuses one); a Contact's is its
    /// Account, or when the team relates Tasks to Opportunities (its choice, else the server's
    /// <see cref="SalesforceOptions.RelateToOpportunity"/>) an open Opportunity when exactly one fits:
    /// the only open one the Contact has a contact role on (what Salesforce's own email capture relates by), else, when
    /// the Contact has a role on none, the Account's only open one. Several: the Account, saying so. A limit or an
    /// outage is thrown (retried); Opportunities this user cannot read leave the Task on the Account, saying why.
    /// </summary>
    async Task<(string? WhatId, string? Note)> WhatAsync(SalesforceConnection c, Person who, CancellationToken ct)
    {
        if (who.IsLead) return (null, null);
        if (!SalesforceService.RelatesToOpportunity(c, options.Value)) return (who.AccountId, null);
        try
        {
            var roles = await client.QueryAsync(c,
                $"SELECT Id, OpportunityId FROM OpportunityContactRole WHERE ContactId = {SalesforceClient.Literal(who.Id)} AND Opportunity.IsClosed = false LIMIT 20", ct);
            var open = roles.Select(r => r["OpportunityId"]).OfType<string>().Distinct().ToList();
            if (open.Count == 1) return (open[0], "On the open Opportunity the Contact has a role on.");
            if (open.Count > 1) return (who.AccountId, $"On the Account: the Contact has a role on {open.Count} open Opportunities.");
            if (who.AccountId is null) return (null, null);
            var ofAccount = await client.QueryAsync(c,
                $"SELECT Id FROM Opportunity WHERE AccountId = {SalesforceClient.Literal(who.AccountId)} AND IsClosed = false LIMIT 2", ct);
            return ofAccount.Count switch
            {
                1 => (ofAccount[0].Id, "On the Account's only open Opportunity."),
                0 => (who.AccountId, null),
                _ => (who.AccountId, "On the Account: it has several open Opportunities."),
            };
        }
        catch (SalesforceApiException ex) when (Classify(ex).Outcome == DeliveryOutcome.Dead)
        {
            log.LogWarning("Salesforce refused the Opportunity lookup for connection {Id} of team {Team}; the Task is on the Account: {Error}",
                c.Id, c.TeamId, ex.Message);
            return (who.AccountId, $"On the Account: Opportunities could not be read ({Classify(ex).Detail}).");
        }
    }

    static bool Names(SalesforceError e, string field) =>
        e.Fields.Contains(field, StringComparer.OrdinalIgnoreCase) || e.Message.Contains(field, StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether the org has Shared Activities: its Task has the <c>TaskWhoIds</c> field for this user to set (a describe of
    /// Task, remembered per connection for <see cref="SalesforceAuth.OrgFeaturesLifetime"/>). A limit or an outage is
    /// thrown (the delivery is retried); a describe Salesforce refuses outright counts as no Shared Activities, as before.
    /// </summary>
    async Task<bool> SharedActivitiesAsync(SalesforceConnection c, CancellationToken ct)
    {
        if (auth.SharedActivities(c) is { } known) return known;
        bool on;
        try
        {
            on = (await client.WritableFieldsAsync(c, "Task", ct)).Contains(TaskWhoIds);
        }
        catch (SalesforceApiException ex) when (Classify(ex).Outcome == DeliveryOutcome.Dead)
        {
            log.LogWarning("Salesforce refused to describe Task for connection {Id} of team {Team}; Tasks are related to one person: {Error}",
                c.Id, c.TeamId, ex.Message);
            on = false;
        }
        auth.RememberSharedActivities(c.Id, on);
        log.LogInformation("Salesforce connection {Id} of team {Team}: Shared Activities {State}", c.Id, c.TeamId, on ? "on" : "off");
        return on;
    }

    /// <summary>
    /// The people the event names that Salesforce knows, in the event's order: Contacts with one of the addresses, else
    /// unconverted Leads. Without Shared Activities, the first one (today's single WhoId; the queries stop there). With
    /// it, up to 50 Contacts, or one Lead when no address is a Contact's (Salesforce relates a Task to one Lead or up to
    /// 50 Contacts, never both); the others it knows are named in the Task. Addresses go in as escaped literals, 50 a query.
    /// </summary>
    async Task<People> FindPeopleAsync(SalesforceConnection c, List<string> addresses, bool shared, CancellationToken ct)
    {
        var contacts = await MatchAsync(c, addresses, "SELECT Id, AccountId, Email FROM Contact WHERE Email IN ({0}) LIMIT 200", all: shared, ct);
        var found = addresses.Where(contacts.ContainsKey)
            .Select(a => new Person(contacts[a].Id, a, string.IsNullOrEmpty(contacts[a]["AccountId"]) ? null : contacts[a]["AccountId"], false))
            .DistinctBy(p => p.Id).ToList();
        if (!shared && found.Count > 0) return new People([found[0]], [], null);

        var rest = addresses.Where(a => !contacts.ContainsKey(a)).ToList();
        var leadRows = rest.Count == 0 ? []
            : await MatchAsync(c, rest, "SELECT Id, Email FROM Lead WHERE Email IN ({0}) AND IsConverted = false LIMIT 200", all: shared, ct);
        var leads = rest.Where(leadRows.ContainsKey).Select(a => new Person(leadRows[a].Id, a, null, true)).DistinctBy(p => p.Id).ToList();
        const string why = "Salesforce relates a Task to one Lead or up to 50 Contacts";
        if (found.Count > 0) return new People([.. found.Take(MaxContactsPerTask)], [.. found.Skip(MaxContactsPerTask), .. leads], why);
        if (leads.Count > 0) return new People([leads[0]], [.. leads.Skip(1)], why);
        return new People([], [], null);
    }

    /// <summary>
    /// The first row for each address (case-insensitive), querying 50 addresses at a time in the event's order; unless
    /// <paramref name="all"/>, it stops at the first query that finds someone.
    /// </summary>
    async Task<Dictionary<string, SalesforceRecord>> MatchAsync(SalesforceConnection c, List<string> addresses, string soql, bool all, CancellationToken ct)
    {
        var matched = new Dictionary<string, SalesforceRecord>(StringComparer.OrdinalIgnoreCase);
        foreach (var batch in addresses.Chunk(AddressesPerQuery))
        {
            var rows = await client.QueryAsync(c, string.Format(CultureInfo.InvariantCulture, soql, string.Join(", ", batch.Select(SalesforceClient.Literal))), ct);
            foreach (var a in batch)
            {
                if (rows.FirstOrDefault(r => string.Equals(r["Email"], a, StringComparison.OrdinalIgnoreCase)) is { } row) matched.TryAdd(a, row);
            }
            if (!all && matched.Count > 0) break;
        }
        return matched;
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
        return new Person(id, address, null, true);

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

    /// <summary>
    /// The Task: on the first person as its WhoId (and <paramref name="what"/> as its WhatId); with Shared Activities, on all the
    /// related people through <c>TaskWhoIds</c>, which an upsert sets whole, so a redelivery relates the same people again.
    /// </summary>
    JsonObject TaskFields(OutboxPayload p, People people, string? what, bool sharedActivities)
    {
        var who = people.Related[0];
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
            ["Description"] = Cut(Description(p, when, people.Note), MaxDescription),
        };
        if (sharedActivities) fields[TaskWhoIds] = new JsonArray([.. people.Related.Select(r => (JsonNode?)r.Id)]);
        if (what is not null) fields["WhatId"] = what;
        return fields;
    }

    static string Description(OutboxPayload p, DateTimeOffset when, string? note)
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
        if (note is not null) sb.AppendLine(note);
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
