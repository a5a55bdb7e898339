using System.Globalization;
using System.Text;
using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.AspNetCore.Http.HttpResults;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Sequences;

/// <summary>Templates, sequences, enrolments and the suppression list (REST).</summary>
public static class SequencesApi
{
    public sealed record TemplateRequest(string? Name, string? Subject, string? Html);
    public sealed record TemplateDto(Guid Id, string Name, string Subject, string Html, List<string> Fields, DateTimeOffset UpdatedAt);
    public sealed record PreviewRequest(RecipientInput? Recipient);
    public sealed record PreviewResponse(string Subject, string Html, List<string> Errors);

    public sealed record StepRequest(Guid? TemplateId, int? DelayDays, bool? BusinessDaysOnly, string? WindowStart, string? WindowEnd);
    public sealed record SequenceRequest(string? Name, Guid? MailboxId, string? TimeZone, bool? StopCompanyOnReply, int? AutoReplyPauseDays, List<StepRequest>? Steps);
    public sealed record StepDto(int Position, Guid TemplateId, string TemplateName, int DelayDays, bool BusinessDaysOnly, string WindowStart, string WindowEnd);
    public sealed record SequenceDto(Guid Id, string Name, Guid MailboxId, string MailboxAddress, string TimeZone, bool StopCompanyOnReply, int AutoReplyPauseDays,
        SequenceStatus Status, DateTimeOffset CreatedAt, List<StepDto> Steps, Dictionary<string, int> Enrolments);

    public sealed record EnrolRequest(List<RecipientInput>? Recipients);
    public sealed record SendDto(int Step, SequenceSendState State, DateTimeOffset IntentAt, DateTimeOffset? SentAt, Guid TrackedMessageId, string? Error);
    public sealed record EnrolmentDto(Guid Id, string Email, EnrolmentState State, StopReason StopReason, string? Note, int NextStep, DateTimeOffset? NextAt,
        DateTimeOffset? PausedUntil, string TimeZone, Dictionary<string, string> Fields, List<SendDto> Sends);

    public sealed record SuppressionRequest(string? Address);
    public sealed record SuppressionDto(string Address, SuppressionReason Reason, string? Detail, DateTimeOffset CreatedAt);

    public const int MaxSteps = 20;
    public const int MaxTemplateBytes = 256 * 1024;

    public static void MapSequences(this IEndpointRouteBuilder app)
    {
        var t = app.MapGroup("/api/templates").RequireAuthorization(Auth.ApiPolicy).WithTags("Sequences");
        t.MapGet("/", ListTemplates).WithSummary("The team's email templates");
        t.MapPost("/", CreateTemplate).WithSummary("A template: subject and HTML with Liquid merge fields ({{ first_name }}); syntax errors are refused");
        t.MapGet("/{id:guid}", GetTemplate).WithSummary("One template and the fields it uses");
        t.MapPut("/{id:guid}", UpdateTemplate).WithSummary("Change a template (its owner or an admin)");
        t.MapDelete("/{id:guid}", DeleteTemplate).WithSummary("Delete a template no sequence uses");
        t.MapPost("/{id:guid}/preview", Preview).WithSummary("The template as one recipient would get it, or why it cannot be written for them");

        var s = app.MapGroup("/api/sequences").RequireAuthorization(Auth.ApiPolicy).WithTags("Sequences");
        s.MapGet("/", ListSequences).WithSummary("Your sequences (an admin's: the team's)");
        s.MapPost("/", CreateSequence).WithSummary("A sequence: steps (template, delay in days, business days, send window) sent through one of your mailboxes");
        s.MapGet("/{id:guid}", GetSequence).WithSummary("One sequence with its steps and how many enrolments are in each state");
        s.MapPut("/{id:guid}", UpdateSequence).WithSummary("Change a sequence's settings and steps (enrolments keep their place)");
        s.MapPost("/{id:guid}/pause", (Guid id, HttpContext http, AppDbContext db, CancellationToken ct) => SetStatus(id, SequenceStatus.Paused, http, db, null, ct))
            .WithSummary("Stop sending for now; enrolments keep their place");
        s.MapPost("/{id:guid}/resume", (Guid id, HttpContext http, AppDbContext db, SequenceSignal signal, CancellationToken ct) => SetStatus(id, SequenceStatus.Active, http, db, signal, ct))
            .WithSummary("Send again");
        s.MapGet("/{id:guid}/enrolments", ListEnrolments).WithSummary("Who is enrolled, where each is, and why any stopped");
        s.MapPost("/{id:guid}/enrolments", Enrol).WithSummary("Enrol people; each row is checked (address, suppression, time zone, every step's merge fields) and reported");
        s.MapPost("/{id:guid}/enrolments/csv", EnrolCsv).WithSummary("Enrol from a CSV file (columns email, first name, last name, company, time zone, and custom fields)")
            .DisableAntiforgery().WithMetadata(new Microsoft.AspNetCore.Mvc.RequestSizeLimitAttribute(10 * 1024 * 1024));

        var e = app.MapGroup("/api/enrolments").RequireAuthorization(Auth.ApiPolicy).WithTags("Sequences");
        e.MapPost("/{id:guid}/stop", StopEnrolment).WithSummary("Stop one enrolment by hand");

        var sup = app.MapGroup("/api/suppressions").RequireAuthorization(Auth.ApiPolicy).WithTags("Sequences");
        sup.MapGet("/", ListSuppressions).WithSummary("Addresses the team's sequences never write to (unsubscribed, bounced, added)");
        sup.MapPost("/", AddSuppression).WithSummary("Never write to this address again (stops its enrolments)");
    }

