using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outbox;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;

namespace EmailTracking.Server.Pages;

/// <summary>One delivery of the team's (/webhooks/deliveries/{id}) with every attempt; another team's is not found. Team admins only.</summary>
public sealed class DeliveryModel(AppDbContext db) : PageModel
{
    [FromRoute] public long Id { get; set; }
    public bool AdminsOnly { get; private set; }
    public OutboxApi.DeliveryDto Delivery { get; private set; } = null!;
    public string TargetName { get; private set; } = "";

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin)
        {
            AdminsOnly = true;
            Response.StatusCode = StatusCodes.Status403Forbidden;
            return Page();
        }
        if ((await WebhookRules.DeliveriesAsync(db, me, null, null, null, 1, ct, Id)).FirstOrDefault() is not { } d) return NotFound();
        Delivery = d;
        TargetName = d.TargetKind switch
        {
            WebhookTarget.TargetKind => (await WebhookRules.FindAsync(db, me, d.TargetId, ct))?.Url ?? "(a deleted webhook)",
            DeliveriesModel.Salesforce => "Salesforce",
            var other => other,
        };
        return Page();
    }
}
