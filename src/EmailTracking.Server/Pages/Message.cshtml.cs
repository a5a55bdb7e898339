using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Data;
using EmailTracking.Server.Mailboxes;
using EmailTracking.Server.Messages;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

public sealed class MessageModel(AppDbContext db, MailSender sender, IOptions<TrackingOptions> tracking) : PageModel
{
    [BindProperty(SupportsGet = true)] public Guid Id { get; set; }
    [BindProperty(SupportsGet = true)] public bool Machines { get; set; }

    /// <summary>What the page that sent the message says of it (the Compose page: sent to whom, or who it did not reach).</summary>
    public const string NoticeKey = "MessageNotice";
    /// <summary>Set when the notice tells of copies that were not sent.</summary>
    public const string NoticeProblemKey = "MessageNoticeProblem";
    [TempData(Key = NoticeKey)] public string? Notice { get; set; }
    [TempData(Key = NoticeProblemKey)] public bool NoticeProblem { get; set; }

    public MessagesApi.MessageDetail Detail { get; private set; } = null!;
    /// <summary>Whether the message is the user's own (a team admin sees the team's): only its owner sends its copies again.</summary>
    public bool IsOwner { get; private set; }
    public long LastEventId { get; private set; }
    public long LastChangeId { get; private set; }

    public async Task<IActionResult> OnGetAsync(CancellationToken ct)
    {
        // The live feed continues after LastEventId and LastChangeId, so the page shows everything up to them and
        // nothing beyond, all read from one snapshot.
        await using var snapshot = await ReadSnapshot.BeginAsync(db, ct);
        LastEventId = await db.Events.Select(e => (long?)e.Id).MaxAsync(ct) ?? 0;
        LastChangeId = await db.VerdictChanges.Select(c => (long?)c.Id).MaxAsync(ct) ?? 0;
        var me = CurrentUser.Required(User);
        var detail = await MessagesApi.LoadDetailAsync(db, me, Id, Machines, ct, LastEventId);
        if (detail is null) return NotFound();
        Detail = detail;
        IsOwner = await db.Messages.AnyAsync(m => m.Id == Id && m.UserId == me.Id, ct);
        return Page();
    }

    /// <summary>
    /// "Send again": the copies that were not sent go again, as POST /api/messages/{id}/resend sends them; the page
    /// comes back with what became of them, or why nothing was sent.
    /// </summary>
    public async Task<IActionResult> OnPostResendAsync()
    {
        var outcome = await sender.ResendAsync(CurrentUser.Required(User), Id, TrackingUrls.For(HttpContext, tracking.Value), CancellationToken.None);
        if (outcome.ProblemStatus == StatusCodes.Status404NotFound) return NotFound();
        if (outcome.Response is { } sent)
        {
            var notSent = sent.Copies.Where(c => !c.Sent).ToList();
            var count = sent.Copies.Where(c => c.Sent && !c.FoundInSent).Sum(c => c.Recipients.Count);
            var found = sent.Copies.Where(c => c.FoundInSent).SelectMany(c => c.Recipients).ToList();
            Notice = string.Join(" ", new[] { count > 0 ? $"Sent again to {Display.Plural(count, "recipient", "recipients")}." : found.Count > 0 ? null : "Nothing was sent." }
                .Concat(found.Count > 0 ? [$"Found in the Sent folder, so it had left and was not sent again: {string.Join(", ", found)}."] : [])
                .Concat(notSent.Select(c => $"Not sent to {string.Join(", ", c.Recipients)}: {c.Error}")).Where(n => n is not null));
            NoticeProblem = notSent.Count > 0;
        }
        else
        {
            Notice = outcome.Errors is { } errors ? string.Join(" ", errors.Values.SelectMany(e => e))
                : $"{outcome.ProblemTitle} {outcome.ProblemDetail}".Trim();
            NoticeProblem = true;
        }
        return Redirect($"/messages/{Id}");
    }
}
