using System.Globalization;
using System.Text.Json;
using CsvHelper;
using CsvHelper.Configuration;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Messages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Sequences;

/// <summary>One person to enrol: the standard fields, a time zone, and custom merge fields.</summary>
public sealed record RecipientInput(string? Email, string? FirstName = null, string? LastName = null, string? Company = null, string? TimeZone = null,
    Dictionary<string, string?>? Fields = null);

public sealed record EnrolledRow(int Row, Guid Id, string Email, DateTimeOffset? NextAt);

public sealed record RejectedRow(int Row, string? Email, List<string> Errors);

/// <summary>What an enrolment request did, row by row: the good rows are enrolled, each bad one says why it is not.</summary>
public sealed record EnrolReport(List<EnrolledRow> Enrolled, List<RejectedRow> Rejected);

/// <summary>
/// Enrols people in a sequence. Every row is checked before anything is sent: the address, the time zone, the
/// team's suppression list, an earlier enrolment, and every step's template rendered with the row's fields (a field
/// the template needs and the row lacks is an error). Good rows are enrolled even when others are not.
/// </summary>
public sealed class SequenceEnroller(AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock)
{
    public const int MaxRows = 5000;
    public const int MaxFieldValue = 1000;

    /// <summary>Enrols the rows (row numbers as the caller counts them) in a sequence whose steps are loaded.</summary>
    public async Task<EnrolReport> EnrolAsync(Sequence sequence, CurrentUser me, IReadOnlyList<(int Row, RecipientInput Input)> rows, CancellationToken ct)
    {
        var steps = sequence.Steps.OrderBy(s => s.Position).ToList();
        var templateIds = steps.Select(s => s.TemplateId).Distinct().ToList();
        var templates = await db.Templates.AsNoTracking().Where(t => templateIds.Contains(t.Id)).ToDictionaryAsync(t => t.Id, ct);
        var sender = await db.Users.AsNoTracking().Where(u => u.Id == sequence.UserId).Select(u => new { u.DisplayName, u.Email }).FirstAsync(ct);
        var senderFields = SenderFields(sender.DisplayName, sender.Email);

        var addresses = new List<string>();
        foreach (var (_, input) in rows)
            if (AccountService.NormalizeAddress(input.Email) is { } a) addresses.Add(a);
        // One person however their domain was written (punycode or Unicode): looked up in both forms, compared by
        // AccountService.AddressKey, so that nobody is enrolled twice or written to after they were suppressed in the other.
        var forms = addresses.SelectMany(AccountService.StoredForms).Distinct().ToList();
        var enrolled = (await db.Enrolments.Where(e => e.SequenceId == sequence.Id && forms.Contains(e.Address)).ToListAsync(ct))
            .GroupBy(e => AccountService.AddressKey(e.Address)).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);
        var suppressed = (await db.Suppressions.Where(s => s.TeamId == sequence.TeamId && forms.Contains(s.Address)).ToListAsync(ct))
            .GroupBy(s => AccountService.AddressKey(s.Address)).ToDictionary(g => g.Key, g => g.First(), StringComparer.Ordinal);

