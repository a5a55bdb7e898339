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

    static IQueryable<MailTemplate> Templates(AppDbContext db, CurrentUser me) => SequenceRules.Templates(db, me);

    static TemplateDto Dto(MailTemplate t) => new(t.Id, t.Name, t.Subject, t.Html, MergeTemplates.FieldsUsed(t.Subject, t.Html), t.UpdatedAt);

    static async Task<Ok<List<TemplateDto>>> ListTemplates(HttpContext http, AppDbContext db, CancellationToken ct) =>
        TypedResults.Ok((await Templates(db, CurrentUser.Required(http.User)).OrderBy(t => t.Name).AsNoTracking().ToListAsync(ct)).Select(Dto).ToList());

    static async Task<Results<Created<TemplateDto>, ValidationProblem>> CreateTemplate(TemplateRequest request, HttpContext http, AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var (t, errors) = await SequenceRules.CreateTemplateAsync(db, CurrentUser.Required(http.User), request, clock.GetUtcNow(), ct);
        if (t is null) return TypedResults.ValidationProblem(errors);
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
        if (!SequenceRules.MayChange(t, me)) return TypedResults.Problem(statusCode: 403, title: "Only the template's author or a team admin can change it.");
        var errors = await SequenceRules.UpdateTemplateAsync(db, t, request, clock.GetUtcNow(), ct);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        return TypedResults.Ok(Dto(t));
    }

    static async Task<Results<NoContent, NotFound, ProblemHttpResult>> DeleteTemplate(Guid id, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var t = await Templates(db, me).FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return TypedResults.NotFound();
        if (!SequenceRules.MayChange(t, me)) return TypedResults.Problem(statusCode: 403, title: "Only the template's author or a team admin can delete it.");
        if (await SequenceRules.InUseAsync(db, id, ct) is { } why) return TypedResults.Problem(statusCode: 409, title: "The template is in use.", detail: why);
        db.Templates.Remove(t);
        await db.SaveChangesAsync(ct);
        return TypedResults.NoContent();
    }

    static async Task<Results<Ok<PreviewResponse>, NotFound>> Preview(Guid id, PreviewRequest request, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var t = await Templates(db, me).AsNoTracking().FirstOrDefaultAsync(x => x.Id == id, ct);
        if (t is null) return TypedResults.NotFound();
        var merged = await SequenceRules.PreviewAsync(db, me, t.Subject, t.Html, request.Recipient, ct);
        return TypedResults.Ok(new PreviewResponse(merged.Subject, merged.Html, [.. merged.Errors]));
    }

    // ---- sequences ----

    static IQueryable<Sequence> Visible(AppDbContext db, CurrentUser me) => SequenceRules.Visible(db, me);

    static async Task<SequenceDto> DtoAsync(AppDbContext db, Sequence s, CancellationToken ct)
    {
        var ids = s.Steps.Select(x => x.TemplateId).ToList();
        var names = await db.Templates.Where(t => ids.Contains(t.Id)).ToDictionaryAsync(t => t.Id, t => t.Name, ct);
        var mailbox = await db.Mailboxes.Where(m => m.Id == s.MailboxId).Select(m => m.Address).FirstOrDefaultAsync(ct) ?? "(removed)";
        var counts = await SequenceRules.CountsAsync(db, s.Id, ct);
        return new SequenceDto(s.Id, s.Name, s.MailboxId, mailbox, s.TimeZone, s.StopCompanyOnReply, s.AutoReplyPauseDays, s.Status, s.CreatedAt,
            [.. s.Steps.OrderBy(x => x.Position).Select(x => new StepDto(x.Position, x.TemplateId, names.GetValueOrDefault(x.TemplateId, "(deleted)"), x.DelayDays,
                x.BusinessDaysOnly, x.WindowStart.ToString("HH:mm", CultureInfo.InvariantCulture), x.WindowEnd.ToString("HH:mm", CultureInfo.InvariantCulture)))],
            counts.ToDictionary(c => JsonNamingPolicy.KebabCaseLower.ConvertName(c.Key.ToString()), c => c.Value));
    }

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
        var (s, errors) = await SequenceRules.CreateSequenceAsync(db, me, request, clock.GetUtcNow(), ct);
        if (s is null) return TypedResults.ValidationProblem(errors);
        return TypedResults.Created($"/api/sequences/{s.Id}", await DtoAsync(db, s, ct));
    }

    static async Task<Results<Ok<SequenceDto>, NotFound>> GetSequence(Guid id, HttpContext http, AppDbContext db, CancellationToken ct) =>
        await Visible(db, CurrentUser.Required(http.User)).Include(s => s.Steps).AsNoTracking().FirstOrDefaultAsync(s => s.Id == id, ct) is { } s
            ? TypedResults.Ok(await DtoAsync(db, s, ct)) : TypedResults.NotFound();

    static async Task<Results<Ok<SequenceDto>, NotFound, ValidationProblem>> UpdateSequence(Guid id, SequenceRequest request, HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var s = await SequenceRules.Own(db, me).Include(x => x.Steps).FirstOrDefaultAsync(x => x.Id == id, ct);
        if (s is null) return TypedResults.NotFound();
        var errors = await SequenceRules.UpdateSequenceAsync(db, me, s, request, ct);
        if (errors.Count > 0) return TypedResults.ValidationProblem(errors);
        return TypedResults.Ok(await DtoAsync(db, s, ct));
    }

    static async Task<Results<NoContent, NotFound>> SetStatus(Guid id, SequenceStatus status, HttpContext http, AppDbContext db, SequenceSignal? signal, CancellationToken ct)
    {
        var found = await SequenceRules.SetStatusAsync(db, CurrentUser.Required(http.User), id, status, signal, ct);
        return found ? TypedResults.NoContent() : TypedResults.NotFound();
    }

    // ---- enrolments ----

    /// <param name="state">active, paused, completed or stopped (the words the answers use).</param>
    static async Task<Results<Ok<List<EnrolmentDto>>, NotFound, ProblemHttpResult>> ListEnrolments(Guid id, HttpContext http, AppDbContext db, string? state, CancellationToken ct)
    {
        if (!await Visible(db, CurrentUser.Required(http.User)).AnyAsync(s => s.Id == id, ct)) return TypedResults.NotFound();
        var q = db.Enrolments.Where(e => e.SequenceId == id);
        if (state is not null)
        {
            if (!Enum.TryParse<EnrolmentState>(state, ignoreCase: true, out var st) || !Enum.IsDefined(st))
                return TypedResults.Problem(statusCode: 400, title: "Unknown enrolment state.", detail: "state is active, paused, completed or stopped.");
            q = q.Where(e => e.State == st);
        }
        var list = await q.OrderBy(e => e.Address).Take(5000).AsNoTracking().ToListAsync(ct);
        var ids = list.Select(e => e.Id).ToList();
        var sends = (await db.SequenceSends.Where(s => ids.Contains(s.EnrolmentId)).AsNoTracking().ToListAsync(ct)).ToLookup(s => s.EnrolmentId);
        return TypedResults.Ok(list.Select(e => new EnrolmentDto(e.Id, e.Address, e.State, e.StopReason, e.Note, e.NextStep, e.NextAt, e.PausedUntil, e.TimeZone,
            JsonSerializer.Deserialize<Dictionary<string, string>>(e.Fields) ?? [],
            [.. sends[e.Id].OrderBy(s => s.Step).Select(s => new SendDto(s.Step, s.State, s.IntentAt, s.SentAt, s.TrackedMessageId, s.Error))])).ToList());
    }

    static Task<Sequence?> OwnAsync(AppDbContext db, CurrentUser me, Guid id, CancellationToken ct) => SequenceRules.OwnAsync(db, me, id, ct);

    static async Task<Results<Ok<EnrolReport>, NotFound, ValidationProblem>> Enrol(Guid id, EnrolRequest request, HttpContext http, AppDbContext db,
        SequenceEnroller enroller, SequenceSignal signal, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        var sequence = await OwnAsync(db, me, id, ct);
        if (sequence is null) return TypedResults.NotFound();
        if (request.Recipients is not { Count: > 0 } list) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["recipients"] = ["At least one recipient."] });
        if (list.Count > SequenceEnroller.MaxRows) return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["recipients"] = [$"At most {SequenceEnroller.MaxRows} at a time."] });
        var report = await enroller.EnrolAsync(sequence, me, [.. list.Select((r, i) => (i + 1, r ?? new RecipientInput(null)))], ct);
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
        string? text, unreadable;
        try
        {
            if (http.Request.HasFormContentType)
            {
                var form = await http.Request.ReadFormAsync(ct);
                if (form.Files.FirstOrDefault() is not { } file) return TypedResults.Problem(statusCode: 400, title: "No CSV file in the form.");
                await using var stream = file.OpenReadStream();
                (text, unreadable) = await CsvText.ReadAsync(stream, ct);
            }
            else
            {
                (text, unreadable) = await CsvText.ReadAsync(http.Request.Body, ct);
            }
        }
        catch (BadHttpRequestException ex)
        {
            return TypedResults.Problem(statusCode: ex.StatusCode, title: "The file could not be read.", detail: ex.Message);
        }
        catch (Exception ex) when (ex is InvalidDataException or IOException)
        {
            // A form with no boundary or a bad header (InvalidDataException), or one that ends before its closing
            // boundary (IOException "Unexpected end of Stream"): the client's form, not our failure.
            return TypedResults.Problem(statusCode: 400, title: "The file could not be read.",
                detail: "The form data was malformed or cut short: send the CSV as a complete multipart/form-data file, or as the request body (text/csv).");
        }
        if (text is null) return TypedResults.Problem(statusCode: 400, title: "The file could not be read.", detail: unreadable);
        var (report, title, detail) = await SequenceRules.EnrolCsvAsync(enroller, sequence, me, text, signal, ct);
        if (report is null) return TypedResults.Problem(statusCode: 400, title: title, detail: detail);
        return TypedResults.Ok(report);
    }

    static async Task<Results<NoContent, NotFound>> StopEnrolment(Guid id, HttpContext http, AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var found = await SequenceRules.StopAsync(db, CurrentUser.Required(http.User), id, clock.GetUtcNow(), ct);
        return found ? TypedResults.NoContent() : TypedResults.NotFound();
    }

    // ---- suppressions ----

    static async Task<Ok<List<SuppressionDto>>> ListSuppressions(HttpContext http, AppDbContext db, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        return TypedResults.Ok(await db.Suppressions.Where(s => s.TeamId == me.TeamId).OrderByDescending(s => s.CreatedAt).Take(10_000)
            .Select(s => new SuppressionDto(s.Address, s.Reason, s.Detail, s.CreatedAt)).ToListAsync(ct));
    }

    /// <summary>
    /// Why a suppression's address was refused. "An email address is required." was said of "@x.com" and "x.com" too,
    /// which read as if nothing had been sent; a domain is told that only addresses are suppressed.
    /// </summary>
    internal static string NotAnAddress(string? text)
    {
        if (string.IsNullOrWhiteSpace(text)) return "An email address is required.";
        var t = text.Trim();
        var shown = t.Length > 100 ? t[..100] + "…" : t;
        var domain = t.StartsWith('@') ? t[1..] : t;
        if (!domain.Contains('@') && domain.Contains('.') && !domain.Any(char.IsWhiteSpace))
            return $"'{shown}' is not an email address: suppressions are for one address each, such as name@{domain}. A whole domain cannot be suppressed; add each address.";
        return $"'{shown}' is not an email address.";
    }

    static async Task<Results<NoContent, ValidationProblem>> AddSuppression(SuppressionRequest request, HttpContext http, AppDbContext db, SequenceRunner runner,
        [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var me = CurrentUser.Required(http.User);
        if (AccountService.NormalizeAddress(request.Address) is not { } address)
            return TypedResults.ValidationProblem(new Dictionary<string, string[]> { ["address"] = [NotAnAddress(request.Address)] });
        await Unsubscribe.SuppressAndStopAsync(db, runner, me.TeamId, address, SuppressionReason.Manual, $"Added by {me.Email}.", StopReason.Suppressed, clock, ct);
        return TypedResults.NoContent();
    }
}
