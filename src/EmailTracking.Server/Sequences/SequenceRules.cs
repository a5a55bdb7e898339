using System.Globalization;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Messages;
using Microsoft.EntityFrameworkCore;
using static EmailTracking.Server.Sequences.SequencesApi;

namespace EmailTracking.Server.Sequences;

/// <summary>
/// What the REST API and the web pages both do with templates, sequences and enrolments: who sees what, the
/// validation (errors keyed by the API's field names), saving, previews, CSV enrolment and stopping by hand.
/// Each caller only turns the outcome into its own answer (JSON problems, or errors next to form fields).
/// </summary>
public static class SequenceRules
{
    // ---- who sees what ----

    /// <summary>The team's templates.</summary>
    public static IQueryable<MailTemplate> Templates(AppDbContext db, CurrentUser me) => db.Templates.Where(t => t.TeamId == me.TeamId);

    /// <summary>Only the author or a team admin changes or deletes a template.</summary>
    public static bool MayChange(MailTemplate t, CurrentUser me) => t.UserId == me.Id || me.IsAdmin;

    /// <summary>The user's sequences (an admin's: the team's).</summary>
    public static IQueryable<Sequence> Visible(AppDbContext db, CurrentUser me) =>
        me.IsAdmin ? db.Sequences.Where(s => s.TeamId == me.TeamId) : db.Sequences.Where(s => s.TeamId == me.TeamId && s.UserId == me.Id);

    /// <summary>The user's own sequences: only the owner changes, pauses or enrols (the mail goes from their mailbox).</summary>
    public static IQueryable<Sequence> Own(AppDbContext db, CurrentUser me) => db.Sequences.Where(s => s.TeamId == me.TeamId && s.UserId == me.Id);

