using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Salesforce;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

public sealed class SalesforceModel(SalesforceService salesforce, IOptions<SalesforceOptions> options) : PageModel
{
    public sealed class SettingsForm
    {
        public bool LogSent { get; set; }
        public bool LogReplies { get; set; }
        public bool LogOpens { get; set; }
        public bool LogClicks { get; set; }
        public bool LogAutoReplies { get; set; }
        public bool LogBounces { get; set; }
        public UnknownRecipientPolicy UnknownRecipients { get; set; }
        /// <summary>Left out of a post: unchanged.</summary>
        public OpportunityRelation? RelateToOpportunity { get; set; }
    }

    public SalesforceView View { get; private set; } = null!;
    public bool IsAdmin { get; private set; }
    /// <summary>The server's <c>Salesforce:RelateToOpportunity</c>: what a team that has not chosen gets.</summary>
    public bool ServerRelatesToOpportunity => options.Value.RelateToOpportunity;
    [BindProperty] public SettingsForm Form { get; set; } = new();
    [BindProperty] public string? JwtUsername { get; set; }
    [TempData] public string? Saved { get; set; }

    /// <summary>How the last consent ended (set by the OAuth callback's redirect).</summary>
    [BindProperty(SupportsGet = true, Name = "salesforce")] public string? Outcome { get; set; }

    /// <summary>Fixed words per outcome: nothing from the query string is shown as it is.</summary>
    public (string Text, bool Problem)? Notice => Outcome switch
    {
        "connected" => ("Salesforce is connected.", false),
        "denied" => ("Salesforce was not connected: access was not allowed on Salesforce's page.", true),
        "bad-state" => ("Salesforce was not connected: the answer did not belong to this sign-in (expired or from another browser). Try again.", true),
        "not-configured" => ("Salesforce is not configured on this server.", true),
        "admins-only" => ("Only a team admin can connect Salesforce.", true),
        "no-refresh-token" => ("Salesforce was not connected: the connected app does not grant a refresh token. Add the refresh_token scope to it.", true),
        "failed" => ("Salesforce could not be connected: it did not complete the sign-in. Try again.", true),
        _ => null,
    };

    async Task LoadAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        IsAdmin = me.IsAdmin;
        View = await salesforce.ViewAsync(me.TeamId, ct);
        if (View.Settings is { } s && !ModelState.Keys.Any(k => k.StartsWith("Form.", StringComparison.Ordinal)))
        {
            Form = new SettingsForm
            {
                LogSent = s.LogSent, LogReplies = s.LogReplies, LogOpens = s.LogOpens, LogClicks = s.LogClicks,
                LogAutoReplies = s.LogAutoReplies, LogBounces = s.LogBounces, UnknownRecipients = s.UnknownRecipients,
                RelateToOpportunity = s.RelateToOpportunity,
            };
        }
    }

    public Task OnGetAsync(CancellationToken ct) => LoadAsync(ct);

    /// <summary>
    /// A member's post of an admins' form: the page again, saying who may change it, with 403 (as the Team and Webhooks
    /// pages answer), not the sign-in page that an authorization Forbid sends a signed-in cookie to.
    /// </summary>
    async Task<PageResult> RefusedAsync(CancellationToken ct)
    {
        await LoadAsync(ct);
        ModelState.AddModelError("", "Only a team admin can change the Salesforce connection.");
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Page();
    }

    public async Task<IActionResult> OnPostSettingsAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return await RefusedAsync(ct);
        if (!Enum.IsDefined(Form.UnknownRecipients)) ModelState.AddModelError("Form.UnknownRecipients", "Choose what happens to unknown recipients.");
        if (Form.RelateToOpportunity is { } o && !Enum.IsDefined(o)) ModelState.AddModelError("Form.RelateToOpportunity", "Choose what a Contact's Task is related to.");
        if (ModelState.IsValid)
        {
            var f = Form;
            var c = await salesforce.UpdateSettingsAsync(me.TeamId,
                new SalesforceSettingsRequest(f.LogSent, f.LogReplies, f.LogOpens, f.LogClicks, f.LogAutoReplies, f.LogBounces, f.UnknownRecipients, f.RelateToOpportunity), ct);
            if (c is not null)
            {
                Saved = "The settings are saved.";
                return RedirectToPage();
            }
            ModelState.AddModelError("", "Salesforce is not connected.");
        }
        await LoadAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostJwtAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return await RefusedAsync(ct);
        var (c, problem, _) = await salesforce.ConnectJwtAsync(me, JwtUsername, ct);
        if (c is not null) return Redirect("/salesforce?salesforce=connected");
        ModelState.AddModelError("", problem ?? "Salesforce could not be connected.");
        await LoadAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostDisconnectAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return await RefusedAsync(ct);
        await salesforce.DisconnectAsync(me.TeamId, ct);
        Saved = "Salesforce is disconnected.";
        return RedirectToPage();
    }

    /// <summary>The choices' words; the server's default says what it currently is.</summary>
    public static string Words(OpportunityRelation r, bool serverDefault) => r switch
    {
        OpportunityRelation.WhenOneFits => "the open Opportunity when exactly one fits, else the Account",
        OpportunityRelation.Never => "the Account",
        _ => $"this server's default (now: {(serverDefault ? "the open Opportunity when exactly one fits" : "the Account")})",
    };

    public static string Words(UnknownRecipientPolicy p) => p switch
    {
        UnknownRecipientPolicy.CreateLead => "create a Lead (last name from the address, company from its domain)",
        _ => "skip the event",
    };
}
