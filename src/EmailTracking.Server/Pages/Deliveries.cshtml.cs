using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Outbox;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Pages;

/// <summary>
/// The team's delivery log (/webhooks/deliveries): the latest deliveries to every kind of target (webhooks and
/// Salesforce share the table), filtered by state and target, each with every attempt; Replay on a dead letter and
/// "Replay all dead letters", as the API replays them. Team admins only.
/// </summary>
public sealed class DeliveriesModel(AppDbContext db, TimeProvider clock, OutboxSignal signal) : PageModel
{
    public const int Take = 200;
    public const string Salesforce = "salesforce";

    public bool AdminsOnly { get; private set; }
    /// <summary>pending, delivered, dead or skipped; null for any.</summary>
    [FromQuery(Name = "state")] public string? State { get; set; }
    /// <summary>A webhook's id, "salesforce", or null for any.</summary>
    [FromQuery(Name = "target")] public string? Target { get; set; }
    public List<WebhookEndpoint> Hooks { get; private set; } = [];
    public List<OutboxApi.DeliveryDto> Rows { get; private set; } = [];
    public int DeadCount { get; private set; }
    public List<string> FilterErrors { get; } = [];
    [TempData] public string? Notice { get; set; }

    /// <summary>What a delivery went to, as people know it: the webhook's URL, or Salesforce.</summary>
    public string TargetName(OutboxApi.DeliveryDto d) => d.TargetKind switch
    {
        WebhookTarget.TargetKind => Hooks.FirstOrDefault(h => h.Id == d.TargetId)?.Url ?? "(a deleted webhook)",
        Salesforce => "Salesforce",
        var other => other,
    };

    (Guid? Id, string? Kind) TargetFilter()
    {
        if (string.IsNullOrEmpty(Target)) return (null, null);
        if (Target == Salesforce) return (null, Salesforce);
        if (Guid.TryParse(Target, out var id) && Hooks.Any(h => h.Id == id)) return (id, null);
        FilterErrors.Add("That target is not one of the team's webhooks; showing every target.");
        Target = null;
        return (null, null);
    }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        State = string.IsNullOrEmpty(State) ? null : State.ToLowerInvariant();
        Target = string.IsNullOrEmpty(Target) ? null : Target.ToLowerInvariant();
        Hooks = await WebhookRules.ListAsync(db, me, ct);
        DeliveryState? state = null;
        if (State is not null)
        {
            if (WebhookRules.TryState(State, out var s) && !int.TryParse(State, out _)) state = s;
            else
            {
                FilterErrors.Add($"'{State}' is not a delivery state; they are pending, delivered, dead and skipped. Showing every state.");
                State = null;
            }
        }
        var (id, kind) = TargetFilter();
        Rows = await WebhookRules.DeliveriesAsync(db, me, id, kind, state, Take, ct);
        var dead = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId && x.State == DeliveryState.Dead);
        if (id is { } t) dead = dead.Where(x => x.TargetId == t);
        if (kind is not null) dead = dead.Where(x => x.TargetKind == kind);
        DeadCount = await dead.CountAsync(ct);
        return Page();
    }

    public async Task<IActionResult> OnPostReplayAsync(long id, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        var n = await WebhookRules.ReplayOneAsync(db, me, id, clock, signal, ct);
        if (n is null) return NotFound();
        Notice = n == 1 ? "The dead letter goes again." : "That delivery is not a dead letter (any more); nothing was replayed.";
        return Back();
    }

    public async Task<IActionResult> OnPostReplayAllAsync(CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        if (!me.IsAdmin) return Refused();
        Hooks = await WebhookRules.ListAsync(db, me, ct);
        var (id, kind) = TargetFilter();
        var dead = db.OutboxDeliveries.Where(x => x.TeamId == me.TeamId);
        if (kind is not null) dead = dead.Where(x => x.TargetKind == kind);
        int n;
        if (kind is null) n = await WebhookRules.ReplayDeadAsync(db, me, id, clock, signal, ct);
        else
        {
            n = await OutboxApi.Replay(db, dead, clock, ct);
            signal.Poke();
        }
        Notice = n switch { 0 => "There were no dead letters to replay.", 1 => "1 dead letter goes again.", _ => $"{n} dead letters go again." };
        return Back();
    }

    IActionResult Back() => Redirect("/webhooks/deliveries" + QueryString.Create(new Dictionary<string, string?> { ["state"] = State, ["target"] = Target }
        .Where(kv => !string.IsNullOrEmpty(kv.Value))).ToUriComponent());

    PageResult Refused()
    {
        AdminsOnly = true;
        Response.StatusCode = StatusCodes.Status403Forbidden;
        return Page();
    }
}
