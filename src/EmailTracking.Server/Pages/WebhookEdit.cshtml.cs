using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outbox;
using Microsoft.AspNetCore.DataProtection;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// A webhook (/webhooks/{id}): its URL, event types, description and whether it is enabled, saved through the API's
/// validation; a new signing secret (shown on that answer only); delete after a confirmation step. Team admins only;
/// another team's webhook is not found.
/// </summary>
public sealed class WebhookEditModel(AppDbContext db, WebhookGuard guard, IDataProtectionProvider protection) : PageModel, IFieldErrors
{
    [FromRoute] public Guid Id { get; set; }
    public bool AdminsOnly { get; private set; }
    public WebhookEndpoint Hook { get; private set; } = null!;
    [BindProperty(Name = "Url")] public string? HookUrl { get; set; }
    [BindProperty] public List<string> EventTypes { get; set; } = [];
    [BindProperty] public string? Description { get; set; }
    [BindProperty] public bool Enabled { get; set; }
    public bool ConfirmDelete { get; private set; }
    public string? Secret { get; private set; }
    public Dictionary<string, string[]> Errors { get; private set; } = [];
    IReadOnlyDictionary<string, string[]> IFieldErrors.Errors => Errors;

    public (string Field, string[] Messages) Field(string key) => (key.Length == 0 ? "form" : key, Errors.GetValueOrDefault(key) ?? []);

    async Task<IActionResult?> LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin)
        {
            AdminsOnly = true;
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }
        var hook = await WebhookRules.FindAsync(db, me, Id, ct);
        if (hook is null) return NotFound();
        Hook = hook;
        return null;
    }

    void Fill()
    {
        HookUrl = Hook.Url;
        EventTypes = [.. WebhookRules.EventTypes(Hook)];
        Description = Hook.Description;
        Enabled = Hook.Enabled;
    }

    public async Task<IActionResult> OnGetAsync(string? confirm, CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } refused) return refused;
        Fill();
        ConfirmDelete = confirm == "delete";
        return Page();
    }

    public async Task<IActionResult> OnPostSaveAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } refused) return refused;
        var request = new OutboxApi.WebhookRequest(HookUrl, EventTypes, string.IsNullOrWhiteSpace(Description) ? null : Description, Enabled);
        Errors = await WebhookRules.UpdateAsync(db, Hook, request, guard, ct);
        if (Errors.Count > 0) return Page();
        TempData["Notice"] = $"The webhook to {Hook.Url} was saved.";
        return Redirect("/webhooks");
    }

    public async Task<IActionResult> OnPostRotateAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } refused) return refused;
        Secret = await WebhookRules.RotateAsync(db, Hook, protection, ct);
        Fill();
        return Page();
    }

    public async Task<IActionResult> OnPostDeleteAsync(CancellationToken ct)
    {
        if (await LoadAsync(ct) is { } refused) return refused;
        await WebhookRules.DeleteAsync(db, CurrentUser.Required(User), Hook.Id, ct);
        TempData["Notice"] = $"The webhook to {Hook.Url} was deleted.";
        return Redirect("/webhooks");
    }
}