    // ---- templates ----

    static IQueryable<MailTemplate> Templates(AppDbContext db, CurrentUser me) => db.Templates.Where(t => t.TeamId == me.TeamId);

    static TemplateDto Dto(MailTemplate t) => new(t.Id, t.Name, t.Subject, t.Html, MergeTemplates.FieldsUsed(t.Subject, t.Html), t.UpdatedAt);

    static Dictionary<string, string[]> Validate(TemplateRequest r)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(r.Name) || r.Name.Trim().Length > 200) errors["name"] = ["A name of 1 to 200 characters is required."];
        if (r.Subject is null) errors["subject"] = ["A subject is required (empty on a follow-up: it then answers the first step's)."];
        else if (r.Subject.Length > 1000) errors["subject"] = ["The subject is longer than 1000 characters."];
        if (string.IsNullOrWhiteSpace(r.Html)) errors["html"] = ["The body is required."];
        else if (Encoding.UTF8.GetByteCount(r.Html) > MaxTemplateBytes) errors["html"] = [$"The body is larger than {MaxTemplateBytes} bytes."];
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

    static async Task<Ok<List<TemplateDto>>> ListTemplates(HttpContext http, AppDbContext db, CancellationToken ct) =>
        TypedResults.Ok((await Templates(db, CurrentUser.Required(http.User)).OrderBy(t => t.Name).AsNoTracking().ToListAsync(ct)).Select(Dto).ToList());

    static async Task<Results<Created<TemplateDto>, ValidationProblem>> CreateTemplate(TemplateRequest request, HttpContext http, AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var errors = Validate(request);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        var me = CurrentUser.Required(http.User);
        var now = clock.GetUtcNow();
        var t = new MailTemplate { TeamId = me.TeamId, UserId = me.Id, Name = request.Name!.Trim(), Subject = request.Subject!.Trim(), Html = request.Html!, CreatedAt = now, UpdatedAt = now };
        db.Templates.Add(t);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/templates/{t.Id}", Dto(t));
    }

    static async Task<Results<Ok<TemplateDto>, NotFound>> GetTemplate(Guid id, HttpContext http, AppDbContext db, CancellationToken ct) =>
        await Templates(db, CurrentUser.Required(http.User)).AsNoTracking().FirstOrDefaultAsync(t => t.Id == id, ct) is { } t ? TypedResults.Ok(Dto(t)) : TypedResults.NotFound();

    static async Task<Results<Ok<TemplateDto>, NotFound, ValidationProblem, ProblemHttpResult>> UpdateTemplate(Guid id, TemplateRequest request, HttpContext http, AppDbContext db,
        [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var t = await Templates(db, me).FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return TypedResults.NotFound();
        if (t.UserId != me.Id && !me.IsAdmin) return TypedResults.Problem(statusCode: 403, title: "Only the template's author or a team admin can change it.");
        var errors = Validate(request);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        t.Name = request.Name!.Trim();
        t.Subject = request.Subject!.Trim();
        t.Html = request.Html!;
        t.UpdatedAt = clock.GetUtcNow();
        await db.SaveChangesAsync(ct);
        return TypedResults.Ok(Dto(t));
    }

    static async Task<Results<NoContent, NotFound, ProblemHttpResult>> DeleteTemplate(Guid id, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var t = await Templates(db, me).FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return TypedResults.NotFound();
        if (t.UserId != me.Id && !me.IsAdmin) return TypedResults.Problem(statusCode: 403, title: "Only the template's author or a team admin can delete it.");
        var users = await db.SequenceSteps.Where(s => s.TemplateId == id).Join(db.Sequences, s => s.SequenceId, q => q.Id, (s, q) => q.Name).Distinct().ToListAsync(ct);
        if (users.Count > 0) return TypedResults.Problem(statusCode: 409, title: "The template is in use.", detail: $"Sequences use it: {string.Join(", ", users)}. Change their steps first.");
        db.Templates.Remove(t);
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    static async Task<Results<Ok<PreviewResponse>, NotFound>> Preview(Guid id, PreviewRequest request, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var t = await Templates(db, me).AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return TypedResults.NotFound();
        var sender = await db.Users.AsNoTracking().Where(u => u.Id == me.Id).Select(u => new { u.DisplayName, u.Email }).FirstAsync(ct);
        var input = request.Recipient ?? new RecipientInput(null);
        var fields = new Dictionary<string, string>();
        if (AccountService.NormalizeAddress(input.Email) is { } a) fields["email"] = a;
        foreach (var (k, v) in new[] { ("first_name", input.FirstName), ("last_name", input.LastName), ("company", input.Company) })
            if (v is not null) fields[k] = v;
        foreach (var (k, v) in input.Fields ?? [])
            if (MergeTemplates.FieldName(k) is { } name && v is not null) fields.TryAdd(name, v);
        var merged = MergeTemplates.Render(t.Subject, t.Html, SequenceEnroller.Merge(fields, SequenceEnroller.SenderFields(sender.DisplayName, sender.Email)));
        return TypedResults.Ok(new PreviewResponse(merged.Subject, merged.Html, [.. merged.Errors]));
    }

    // ---- sequences ----

    static IQueryable<Sequence> Visible(AppDbContext db, CurrentUser me) =>
        me.IsAdmin ? db.Sequences.Where(s => s.TeamId == me.TeamId) : db.Sequences.Where(s => s.TeamId == me.TeamId && s.UserId == me.Id);

    static async Task<SequenceDto> DtoAsync(AppDbContext db, Sequence s, CancellationToken ct)
    {
        var ids = s.Steps.Select(x => x.TemplateId).ToList();
        var names = await db.Templates.Where(t => ids.Contains(t.Id)).ToDictionaryAsync(t => t.Id, t => t.Name, ct);
        var mailbox = await db.Mailboxes.Where(m => m.Id == s.MailboxId).Select(m => m.Address).FirstOrDefaultAsync(ct) ?? "(removed)";
        var counts = await db.Enrolments.Where(e => e.SequenceId == s.Id).GroupBy(e => e.State).Select(g => new { g.Key, N = g.Count() }).ToListAsync(ct);
        return new SequenceDto(s.Id, s.Name, s.MailboxId, mailbox, s.TimeZone, s.StopCompanyOnReply, s.AutoReplyPauseDays, s.Status, s.CreatedAt,
            [.. s.Steps.OrderBy(x => x.Position).Select(x => new StepDto(x.Position, x.TemplateId, names.GetValueOrDefault(x.TemplateId, "(deleted)"), x.DelayDays,
                x.BusinessDaysOnly, x.WindowStart.ToString("HH:mm", CultureInfo.InvariantCulture), x.WindowEnd.ToString("HH:mm", CultureInfo.InvariantCulture)))],
            Enum.GetValues<EnrolmentState>().ToDictionary(v => JsonNamingPolicy.KebabCaseLower.ConvertName(v.ToString()), v => counts.FirstOrDefault(c => c.Key == v)?.N ?? 0));
    }

    /// <summary>Checks a sequence request; the steps as entities when it is good.</summary>
    static async Task<(List<SequenceStep>? Steps, Dictionary<string, string[]> Errors)> ValidateAsync(SequenceRequest r, CurrentUser me, AppDbContext db, CancellationToken ct)
    {
        var errors = new Dictionary<string, string[]>();
        if (string.IsNullOrWhiteSpace(r.Name) || r.Name.Trim().Length > 200) errors["name"] = ["A name of 1 to 200 characters is required."];
        if (r.MailboxId is not { } mailboxId || !await db.Mailboxes.AnyAsync(m => m.Id == mailboxId && m.UserId == me.Id, ct))
            errors["mailboxId"] = ["Name one of your connected mailboxes (GET /api/mailboxes): the steps are sent through it."];
        if (SendTimes.Zone(r.TimeZone ?? "UTC") is null) errors["timeZone"] = [$"'{r.TimeZone}' is not a time zone (use an IANA name such as Europe/Vienna)."];
        if (r.AutoReplyPauseDays is < 1 or > 90) errors["autoReplyPauseDays"] = ["Between 1 and 90 days."];
        var steps = new List<SequenceStep>();
        var stepErrors = new List<string>();
        if (r.Steps is not { Count: > 0 }) stepErrors.Add("At least one step is required.");
        else if (r.Steps.Count > MaxSteps) stepErrors.Add($"At most {MaxSteps} steps.");
        else
        {
            var ids = r.Steps.Select(x => x.TemplateId ?? Guid.Empty).ToList();
            var templates = await db.Templates.Where(t => ids.Contains(t.Id) && t.TeamId == me.TeamId).ToDictionaryAsync(t => t.Id, ct);
            for (var i = 0; i < r.Steps.Count; i++)
            {
                var x = r.Steps[i];
                var n = i + 1;
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

    static async Task<Ok<List<SequenceDto>>> ListSequences(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var list = await Visible(db, CurrentUser.Required(http.User)).Include(s => s.Steps).OrderByDescending(s => s.CreatedAt).AsNoTracking().ToListAsync(ct);
        var result = new List<SequenceDto>();
        foreach (var s in list) result.Add(await DtoAsync(db, s, ct));
        return TypedResults.Ok(result);
    }

    static async Task<Results<Created<SequenceDto>, ValidationProblem>> CreateSequence(SequenceRequest request, HttpContext http, AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var (steps, errors) = await ValidateAsync(request, me, db, ct);
        if (steps is null) return TypedResults.ValidationProblem(errors);
        var s = new Sequence
        {
            TeamId = me.TeamId, UserId = me.Id, Name = request.Name!.Trim(), MailboxId = request.MailboxId!.Value, TimeZone = SendTimes.Zone(request.TimeZone ?? "UTC")!.Id,
            StopCompanyOnReply = request.StopCompanyOnReply ?? false, AutoReplyPauseDays = request.AutoReplyPauseDays ?? 7, CreatedAt = clock.GetUtcNow(), Steps = steps,
        };
        db.Sequences.Add(s);
        await db.SaveChangesAsync(ct);
        return TypedResults.Created($"/api/sequences/{s.Id}", await DtoAsync(db, s, ct));
    }

    static async Task<Results<Ok<SequenceDto>, NotFound>> GetSequence(Guid id, HttpContext http, AppDbContext db, CancellationToken ct) =>
        await Visible(db, CurrentUser.Required(http.User)).Include(s => s.Steps).AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct) is { } s
            ? TypedResults.Ok(await DtoAsync(db, s, ct)) : TypedResults.NotFound();

    static async Task<Results<Ok<SequenceDto>, NotFound, ValidationProblem>> UpdateSequence(Guid id, SequenceRequest request, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var s = await db.Sequences.Include(x => x.Steps).FirstOrDefaultAsync(x => x.Id == id && x.TeamId == me.TeamId && x.UserId == me.Id, ct);
        if (s is null) return TypedResults.NotFound();
        var (steps, errors) = await ValidateAsync(request, me, db, ct);
        if (steps is null) return TypedResults.ValidationProblem(errors);
        s.Name = request.Name!.Trim();
        s.MailboxId = request.MailboxId!.Value;
        s.TimeZone = SendTimes.Zone(request.TimeZone ?? "UTC")!.Id;
        s.StopCompanyOnReply = request.StopCompanyOnReply ?? s.StopCompanyOnReply;
        s.AutoReplyPauseDays = request.AutoReplyPauseDays ?? s.AutoReplyPauseDays;
        db.SequenceSteps.RemoveRange(s.Steps);
        await db.SaveChangesAsync(ct);
        foreach (var step in steps) step.SequenceId = s.Id;
        db.SequenceSteps.AddRange(steps);
        await db.SaveChangesAsync(ct);
        s.Steps = steps;
        return TypedResults.Ok(await DtoAsync(db, s, ct));
    }

    static async Task<Results<NoContent, NotFound>> SetStatus(Guid id, SequenceStatus status, HttpContext http, AppDbContext db, SequenceSignal? signal, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var n = await db.Sequences.Where(s => s.Id == id && s.TeamId == me.TeamId && s.UserId == me.Id).ExecuteUpdateAsync(u => u.SetProperty(s => s.Status, status), ct);
        signal?.Poke();
        return n == 0 ? TypedResults.NotFound() : TypedResults.NoContent();
    }

    // ---- enrolments ----

    static async Task<Results<Ok<List<EnrolmentDto>>, NotFound>> ListEnrolments(Guid id, HttpContext http, AppDbContext db, EnrolmentState? state, CancellationToken ct)
    {
        if (!await Visible(db, CurrentUser.Required(http.User)).AnyAsync(s => s.Id == id, ct)) return TypedResults.NotFound();
        var q = db.Enrolments.Where(e => e.SequenceId == id);
        if (state is { } st) q = q.Where(e => e.State == st);
        var list = await q.OrderBy(e => e.Address).Take(5000).AsNoTracking().ToListAsync(ct);
        var ids = list.Select(e => e.Id).ToList();
        var sends = (await db.SequenceSends.Where(s => ids.Contains(s.EnrolmentId)).AsNoTracking().ToListAsync(ct)).ToLookup(s => s.EnrolmentId);
        return TypedResults.Ok(list.Select(e => new EnrolmentDto(e.Id, e.Address, e.State, e.StopReason, e.Note, e.NextStep, e.NextAt, e.PausedUntil, e.TimeZone,
            JsonSerializer.Deserialize<Dictionary<string, string>>(e.Fields) ?? [],
            [.. sends[e.Id].OrderBy(s => s.Step).Select(s => new SendDto(s.Step, s.State, s.IntentAt, s.SentAt, s.TrackedMessageId, s.Error))])).ToList());
    }

    static async Task<Sequence?> OwnAsync(AppDbContext db, CurrentUser me, Guid id, CancellationToken ct) =>
        await db.Sequences.Include(s => s.Steps).AsNoTracking().FirstOrDefaultAsync(s => s.Id == id && s.TeamId == me.TeamId && s.UserId == me.Id, ct);

    static async Task<Results<Ok<EnrolReport>, NotFound, ValidationProblem>> Enrol(Guid id, EnrolRequest request, HttpContext http, AppDbContext db,
        SequenceEnroller enroller, SequenceSignal signal, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var sequence = await OwnAsync(db, me, id, ct);
        if (sequence is null) return TypedResults.NotFound();
        if (request.Recipients is not { Count: > 0 } list) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["recipients"] = ["At least one recipient."] });
        if (list.Count > SequenceEnroller.MaxRows) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["recipients"] = [$"At most {SequenceEnroller.MaxRows} at a time."] });
        var report = await enroller.EnrolAsync(sequence, me, [.. list.Select((r, i) => (i + 1, r))], ct);
        if (report.Enrolled.Count > 0) signal.Poke();
        return TypedResults.Ok(report);
    }

    /// <summary>A CSV body (text/csv) or a form with a file field: the good rows are enrolled, each bad row is reported with its number (the header is row 1).</summary>
    static async Task<Results<Ok<EnrolReport>, NotFound, ProblemHttpResult>> EnrolCsv(Guid id, HttpContext http, AppDbContext db, SequenceEnroller enroller,
        SequenceSignal signal, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var sequence = await OwnAsync(db, me, id, ct);
        if (sequence is null) return TypedResults.NotFound();
        string text;
        try
        {
            if (http.Request.HasFormContentType)
            {
                var form = await http.Request.ReadFormAsync(ct);
                if (form.Files.FirstOrDefault() is not { } file) return TypedResults.Problem(statusCode: 400, title: "No CSV file in the form.");
                using var reader = new StreamReader(file.OpenReadStream(), Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
                text = await reader.ReadToEndAsync(ct);
            }
            else
            {
                using var reader = new StreamReader(http.Request.Body, Encoding.UTF8, detectEncodingFromByteOrderMarks: true);
                text = await reader.ReadToEndAsync(ct);
            }
        }
        catch (BadHttpRequestException ex)
        {
            return TypedResults.Problem(statusCode: ex.StatusCode, title: "The file could not be read.", detail: ex.Message);
        }
        if (text.Contains('\0')) return TypedResults.Problem(statusCode: 400, title: "This is not a CSV file.", detail: "It holds binary data. Save the sheet as CSV (UTF-8) and upload that.");
        var (rows, broken, fileError) = SequenceEnroller.ReadCsv(new StringReader(text));
        if (fileError is not null) return TypedResults.Problem(statusCode: 400, title: "The CSV file cannot be used.", detail: fileError);
        var report = rows.Count == 0 ? new EnrolReport([], []) : await enroller.EnrolAsync(sequence, me, rows, ct);
        report.Rejected.AddRange(broken);
        report.Rejected.Sort((a, b) => a.Row.CompareTo(b.Row));
        if (report.Enrolled.Count > 0) signal.Poke();
        return TypedResults.Ok(report);
    }

    static async Task<Results<NoContent, NotFound>> StopEnrolment(Guid id, HttpContext http, AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var visible = Visible(db, me).Select(s => s.Id);
        var e = await db.Enrolments.FirstOrDefaultAsync(x => x.Id == id && visible.Contains(x.SequenceId), ct);
        if (e is null) return TypedResults.NotFound();
        if (e.State is EnrolmentState.Active or EnrolmentState.Paused)
        {
            e.State = EnrolmentState.Stopped;
            e.StopReason = StopReason.Manual;
            e.Note = $"Stopped by {me.Email}.";
            e.NextAt = null;
            e.UpdatedAt = clock.GetUtcNow();
            await db.SaveChangesAsync(ct);
        }
        return TypedResults.NoContent();
    }

    // ---- suppressions ----

    static async Task<Ok<List<SuppressionDto>>> ListSuppressions(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        return TypedResults.Ok(await db.Suppressions.Where(s => s.TeamId == me.TeamId).OrderByDescending(s => s.CreatedAt).Take(10_000)
            .Select(s => new SuppressionDto(s.Address, s.Reason, s.Detail, s.CreatedAt)).ToListAsync(ct));
    }

    static async Task<Results<NoContent, ValidationProblem>> AddSuppression(SuppressionRequest request, HttpContext http, AppDbContext db, SequenceRunner runner,
        [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (AccountService.NormalizeAddress(request.Address) is not { } address)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["address"] = ["An email address is required."] });
        await Unsubscribe.SuppressAndStopAsync(db, runner, me.TeamId, address, SuppressionReason.Manual, $"Added by {me.Email}.", StopReason.Suppressed, clock, ct);
        return TypedResults.NoContent();
    }
}