        var report = new EnrolReport([], []);
        var seen = new Dictionary<string, int>();
        var now = clock.GetUtcNow();
        var added = new List<(int Row, Enrolment Enrolment)>();
        foreach (var (row, input) in rows)
        {
            var errors = new List<string>();
            var address = AccountService.NormalizeAddress(input.Email);
            var key = address is null ? null : AccountService.AddressKey(address);
            var before = key is null ? null : enrolled.GetValueOrDefault(key);
            if (address is null) errors.Add(string.IsNullOrWhiteSpace(input.Email) ? "No email address." : $"'{Short(input.Email!)}' is not an email address.");
            else if (seen.TryGetValue(key!, out var first)) errors.Add($"{address} is also on row {first}.");
            else if (before is not null && Resumable(before, steps.Count) is { } refusal) errors.Add($"{address} {refusal}");
            else if (suppressed.TryGetValue(key!, out var s))
                errors.Add($"{address} is suppressed for your team ({Describe(s.Reason)} on {s.CreatedAt:yyyy-MM-dd}): sequences never write to it.");
            if (key is not null) seen.TryAdd(key, row);

            var zoneId = string.IsNullOrWhiteSpace(input.TimeZone) ? sequence.TimeZone : input.TimeZone.Trim();
            var zone = SendTimes.Zone(zoneId);
            if (zone is null) errors.Add($"'{Short(zoneId)}' is not a time zone (use an IANA name such as Europe/Vienna).");

            var fields = Fields(input, address, errors);
            foreach (var step in steps)
            {
                if (!templates.TryGetValue(step.TemplateId, out var template)) { errors.Add($"Step {step.Position + 1}: its template no longer exists."); continue; }
                var merged = MergeTemplates.Render(template.Subject, template.Html, Merge(fields, senderFields));
                errors.AddRange(merged.Errors.Select(e => $"Step {step.Position + 1} ('{template.Name}'): {e}"));
                if (merged.Ok && merged.Subject.Length > MessagesApi.MaxSubjectLength)
                    errors.Add($"Step {step.Position + 1} ('{template.Name}'): with this row's fields its subject is longer than {MessagesApi.MaxSubjectLength} characters.");
            }
            if (errors.Count > 0)
            {
                report.Rejected.Add(new RejectedRow(row, address ?? input.Email, errors));
                continue;
            }
            if (before is not null)
            {
                await ResumeAsync(before, fields, zone!, steps, me, now, ct);
                added.Add((row, before));
                continue;
            }
            var firstStep = steps[0];
            var at = address!;
            var enrolment = new Enrolment
            {
                SequenceId = sequence.Id,
                TeamId = sequence.TeamId,
                UserId = sequence.UserId,
                Address = at,
                Domain = at[(at.IndexOf('@') + 1)..],
                Fields = JsonSerializer.Serialize(fields),
                TimeZone = zone!.Id,
                State = EnrolmentState.Active,
                NextStep = 0,
                NextAt = SendTimes.Due(now, firstStep.DelayDays, firstStep.BusinessDaysOnly, firstStep.WindowStart, firstStep.WindowEnd, zone),
                UnsubscribeToken = Tokens.NewTrackingToken(),
                CreatedAt = now,
                UpdatedAt = now,
            };
            db.Enrolments.Add(enrolment);
            added.Add((row, enrolment));
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // Someone enrolled one of these at the same moment: nothing of this request was kept; say so for every row.
            db.ChangeTracker.Clear();
            return new EnrolReport([], [.. rows.Select(r => new RejectedRow(r.Row, r.Input.Email,
                ["Another request enrolled some of these addresses at the same time; nothing was enrolled. Send the rows again."]))]);
        }
        report.Enrolled.AddRange(added.Select(a => new EnrolledRow(a.Row, a.Enrolment.Id, a.Enrolment.Address, a.Enrolment.NextAt)));
        return report;
    }

    /// <summary>
    /// Why an earlier enrolment of the address keeps it from being enrolled again, or null when it can go on. One
    /// stopped by its owner or by a failure on our side (its mailbox removed, a step that may or may not have left)
    /// goes on from the step it stopped before; one that ended by the recipient's doing (an answer, a bounce, an
    /// unsubscription) or had every step stays as it is.
    /// </summary>
    static string? Resumable(Enrolment e, int stepCount) => e switch
    {
        { State: EnrolmentState.Active or EnrolmentState.Paused } => "is already enrolled in this sequence.",
        { State: EnrolmentState.Completed } => "has already had every step of this sequence.",
        { State: EnrolmentState.Stopped, StopReason: StopReason.Failed or StopReason.Manual } when e.NextStep < stepCount => null,
        { State: EnrolmentState.Stopped, StopReason: StopReason.Failed or StopReason.Manual } => "has already had every step of this sequence.",
        _ => $"was enrolled in this sequence before and stopped ({Describe(e.StopReason)}): it is not enrolled again.",
    };

    static string Describe(StopReason r) => r switch
    {
        StopReason.Replied => "they answered",
        StopReason.ColleagueReplied => "a colleague at their company answered",
        StopReason.Bounced => "their address bounced",
        StopReason.Unsubscribed => "they unsubscribed",
        StopReason.Suppressed => "the address is suppressed",
        StopReason.Complained => "they marked the mail as spam",
        StopReason.LeftCompany => "they have left their company",
        _ => r.ToString().ToLowerInvariant(),
    };

    /// <summary>
    /// Enrols again an enrolment that was stopped by hand or by a failure: the row's fields and zone, and the step it
    /// stopped before, due at the window's next opening (the first step after its delay, when none was sent). A step
    /// that may or may not have left is taken as not sent (the stop asked the user to look in their Sent folder
    /// before enrolling again): it is prepared and sent afresh. The step gets its full tries again: after a stop for
    /// "failed 5 times" (a server that greylisted for a while), the old count would stop it at the first refusal.
    /// </summary>
    async Task ResumeAsync(Enrolment e, Dictionary<string, string> fields, TimeZoneInfo zone, List<SequenceStep> steps, CurrentUser me, DateTimeOffset now, CancellationToken ct)
    {
        var step = steps[e.NextStep];
        var unsent = await db.SequenceSends.Where(x => x.EnrolmentId == e.Id && x.Step == step.Position && x.State != SequenceSendState.Sent).ToListAsync(ct);
        foreach (var x in unsent)
        {
            x.Attempts = 0;
            if (x.State != SequenceSendState.Intent) continue;
            x.State = SequenceSendState.Failed;
            x.Error = $"Interrupted while being sent; taken as not sent when {me.Email} enrolled the address again on {now:yyyy-MM-dd}.";
        }
        e.Fields = JsonSerializer.Serialize(fields);
        e.TimeZone = zone.Id;
        e.State = EnrolmentState.Active;
        e.StopReason = StopReason.None;
        e.PausedUntil = null;
        e.LeaseOwner = null;
        e.LeaseUntil = null;
        e.NextAt = SendTimes.Due(now, e.NextStep == 0 ? step.DelayDays : 0, step.BusinessDaysOnly, step.WindowStart, step.WindowEnd, zone);
        e.Note = e.NextStep == 0 ? null : $"Enrolled again by {me.Email} on {now:yyyy-MM-dd}; goes on from step {e.NextStep + 1}.";
        e.UpdatedAt = now;
    }

    public static Dictionary<string, string> SenderFields(string? displayName, string? email)
    {
        var name = string.IsNullOrWhiteSpace(displayName) ? "" : displayName.Trim();
        var d = new Dictionary<string, string>();
        if (name.Length > 0)
        {
            d["sender_name"] = name;
            d["sender_first_name"] = name.Split(' ', StringSplitOptions.RemoveEmptyEntries)[0];
        }
        return d;
    }

    /// <summary>The recipient's fields and the sender's together (the recipient's cannot hide the sender's).</summary>
    public static Dictionary<string, string> Merge(IReadOnlyDictionary<string, string> recipient, IReadOnlyDictionary<string, string> sender)
    {
        var all = new Dictionary<string, string>(recipient);
        foreach (var (k, v) in sender) all[k] = v;
        return all;
    }

    /// <summary>The row's merge fields by name: email, the standard ones given, and the custom ones (names normalised).</summary>
    static Dictionary<string, string> Fields(RecipientInput input, string? address, List<string> errors)
    {
        var fields = new Dictionary<string, string>(StringComparer.Ordinal);
        void Set(string name, string? value)
        {
            if (value is null) return;
            var v = value.Trim();
            if (v.Length > MaxFieldValue) { errors.Add($"'{name}' is longer than {MaxFieldValue} characters."); return; }
            fields[name] = v;
        }
        if (address is not null) fields["email"] = address;
        Set("first_name", input.FirstName);
        Set("last_name", input.LastName);
        Set("company", input.Company);
        foreach (var (key, value) in input.Fields ?? [])
        {
            var name = MergeTemplates.FieldName(key);
            if (name is null) { errors.Add($"'{Short(key)}' cannot be a field name (letters, digits and spaces, starting with a letter)."); continue; }
            if (name is "email" || MergeTemplates.SenderFields.Contains(name)) { errors.Add($"'{name}' is set by EmailTracking and cannot be a custom field."); continue; }
            // A custom column named like a standard field fills it when the standard one is not given.
            if (!fields.ContainsKey(name)) Set(name, value);
        }
        return fields;
    }

    static string Describe(SuppressionReason r) => r switch
    {
        SuppressionReason.Unsubscribed => "unsubscribed",
        SuppressionReason.Bounced => "bounced",
        SuppressionReason.Complained => "marked as spam",
        _ => "added by hand",
    };

    static string Short(string s) => s.Length <= 80 ? s : s[..80] + "…";

    /// <summary>
    /// A CSV file as rows (the header is row 1): email, first name, last name, company and time zone columns are
    /// recognised under their usual names; every other column is a custom field. A row that cannot be read is
    /// reported with its number and the reading goes on.
    /// </summary>
    public static (List<(int Row, RecipientInput Input)> Rows, List<RejectedRow> Broken, string? FileError) ReadCsv(TextReader text)
    {
        var rows = new List<(int, RecipientInput)>();
        var broken = new List<RejectedRow>();
        var badRows = new Dictionary<int, string>();
        var config = new CsvConfiguration(CultureInfo.InvariantCulture)
        {
            DetectDelimiter = true,
            TrimOptions = TrimOptions.Trim,
            MissingFieldFound = null,
            HeaderValidated = null,
            BadDataFound = args => badRows.TryAdd(args.Context.Parser?.Row ?? 0, "it has a quote in the wrong place"),
        };
        using var csv = new CsvReader(text, config);
        string[] header;
        try
        {
            if (!csv.Read() || !csv.ReadHeader() || csv.HeaderRecord is not { Length: > 0 } h) return ([], [], "The file is empty: the first row must name the columns (email, first name, company …).");
            header = h;
        }
        catch (Exception ex) when (ex is CsvHelperException)
        {
            return ([], [], "The first row (the column names) could not be read: " + ex.Message.Split('\n')[0]);
        }
        var roles = header.Select(Role).ToArray();
        if (!roles.Contains("email")) return ([], [], "No column is named email (or e-mail, email address).");
        var duplicates = roles.Where(r => r is not null).GroupBy(r => r).Where(g => g.Count() > 1).Select(g => g.Key).ToList();
        if (duplicates.Count > 0) return ([], [], $"Two columns mean the same field: {string.Join(", ", duplicates)}.");
        var unnamed = header.Where((c, i) => roles[i] is null && !string.IsNullOrWhiteSpace(c)).ToList();
        if (unnamed.Count > 0) return ([], [], $"These column names cannot be field names: {string.Join(", ", unnamed.Select(u => $"'{Short(u)}'"))}.");

        while (true)
        {
            bool more;
            try
            {
                more = csv.Read();
            }
            catch (Exception ex) when (ex is CsvHelperException)
            {
                broken.Add(new RejectedRow(csv.Parser.Row, null, ["The row could not be read: " + ex.Message.Split('\n')[0]]));
                continue;
            }
            if (!more) break;
            var row = csv.Parser.Row;
            if (rows.Count + broken.Count >= MaxRows)
            {
                return (rows, broken, $"The file has more than {MaxRows} rows; split it.");
            }
            var record = csv.Parser.Record ?? [];
            if (record.All(string.IsNullOrWhiteSpace)) continue;
            string? Get(string role) => Array.IndexOf(roles, role) is var i and >= 0 && i < record.Length ? record[i] : null;
            if (badRows.Remove(row, out var why))
            {
                broken.Add(new RejectedRow(row, Get("email"), [$"The row could not be read: {why}."]));
                continue;
            }
            if (record.Length > header.Length)
            {
                broken.Add(new RejectedRow(row, Get("email"), [$"The row has {record.Length} values but the header names {header.Length} columns."]));
                continue;
            }
            var custom = new Dictionary<string, string?>();
            for (var i = 0; i < roles.Length; i++)
                if (roles[i] is { } r && r.StartsWith("custom:", StringComparison.Ordinal)) custom[r[7..]] = i < record.Length ? record[i] : null;
            rows.Add((row, new RecipientInput(Get("email"), Get("first_name"), Get("last_name"), Get("company"), Get("time_zone"), custom)));
        }
        return (rows, broken, null);
    }

    static string? Role(string column)
    {
        var name = MergeTemplates.FieldName(column);
        return name switch
        {
            null => null,
            "email" or "e_mail" or "email_address" or "mail" => "email",
            "first_name" or "firstname" or "given_name" => "first_name",
            "last_name" or "lastname" or "surname" or "family_name" => "last_name",
            "company" or "company_name" or "organization" or "organisation" or "account" => "company",
            "time_zone" or "timezone" or "tz" => "time_zone",
            _ => "custom:" + name,
        };
    }
}
