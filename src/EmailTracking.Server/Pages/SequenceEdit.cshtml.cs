using System.Globalization;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Sequences;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// A sequence's form (/sequences/new, /sequences/{id}/edit): settings and a fixed number of step rows ("(none)"
/// skips a row). Saved through the API's own validation; its errors are shown beside their fields, a step's
/// beside its row.
/// </summary>
public sealed partial class SequenceEditModel(AppDbContext db, MailboxService mailboxes, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock) : PageModel, IFieldErrors
{
    public const int MinRows = 4;

    public sealed class StepRow
    {
        public Guid? TemplateId { get; set; }
        public int? DelayDays { get; set; }
        /// <summary>False unless the box is ticked (an unticked box posts nothing); new rows start ticked.</summary>
        public bool BusinessDaysOnly { get; set; }
        public string? WindowStart { get; set; }
        public string? WindowEnd { get; set; }
    }

    public sealed class SequenceForm
    {
        public string? Name { get; set; }
        public Guid? MailboxId { get; set; }
        public string? TimeZone { get; set; } = "UTC";
        public bool StopCompanyOnReply { get; set; }
        public int? AutoReplyPauseDays { get; set; } = 7;
        public List<StepRow> Steps { get; set; } = [];
    }

    [FromRoute] public Guid? Id { get; set; }
    [BindProperty] public SequenceForm Form { get; set; } = new();
    public Sequence? Existing { get; private set; }
    public List<MailboxSummary> Mailboxes { get; private set; } = [];
    public List<MailTemplate> TemplateChoices { get; private set; } = [];

    /// <summary>Problems by the API's field names; a step's under "step:ROW" (0-based row of the form).</summary>
    public Dictionary<string, string[]> Errors { get; private set; } = [];
    IReadOnlyDictionary<string, string[]> IFieldErrors.Errors => Errors;

    public (string Field, string[] Messages) Field(string key) => (key.Length == 0 ? "form" : key, Errors.GetValueOrDefault(key) ?? []);

    static StepRow NewRow(int i) => new() { DelayDays = i == 0 ? 0 : 3, BusinessDaysOnly = true, WindowStart = "09:00", WindowEnd = "17:00" };

    async Task<IActionResult?> LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (Id is { } id)
        {
            Existing = await SequenceRules.Own(db, me).Include(s => s.Steps).FirstOrDefaultAsync(s => s.Id == id, ct);
            if (Existing is null) return NotFound();
        }
        Mailboxes = await mailboxes.ListAsync(me, ct);
        TemplateChoices = await SequenceRules.Templates(db, me).OrderBy(t => t.Name).AsNoTracking().ToListAsync(ct);
        return null;
    }

    void Pad()
    {
        while (Form.Steps.Count < Math.Max(MinRows, Math.Min(SequencesApi.MaxSteps, Form.Steps.Count(r => r.TemplateId is not null) + 2)))
            Form.Steps.Add(NewRow(Form.Steps.Count));
    }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        if (Existing is { } s)
        {
            Form = new SequenceForm
            {
                Name = s.Name, MailboxId = s.MailboxId, TimeZone = s.TimeZone, StopCompanyOnReply = s.StopCompanyOnReply, AutoReplyPauseDays = s.AutoReplyPauseDays,
                Steps = [.. s.Steps.OrderBy(x => x.Position).Select(x => new StepRow
                {
                    TemplateId = x.TemplateId, DelayDays = x.DelayDays, BusinessDaysOnly = x.BusinessDaysOnly,
                    WindowStart = x.WindowStart.ToString("HH:mm", CultureInfo.InvariantCulture), WindowEnd = x.WindowEnd.ToString("HH:mm", CultureInfo.InvariantCulture),
                })],
            };
        }
        else if (Mailboxes.Count > 0)
        {
            Form.MailboxId = Mailboxes[0].Id;
        }
        Pad();
        return Page();
    }

    [GeneratedRegex(@"^Step (\d+): ")]
    private static partial Regex StepPrefix();

    public async Task<IActionResult> OnPostAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        var me = CurrentUser.Required(User);
        // Rows left at "(none)" are skipped; the API's "Step N" is the Nth row chosen.
        var used = Form.Steps.Select((r, i) => (Row: r, Index: i)).Where(x => x.Row.TemplateId is not null).ToList();
        var request = new SequencesApi.SequenceRequest(Form.Name, Form.MailboxId, string.IsNullOrWhiteSpace(Form.TimeZone) ? null : Form.TimeZone.Trim(),
            Form.StopCompanyOnReply, Form.AutoReplyPauseDays,
            [.. used.Select(x => new SequencesApi.StepRequest(x.Row.TemplateId, x.Row.DelayDays, x.Row.BusinessDaysOnly, x.Row.WindowStart, x.Row.WindowEnd))]);
        Dictionary<string, string[]> errors = [];
        // A value the form could not read (a number that is not one) would otherwise fall back to the default: nothing is saved.
        foreach (var (key, entry) in ModelState)
            foreach (var e in entry.Errors)
                errors[""] = [.. errors.GetValueOrDefault("") ?? [], $"{key.Replace("Form.", "")}: {e.ErrorMessage}"];
        if (errors.Count == 0)
        {
            Guid id;
            if (Existing is { } s)
            {
                errors = await SequenceRules.UpdateSequenceAsync(db, me, s, request, ct);
                id = s.Id;
            }
            else
            {
                var (created, e) = await SequenceRules.CreateSequenceAsync(db, me, request, clock.GetUtcNow(), ct);
                errors = e;
                id = created?.Id ?? Guid.Empty;
            }
            if (errors.Count == 0)
            {
                TempData["Notice"] = Existing is null ? $"{Form.Name!.Trim()} was created. Enrol people below." : $"{Form.Name!.Trim()} was saved.";
                return Redirect($"/sequences/{id}");
            }
        }
        foreach (var (key, messages) in errors)
        {
            if (key != "steps") { Errors[key] = messages; continue; }
            foreach (var m in messages)
            {
                var k = StepPrefix().Match(m) is { Success: true } hit && int.TryParse(hit.Groups[1].Value, out var n) && n >= 1 && n <= used.Count
                    ? $"step:{used[n - 1].Index}" : "steps";
                Errors[k] = [.. Errors.GetValueOrDefault(k) ?? [], m];
            }
        }
        Pad();
        return Page();
    }
}
