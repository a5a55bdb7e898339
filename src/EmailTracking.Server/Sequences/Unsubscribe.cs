using System.Net;
using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Sequences;

/// <summary>
/// The link at the foot of every sequence email and its List-Unsubscribe header. Opening the link shows a page with a
/// button (security scanners open links, so a GET changes nothing); the button, or the one-click POST a mail client
/// makes from the header (RFC 8058), stops every enrolment of the address in the team's sequences and suppresses
/// it for the team.
/// </summary>
public static class Unsubscribe
{
    public static void MapUnsubscribe(this IEndpointRouteBuilder app)
    {
        var g = app.MapGroup("/u").AllowAnonymous().ExcludeFromDescription();
        g.MapGet("/{token}", Page);
        g.MapPost("/{token}", Confirm).DisableAntiforgery();
    }

    static async Task<IResult> Page(string token, AppDbContext db, CancellationToken ct)
    {
        var found = await FindAsync(db, token, ct);
        if (found is null) return NotFound();
        var (e, sender) = found.Value;
        var forms = Accounts.AccountService.StoredForms(e.Address);
        var done = await db.Suppressions.AnyAsync(s => s.TeamId == e.TeamId && forms.Contains(s.Address), ct);
        return Html(done
            ? $"<h1>You are unsubscribed</h1><p>{Enc(e.Address)} gets no more emails of this kind from {Enc(sender)}.</p>"
            : $"<h1>Unsubscribe</h1><p>Stop emails of this kind from {Enc(sender)} to {Enc(e.Address)}?</p>" +
              $"<form method=\"post\"><button type=\"submit\">Unsubscribe</button></form>");
    }

    static async Task<IResult> Confirm(string token, AppDbContext db, SequenceRunner runner, [FromKeyedServices(SequenceOptions.ClockKey)] TimeProvider clock, CancellationToken ct)
    {
        var found = await FindAsync(db, token, ct);
        if (found is null) return NotFound();
        var (e, sender) = found.Value;
        await SuppressAndStopAsync(db, runner, e.TeamId, e.Address, SuppressionReason.Unsubscribed, "Unsubscribe link.", StopReason.Unsubscribed, clock, ct);
        return Html($"<h1>You are unsubscribed</h1><p>{Enc(e.Address)} gets no more emails of this kind from {Enc(sender)}.</p>");
    }

    /// <summary>Suppresses the address for the team and stops its live enrolments in the team's sequences.</summary>
    public static async Task SuppressAndStopAsync(AppDbContext db, SequenceRunner runner, Guid teamId, string address, SuppressionReason reason, string detail,
        StopReason stop, TimeProvider clock, CancellationToken ct)
    {
        await runner.SuppressAsync(teamId, address, reason, detail, ct);
        var now = clock.GetUtcNow();
        // The person's enrolments with their domain written either way (punycode or Unicode).
        var forms = Accounts.AccountService.StoredForms(address);
        foreach (var e in await db.Enrolments.Where(x => x.TeamId == teamId && forms.Contains(x.Address)
                                                         && (x.State == EnrolmentState.Active || x.State == EnrolmentState.Paused)).ToListAsync(ct))
        {
            e.State = EnrolmentState.Stopped;
            e.StopReason = stop;
            e.Note = stop == StopReason.Unsubscribed ? "The recipient unsubscribed." : $"{address} was added to the suppression list.";
            e.NextAt = null;
            e.PausedUntil = null;
            e.UpdatedAt = now;
        }
        try
        {
            await db.SaveChangesAsync(ct);
        }
        catch (DbUpdateException)
        {
            // A second click at the same moment suppressed it already; the enrolments are stopped by that one.
            db.ChangeTracker.Clear();
        }
    }

    static async Task<(Enrolment, string)?> FindAsync(AppDbContext db, string token, CancellationToken ct)
    {
        if (!Accounts.Tokens.LooksLikeTrackingToken(token)) return null;
        var e = await db.Enrolments.AsNoTracking().FirstOrDefaultAsync(x => x.UnsubscribeToken == token, ct);
        if (e is null) return null;
        var sender = await db.Users.Where(u => u.Id == e.UserId).Select(u => u.DisplayName ?? u.Email).FirstOrDefaultAsync(ct) ?? "the sender";
        return (e, sender);
    }

    static string Enc(string s) => WebUtility.HtmlEncode(s);

    static IResult NotFound() => Results.Content(Layout("<h1>Not found</h1><p>This unsubscribe link is not known.</p>"), "text/html; charset=utf-8", statusCode: 404);

    static IResult Html(string body) => Results.Content(Layout(body), "text/html; charset=utf-8");

    static string Layout(string body) =>
        "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta name=\"viewport\" content=\"width=device-width\"><meta name=\"robots\" content=\"noindex\">" +
        "<title>Unsubscribe</title></head><body>" + body + "</body></html>";
}