    public static async Task<Sequence?> OwnAsync(AppDbContext db, CurrentUser me, Guid id, CancellationToken ct) =>
        await Own(db, me).Include(s => s.Steps).AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct);

    // ---- templates ----

    /// <summary>
    /// Why a text with U+0000 in it is refused, or null. PostgreSQL text cannot hold the character (the insert failed,
    /// a 500) and no mail header or body carries it; it is refused on SQLite too, so that a template or sequence saved
    /// on one database would be saved on the other.
    /// </summary>
    public static string? NulProblem(string field, string? value) =>
        value is not null && value.Contains('\0')
            ? $"The {field} contains a NUL character (U+0000), which cannot be stored or sent; remove it."
            : null;

    public static Dictionary<string, string[]> ValidateTemplate(TemplateRequest r)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(r.Name) || r.Name.Trim().Length > 200) errors["name"] = ["A name of 1 to 200 characters is required."];
        if (r.Subject is null) errors["subject"] = ["A subject is required (empty on a follow-up: it then answers the first step's)."];
        else if (r.Subject.Length > MessagesApi.MaxSubjectLength) errors["subject"] = [$"The subject is longer than {MessagesApi.MaxSubjectLength} characters."];
        if (string.IsNullOrWhiteSpace(r.Html)) errors["html"] = ["The body is required."];
        else if (Encoding.UTF8.GetByteCount(r.Html) > MaxTemplateBytes) errors["html"] = [$"The body is larger than {MaxTemplateBytes} bytes."];
        foreach (var (key, value) in new[] { ("name", r.Name), ("subject", r.Subject), ("html", r.Html) })
        {
            if (!errors.ContainsKey(key) && NulProblem(key, value) is { } nul) errors[key] = [nul];
        }
        if (errors.Count == 0)
        {
            foreach (var problem in MergeTemplates.Check(r.Subject!, r.Html!))
            {
                var key = problem.StartsWith("Subject", StringComparison.Ordinal) ? "subject" : "html";
                errors[key] = [.. errors.GetValueOrDefault(key) ?? [], problem];
            }
        }
        return errors;
    }

    /// <summary>A new template, or the validation errors.</summary>
    public static async Task<(MailTemplate? Template, Dictionary<string, string[]> Errors)> CreateTemplateAsync(AppDbContext db, CurrentUser me, TemplateRequest request,
        DateTimeOffset now, CancellationToken ct)
    {
        var errors = ValidateTemplate(request);
        if (errors.Count > 0) return (null, errors);
        var t = new MailTemplate { TeamId = me.TeamId, UserId = me.Id, Name = request.Name!.Trim(), Subject = request.Subject!.Trim(), Html = request.Html!, CreatedAt = now, UpdatedAt = now };
        db.Templates.Add(t);
        await db.SaveChangesAsync(ct);
        return (t, errors);
    }

    /// <summary>Changes a template (the caller checked <see cref="MayChange"/>); the validation errors when it is not good.</summary>
    public static async Task<Dictionary<string, string[]>> UpdateTemplateAsync(AppDbContext db, MailTemplate t, TemplateRequest request, DateTimeOffset now, CancellationToken ct)
    {
        var errors = ValidateTemplate(request);
        if (errors.Count > 0) return errors;
        t.Name = request.Name!.Trim();
        t.Subject = request.Subject!.Trim();
        t.Html = request.Html!;
        t.UpdatedAt = now;
        await db.SaveChangesAsync(ct);
        return errors;
    }

    /// <summary>Why a template cannot be deleted (sequences use it), or null when it can.</summary>
    public static async Task<string?> InUseAsync(AppDbContext db, Guid templateId, CancellationToken ct)
    {
        var users = await db.SequenceSteps.Where(s => s.TemplateId == templateId).Join(db.Sequences, s => s.SequenceId, q => q.Id, (s, q) => q.Name).Distinct().ToListAsync(ct);
        return users.Count > 0 ? $"Sequences use it: {string.Join(", ", users)}. Change their steps first." : null;
    }

    /// <summary>A subject and body as one recipient would get them from the user (their sender fields), or why they cannot be written.</summary>
    public static async Task<MergeResult> PreviewAsync(AppDbContext db, CurrentUser me, string subject, string html, RecipientInput? input, CancellationToken ct)
    {
        var sender = await db.Users.AsNoTracking().Where(u => u.Id == me.Id).Select(u => new { u.DisplayName, u.Email }).FirstAsync(ct);
        input ??= new RecipientInput(null);
        var fields = new Dictionary<string, string>();
        if (AccountService.NormalizeAddress(input.Email) is { } a) fields["email"] = a;
        foreach (var (k, v) in new[] { ("first_name", input.FirstName), ("last_name", input.LastName), ("company", input.Company) })
            if (v is not null) fields[k] = v;
        foreach (var (k, v) in input.Fields ?? [])
            if (MergeTemplates.FieldName(k) is { } name && v is not null) fields.TryAdd(name, v);
        return MergeTemplates.Render(subject, html, SequenceEnroller.Merge(fields, SequenceEnroller.SenderFields(sender.DisplayName, sender.Email)));
    }

    // ---- sequences ----

    /// <summary>Checks a sequence request; the steps as entities when it is good.</summary>
    public static async Task<(List<SequenceStep>? Steps, Dictionary<string, string[]> Errors)> ValidateSequenceAsync(SequenceRequest r, CurrentUser me, AppDbContext db, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(r.Name) || r.Name.Trim().Length > 200) errors["name"] = ["A name of 1 to 200 characters is required."];
        else if (NulProblem("name", r.Name) is { } nul) errors["name"] = [nul];
        if (r.MailboxId is not { } mailboxId || !await db.Mailboxes.AnyAsync(m => m.Id == mailboxId && m.UserId == me.Id, ct))
            errors["mailboxId"] = ["Choose one of your connected mailboxes (connect one on the Mailboxes page): the steps are sent through it."];
        if (SendTimes.Zone(r.TimeZone ?? "UTC") is null) errors["timeZone"] = [$"'{r.TimeZone}' is not a time zone (use an IANA name such as Europe/Vienna)."];
        if (r.AutoReplyPauseDays is < 1 or > 90) errors["autoReplyPauseDays"] = ["Between 1 and 90 days."];
        var steps = new List<SequenceStep>();
        var stepErrors = new List<string>();
        if (r.Steps is not { Count: > 0 }) stepErrors.Add("At least one step is required.");
        else if (r.Steps.Count > MaxSteps) stepErrors.Add($"At most {MaxSteps} steps.");
        else
        {
            var ids = r.Steps.Select(x => x?.TemplateId ?? Guid.Empty).ToList();
            var templates = await db.Templates.Where(t => ids.Contains(t.Id) && t.TeamId == me.TeamId).ToDictionaryAsync(t => t.Id, ct);
            for (var i = 0; i < r.Steps.Count; i++)
            {
                var x = r.Steps[i];
                var n = i + 1;
                if (x is null) { stepErrors.Add($"Step {n}: a step is an object with a templateId."); continue; }
                if (x.TemplateId is not { } tid || !templates.TryGetValue(tid, out var template)) { stepErrors.Add($"Step {n}: no such template."); continue; }
                if (i == 0 && template.Subject.Trim().Length == 0) stepErrors.Add($"Step 1: its template has no subject (only follow-ups may answer an earlier one).");
                if (x.DelayDays is < 0 or > 365) stepErrors.Add($"Step {n}: the delay is 0 to 365 days.");
                var start = ParseTime(x.WindowStart, new TimeOnly(9, 0));
                var end = ParseTime(x.WindowEnd, new TimeOnly(17, 0));
                if (start is null || end is null) { stepErrors.Add($"Step {n}: the send window is two times like 09:00 and 17:00."); continue; }
                if (end <= start) { stepErrors.Add($"Step {n}: the send window must end after it starts."); continue; }
                steps.Add(new SequenceStep
                {
                    Position = i, TemplateId = tid, DelayDays = x.DelayDays ?? (i == 0 ? 0 : 3), BusinessDaysOnly = x.BusinessDaysOnly ?? true,
                    WindowStart = start.Value, WindowEnd = end.Value,
                });
            }
        }
        if (stepErrors.Count > 0) errors["steps"] = [.. stepErrors];
        return (errors.Count == 0 ? steps : null, errors);
    }

    static TimeOnly? ParseTime(string? text, TimeOnly fallback) =>
        string.IsNullOrWhiteSpace(text) ? fallback
        : TimeOnly.TryParseExact(text.Trim(), ["HH:mm", "H:mm", "HH:mm:ss"], CultureInfo.InvariantCulture, DateTimeStyles.None, out var t) ? t : null;

    /// <summary>A new sequence, or the validation errors.</summary>
    public static async Task<(Sequence? Sequence, Dictionary<string, string[]> Errors)> CreateSequenceAsync(AppDbContext db, CurrentUser me, SequenceRequest request,
        DateTimeOffset now, CancellationToken ct)
    {
        var (steps, errors) = await ValidateSequenceAsync(request, me, db, ct);
        if (steps is null) return (null, errors);
        var s = new Sequence
        {
            TeamId = me.TeamId, UserId = me.Id, Name = request.Name!.Trim(), MailboxId = request.MailboxId!.Value, TimeZone = SendTimes.Zone(request.TimeZone ?? "UTC")!.Id,
            StopCompanyOnReply = request.StopCompanyOnReply ?? false, AutoReplyPauseDays = request.AutoReplyPauseDays ?? 7, CreatedAt = now, Steps = steps,
        };
        db.Sequences.Add(s);
        await db.SaveChangesAsync(ct);
        return (s, errors);
    }

    /// <summary>Changes one of the user's sequences (tracked, steps included); enrolments keep their place. The validation errors when it is not good.</summary>
    public static async Task<Dictionary<string, string[]>> UpdateSequenceAsync(AppDbContext db, CurrentUser me, Sequence s, SequenceRequest request, CancellationToken ct)
    {
        var (steps, errors) = await ValidateSequenceAsync(request, me, db, ct);
        if (steps is null) return errors;
        if (await ReachedStepsMovedAsync(db, s, steps, ct) is { } moved)
        {
            errors["steps"] = [moved];
            return errors;
        }
        s.Name = request.Name!.Trim();
        s.MailboxId = request.MailboxId!.Value;
        // Like the other settings, a zone left out keeps the one the sequence has.
        s.TimeZone = request.TimeZone is null ? s.TimeZone : SendTimes.Zone(request.TimeZone)!.Id;
        s.StopCompanyOnReply = request.StopCompanyOnReply ?? s.StopCompanyOnReply;
        s.AutoReplyPauseDays = request.AutoReplyPauseDays ?? s.AutoReplyPauseDays;
        // The old steps go and the new ones come in one transaction: a scheduler pass in between would see a sequence
        // with no steps and complete every due enrolment.
        await using var tx = await db.Database.BeginTransactionAsync(ct);
        db.SequenceSteps.RemoveRange(s.Steps);
        await db.SaveChangesAsync(ct);
        foreach (var step in steps) step.SequenceId = s.Id;
        db.SequenceSteps.AddRange(steps);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        s.Steps = steps;
        return errors;
    }

    /// <summary>
    /// Why the new steps cannot replace the old, or null when they can. An enrolment knows its place by the index of
    /// its next step, and a step's sends by its position: a step removed, inserted or moved before the place of
    /// someone still enrolled (active or paused, or with a step being sent) would make them skip a step or be sent one
    /// again. So the steps up to the furthest such place keep their templates and order; those after it may change.
    /// </summary>
    static async Task<string?> ReachedStepsMovedAsync(AppDbContext db, Sequence s, List<SequenceStep> steps, CancellationToken ct)
    {
        var live = db.Enrolments.Where(e => e.SequenceId == s.Id && (e.State == EnrolmentState.Active || e.State == EnrolmentState.Paused));
        var next = await live.Select(e => (int?)e.NextStep).MaxAsync(ct) ?? 0;
        var sending = await db.SequenceSends.Where(x => x.State == SequenceSendState.Intent && live.Any(e => e.Id == x.EnrolmentId))
            .Select(x => (int?)x.Step + 1).MaxAsync(ct) ?? 0;
        var old = s.Steps.OrderBy(x => x.Position).ToList();
        var reached = Math.Min(Math.Max(next, sending), old.Count);
        if (reached == 0) return null;
        for (var i = 0; i < reached; i++)
        {
            if (i < steps.Count && steps[i].TemplateId == old[i].TemplateId) continue;
            var people = await live.CountAsync(e => e.NextStep > i, ct);
            var who = people == 0 ? "someone still enrolled is being sent it now" : people == 1 ? "1 person still enrolled has had it" : $"{people} people still enrolled have had it";
            var through = reached == 1 ? "Step 1" : $"Steps 1 to {reached}";
            return $"Step {i + 1} cannot be removed, moved or given another template: {who}, and they would skip a step or be sent one again. " +
                   $"{through} must stay as they are while people are enrolled at or past them; add, change or remove the steps after. " +
                   "To change the template's words, edit the template itself.";
        }
        return null;
    }

    /// <summary>Pauses or resumes one of the user's sequences; false when it is not theirs.</summary>
    public static async Task<bool> SetStatusAsync(AppDbContext db, CurrentUser me, Guid id, SequenceStatus status, SequenceSignal? signal, CancellationToken ct)
    {
        var n = await Own(db, me).Where(s => s.Id == id).ExecuteUpdateAsync(u => u.SetProperty(s => s.Status, status), ct);
        signal?.Poke();
        return n > 0;
    }

    /// <summary>How many enrolments of a sequence are in each state.</summary>
    public static async Task<Dictionary<EnrolmentState, int>> CountsAsync(AppDbContext db, Guid sequenceId, CancellationToken ct)
    {
        var counts = await db.Enrolments.Where(e => e.SequenceId == sequenceId).GroupBy(e => e.State).Select(g => new { g.Key, N = g.Count() }).ToListAsync(ct);
        return Enum.GetValues<EnrolmentState>().ToDictionary(v => v, v => counts.FirstOrDefault(c => c.Key == v)?.N ?? 0);
    }

    // ---- enrolments ----

    /// <summary>
    /// Enrols the rows of a CSV file's text: good rows are enrolled, every bad one (unreadable or refused) is reported by
    /// its row number. A file that cannot be used at all gives a title and detail instead of a report.
    /// </summary>
    public static async Task<(EnrolReport? Report, string? Title, string? Detail)> EnrolCsvAsync(SequenceEnroller enroller, Sequence sequence, CurrentUser me, string text,
        SequenceSignal? signal, CancellationToken ct)
    {
        if (text.Contains('\0')) return (null, "This is not a CSV file.", "It holds binary data. Save the sheet as CSV (UTF-8) and upload that.");
        var (rows, broken, fileError) = SequenceEnroller.ReadCsv(new StringReader(text));
        if (fileError is not null) return (null, "The CSV file cannot be used.", fileError);
        var report = rows.Count == 0 ? new EnrolReport([], []) : await enroller.EnrolAsync(sequence, me, rows, ct);
        report.Rejected.AddRange(broken);
        report.Rejected.Sort((a, b) => a.Row.CompareTo(b.Row));
        if (report.Enrolled.Count > 0) signal?.Poke();
        return (report, null, null);
    }

    /// <summary>Stops a live enrolment of a sequence the user sees, by hand; false when there is no such enrolment.</summary>
    public static async Task<bool> StopAsync(AppDbContext db, CurrentUser me, Guid enrolmentId, DateTimeOffset now, CancellationToken ct)
    {
        var visible = Visible(db, me).Select(s => s.Id);
        var e = await db.Enrolments.FirstOrDefaultAsync(x => x.Id == enrolmentId && visible.Contains(x.SequenceId), ct);
        if (e is null) return false;
        if (e.State is EnrolmentState.Active or EnrolmentState.Paused)
        {
            e.State = EnrolmentState.Stopped;
            e.StopReason = StopReason.Manual;
            e.Note = $"Stopped by {me.Email}.";
            e.NextAt = null;
            e.UpdatedAt = now;
            await db.SaveChangesAsync(ct);
        }
        return true;
    }
}
