using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Sequences;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// One sequence: its steps, pause and resume, enrolling one person or a CSV file (with the report of what was
/// enrolled and why each refused row was), and every enrolment's state, step, next send and why it stopped or waits.
/// </summary>
public sealed class SequenceModel(AppDbContext db, SequenceEnroller enroller, SequenceRunner runner, SequenceSignal signal,
    [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock) : PageModel
{
    public const long MaxCsvBytes = 10 * 1024 * 1024;

    public sealed class PersonForm
    {
        public string? Email { get; set; }
        public string? FirstName { get; set; }
        public string? LastName { get; set; }
        public string? Company { get; set; }
        public string? TimeZone { get; set; }
        public string? Fields { get; set; }
    }

    [FromRoute] public Guid Id { get; set; }
    public Sequence Sequence { get; private set; } = null!;
    public bool IsOwner { get; private set; }
    public string Mailbox { get; private set; } = "";
    public string Owner { get; private set; } = "";
    public Dictionary<Guid, string> TemplateNames { get; private set; } = [];
    public Dictionary<EnrolmentState, int> Counts { get; private set; } = [];
    public List<Enrolment> Enrolments { get; private set; } = [];
    public const int MaxShown = 2000;

    [BindProperty] public PersonForm Person { get; set; } = new();
    /// <summary>What the last enrol request did; null before one.</summary>
    public EnrolReport? Report { get; private set; }
    /// <summary>Why the form or file could not be used at all.</summary>
    public List<string> EnrolErrors { get; private set; } = [];
    [TempData] public string? Notice { get; set; }

    public int StepCount => Sequence.Steps.Count;

    async Task<bool> LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var s = await SequenceRules.Visible(db, me).Include(x => x.Steps).AsNoTracking().FirstOrDefaultAsync(x => x.Id == Id, ct);
        if (s is null) return false;
        Sequence = s;
        IsOwner = s.UserId == me.Id;
        Mailbox = await db.Mailboxes.Where(m => m.Id == s.MailboxId).Select(m => m.Address).FirstOrDefaultAsync(ct) ?? "(removed)";
        Owner = await db.Users.Where(u => u.Id == s.UserId).Select(u => u.Email).FirstOrDefaultAsync(ct) ?? "";
        var ids = s.Steps.Select(x => x.TemplateId).ToList();
        TemplateNames = await db.Templates.Where(t => ids.Contains(t.Id)).ToDictionaryAsync(t => t.Id, t => t.Name, ct);
        Counts = await SequenceRules.CountsAsync(db, s.Id, ct);
        Enrolments = await db.Enrolments.Where(e => e.SequenceId == s.Id).OrderBy(e => e.Address).Take(MaxShown).AsNoTracking().ToListAsync(ct);
        return true;
    }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct) => await LoadAsync(ct) ? Page() : NotFound();

    /// <summary>Only the owner changes the sequence or enrols (the mail goes from their mailbox); an admin sees it.</summary>
    async Task<(IActionResult? Refusal, CurrentUser Me)> OwnerAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!await LoadAsync(ct)) return (NotFound(), me);
        if (!IsOwner)
        {
            // The page shows no such buttons to anyone else; a post made by hand is told whose they are (the error
            // page's general sentence says a team admin can, and an admin is who would try).
            var whoCan = new Microsoft.AspNetCore.Html.HtmlContentBuilder().Append("Only the sequence's owner");
            if (Owner.Length > 0) whoCan.Append(", ").AppendHtml(Display.Exact(Owner)).Append(",");
            HttpContext.Items[ErrorModel.ForbiddenKey] = whoCan.Append(" can pause or resume it, or enrol people in it: its mail goes from their mailbox.");
            return (StatusCode(403), me);
        }
        return (null, me);
    }

    public async Task<IActionResult> OnPostPauseAsync(CancellationToken ct) => await SetStatusAsync(SequenceStatus.Paused, ct);

    public async Task<IActionResult> OnPostResumeAsync(CancellationToken ct) => await SetStatusAsync(SequenceStatus.Active, ct);

    async Task<IActionResult> SetStatusAsync(SequenceStatus status, CancellationToken ct)
    {
        var (refusal, me) = await OwnerAsync(ct);
        if (refusal is not null) return refusal;
        await SequenceRules.SetStatusAsync(db, me, Id, status, status == SequenceStatus.Active ? signal : null, ct);
        Notice = status == SequenceStatus.Active ? "The sequence sends again." : "The sequence is paused: nothing is sent until you resume it; enrolments keep their place.";
        return Redirect($"/sequences/{Id}");
    }

    public async Task<IActionResult> OnPostEnrolAsync(CancellationToken ct)
    {
        var (refusal, me) = await OwnerAsync(ct);
        if (refusal is not null) return refusal;
        var (fields, lineErrors) = SequenceWords.FieldLines(Person.Fields);
        if (lineErrors.Count > 0)
        {
            EnrolErrors = lineErrors;
            return Page();
        }
        var p = Person;
        Report = await enroller.EnrolAsync(Sequence, me, [(1, new RecipientInput(p.Email, p.FirstName, p.LastName, p.Company, p.TimeZone, fields))], ct);
        if (Report.Enrolled.Count > 0) signal.Poke();
        return await AfterEnrolAsync(ct);
    }

    /// <summary>Before the form is read: room for a CSV file as large as the API takes.</summary>
    public override void OnPageHandlerSelected(Microsoft.AspNetCore.Mvc.Filters.PageHandlerSelectedContext context)
    {
        if (context.HandlerMethod?.Name == "Csv" &&
            HttpContext.Features.Get<Microsoft.AspNetCore.Http.Features.IHttpMaxRequestBodySizeFeature>() is { IsReadOnly: false } max)
        {
            max.MaxRequestBodySize = MaxCsvBytes + 64 * 1024;
        }
    }

    public async Task<IActionResult> OnPostCsvAsync(IFormFile? file, CancellationToken ct)
    {
        var (refusal, me) = await OwnerAsync(ct);
        if (refusal is not null) return refusal;
        if (file is null || file.Length == 0)
        {
            EnrolErrors = ["Choose a CSV file (the first row names the columns: email, first name, last name, company, time zone, and any custom field)."];
            return Page();
        }
        if (file.Length > MaxCsvBytes)
        {
            EnrolErrors = [$"The file is larger than {MaxCsvBytes / (1024 * 1024)} MB; split it."];
            return Page();
        }
        string? text, unreadable;
        await using (var stream = file.OpenReadStream())
            (text, unreadable) = await CsvText.ReadAsync(stream, ct);
        if (text is null)
        {
            EnrolErrors = [$"The file could not be read. {unreadable}"];
            return Page();
        }
        var (report, title, detail) = await SequenceRules.EnrolCsvAsync(enroller, Sequence, me, text, signal, ct);
        if (report is null)
        {
            EnrolErrors = [$"{title} {detail}"];
            return Page();
        }
        Report = report;
        return await AfterEnrolAsync(ct);
    }

    async Task<IActionResult> AfterEnrolAsync(CancellationToken ct)
    {
        // A clean form after a good enrolment; what was typed stays when it was refused.
        if (Report!.Enrolled.Count > 0 && Report.Rejected.Count == 0) Person = new PersonForm();
        await LoadAsync(ct); // the table with the new enrolments
        return Page();
    }

    public async Task<IActionResult> OnPostStopAsync(Guid enrolment, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!await SequenceRules.Visible(db, me).AnyAsync(s => s.Id == Id, ct)) return NotFound();
        if (!await db.Enrolments.AnyAsync(e => e.Id == enrolment && e.SequenceId == Id, ct)) return NotFound();
        await SequenceRules.StopAsync(db, me, enrolment, clock.GetUtcNow(), ct);
        Notice = "The enrolment was stopped: nothing more is sent to that person from this sequence.";
        return Redirect($"/sequences/{Id}");
    }

    /// <summary>The address goes on the team's suppression list (no sequence of the team writes to it again) and its live enrolments stop.</summary>
    public async Task<IActionResult> OnPostSuppressAsync(Guid enrolment, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!await SequenceRules.Visible(db, me).AnyAsync(s => s.Id == Id, ct)) return NotFound();
        var address = await db.Enrolments.Where(e => e.Id == enrolment && e.SequenceId == Id).Select(e => e.Address).FirstOrDefaultAsync(ct);
        if (address is null) return NotFound();
        await Unsubscribe.SuppressAndStopAsync(db, runner, me.TeamId, address, SuppressionReason.Manual, $"Added by {me.Email}.", StopReason.Suppressed, clock, ct);
        Notice = $"{address} is on your team's suppression list: no sequence writes to it again.";
        return Redirect($"/sequences/{Id}");
    }

    public string StepName(int position) =>
        Sequence.Steps.FirstOrDefault(s => s.Position == position) is { } step ? TemplateNames.GetValueOrDefault(step.TemplateId, "(deleted)") : "";
}
