using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outbox;
using Microsoft.AspNetCore.DataProtection;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The team's webhooks and a form to add one (team admins; members are told so). Checked by the API's own
/// validation, its errors beside their fields; the new webhook's signing secret is shown on the answer to the form
/// and nowhere else.
/// </summary>
public sealed class WebhooksModel(AppDbContext db, WebhookGuard guard, IDataProtectionProvider protection, TimeProvider clock) : PageModel, IFieldErrors
{
    public bool AdminsOnly { get; private set; }
    public List<WebhookEndpoint> Hooks { get; private set; } = [];
    [BindProperty(Name = "Url")] public string? HookUrl { get; set; }
    [BindProperty] public List<string> EventTypes { get; set; } = [];
    [BindProperty] public string? Description { get; set; }
    /// <summary>The signing secret of the webhook just made: this answer only.</summary>
    public string? Secret { get; private set; }
    [TempData] public string? Notice { get; set; }
    public string? Added { get; private set; }
    public Dictionary<string, string[]> Errors { get; private set; } = [];
    IReadOnlyDictionary<string, string[]> IFieldErrors.Errors => Errors;

    public (string Field, string[] Messages) Field(string key) => (key.Length == 0 ? "form" : key, Errors.GetValueOrDefault(key) ?? []);

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        Hooks = await WebhookRules.ListAsync(db, me, ct);
        return Page();
    }

    public async Task<IActionResult> OnPostCreateAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        var request = new OutboxApi.WebhookRequest(HookUrl, EventTypes, string.IsNullOrWhiteSpace(Description) ? null : Description, true);
        var (created, errors) = await WebhookRules.CreateAsync(db, me, request, guard, protection, clock, ct);
        if (created is null)
        {
            Errors = errors;
        }
        else
        {
            Secret = created.Secret;
            Added = $"The webhook to {created.Webhook.Url} was added.";
            HookUrl = Description = null;
            EventTypes = [];
        }
        Hooks = await WebhookRules.ListAsync(db, me, ct);
        return Page();
    }

    PageResult Refused()
    {
        AdminsOnly = true;
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Page();
    }
}
