using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Sequences;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// A template's form (/templates/new, /templates/{id}): name, subject and HTML body, saved through the same
/// validation as the API (syntax errors under their field), a preview for a sample recipient, and delete.
/// </summary>
public sealed class TemplateEditModel(AppDbContext db, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock) : PageModel, IFieldErrors
{
    [FromRoute] public Guid? Id { get; set; }
    public MailTemplate? Existing { get; private set; }
    public bool MayChange { get; private set; } = true;

    [BindProperty] public string? Name { get; set; }
    [BindProperty] public string? Subject { get; set; }
    [BindProperty] public string? Html { get; set; }

    // The sample recipient of the preview.
    [BindProperty] public string? SampleEmail { get; set; }
    [BindProperty] public string? SampleFirstName { get; set; }
    [BindProperty] public string? SampleLastName { get; set; }
    [BindProperty] public string? SampleCompany { get; set; }
    [BindProperty] public string? SampleFields { get; set; }

    /// <summary>Problems by the API's field names (name, subject, html, sample, or "" for the whole form).</summary>
    public Dictionary<string, string[]> Errors { get; private set; } = [];
    IReadOnlyDictionary<string, string[]> IFieldErrors.Errors => Errors;
    public MergeResult? Preview { get; private set; }
    [TempData] public string? Notice { get; set; }

    public string[] ErrorsFor(string key) => Errors.GetValueOrDefault(key) ?? [];

    /// <summary>The model of the _FieldErrors partial for one field ("" for the whole form).</summary>
    public (string Field, string[] Messages) Field(string key) => (key.Length == 0 ? "form" : key, ErrorsFor(key));

    async Task<IActionResult?> LoadAsync(CancellationToken ct)
    {
        if (Id is not { } id) return null;
        var me = CurrentUser.Required(User);
        Existing = await SequenceRules.Templates(db, me).FirstOrDefaultAsync(t => t.Id == id, ct);
        if (Existing is null) return NotFound();
        MayChange = SequenceRules.MayChange(Existing, me);
        return null;
    }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        if (Existing is { } t)
        {
            Name = t.Name;
            Subject = t.Subject;
            Html = t.Html;
        }
        return Page();
    }

    SequencesApi.TemplateRequest AsRequest() => new(Name, Subject ?? "", Html);

    public async Task<IActionResult> OnPostSaveAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        var me = CurrentUser.Required(User);
        if (!MayChange) return Refused("Only the template's author or a team admin can change it.");
        if (Existing is { } t)
        {
            Errors = await SequenceRules.UpdateTemplateAsync(db, t, AsRequest(), clock.GetUtcNow(), ct);
            if (Errors.Count > 0) return Invalid();
            Notice = $"{t.Name} was saved.";
            return Redirect($"/templates/{t.Id}");
        }
        var (created, errors) = await SequenceRules.CreateTemplateAsync(db, me, AsRequest(), clock.GetUtcNow(), ct);
        Errors = errors;
        if (created is null) return Invalid();
        Notice = $"{created.Name} was created.";
        return Redirect($"/templates/{created.Id}");
    }

    /// <summary>The form's subject and body (saved or not) as the sample recipient would get them.</summary>
    public async Task<IActionResult> OnPostPreviewAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        var me = CurrentUser.Required(User);
        Errors = SequenceRules.ValidateTemplate(AsRequest());
        Errors.Remove("name"); // a preview needs no name yet
        var (fields, lineErrors) = SequenceWords.FieldLines(SampleFields);
        if (lineErrors.Count > 0) Errors["sample"] = [.. lineErrors];
        if (Errors.Count > 0) return Invalid();
        Preview = await SequenceRules.PreviewAsync(db, me, Subject ?? "", Html ?? "",
            new RecipientInput(SampleEmail, SampleFirstName, SampleLastName, SampleCompany, null, fields), ct);
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } missing) return missing;
        if (Existing is not { } t) return NotFound();
        Name ??= t.Name;
        Subject ??= t.Subject;
        Html ??= t.Html;
        if (!MayChange) return Refused("Only the template's author or a team admin can delete it.");
        if (await SequenceRules.InUseAsync(db, t.Id, ct) is { } why) return Refused("The template cannot be deleted: " + why);
        db.Templates.Remove(t);
        await db.SaveChangesAsync(ct);
        Notice = $"{t.Name} was deleted.";
        return Redirect("/templates");
    }

    // Refused forms come back as pages (200) with the errors beside their fields, as the other pages' forms do.
    IActionResult Invalid() => Page();

    IActionResult Refused(string why)
    {
        Errors[""] = [why];
        return Page();
    }
}
