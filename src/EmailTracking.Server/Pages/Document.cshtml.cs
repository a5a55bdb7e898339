using System.Globalization;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Content;
using EmailTracking.Server.Tracking;
using EmailTracking.Data;
using Microsoft.AspNetCore.Mvc;
using Microsoft.AspNetCore.Mvc.RazorPages;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;

namespace EmailTracking.Server.Pages;

/// <summary>One document's readers (visits, time, time per page, how far, downloads) and its share links with their settings.</summary>
public sealed class DocumentModel(AppDbContext db, ContentLibrary library, ShareLinkGate gate, IOptions<TrackingOptions> tracking, TimeProvider clock) : PageModel
{
    public ContentStatsResponse Stats { get; private set; } = null!;
    public List<ContentApi.DocumentLinkResponse> Links { get; private set; } = [];
    public bool Machines { get; private set; }
    /// <summary>Whether links may ask readers to prove their address (the server has a mail relay).</summary>
    public bool CanVerify => gate.CanVerify;
    /// <summary>Why the last change of a link was refused; the link is as it was.</summary>
    public string? LinkProblem { get; private set; }
    /// <summary>The link just made or changed, to mark in the list.</summary>
    [TempData] public string? Changed { get; set; }

    /// <summary>
    /// A link form as it was posted and refused: the link's token (null for the new link's form), and its fields as the
    /// form shows them (the expiry in UTC, as the page writes it for its script), so that what was chosen is not lost.
    /// </summary>
    public (string? Token, string Expires, string Downloads, string Reader)? Refused { get; private set; }

    /// <summary>A link's fields as its form shows them: as posted if its change was just refused, else as the link is.</summary>
    public (string Expires, string Downloads, string Reader) FormOf(ContentApi.DocumentLinkResponse l) =>
        Refused is { Token: { } token } r && token == l.Token ? (r.Expires, r.Downloads, r.Reader)
            : (InputTime(l.ExpiresAt), l.AllowDownload switch { true => "yes", false => "no", null => "document" },
                l.VerifyEmail ? "verify" : l.RequireEmail ? "email" : "none");

    /// <summary>The new link's form: empty, or as posted if it was just refused.</summary>
    public (string Expires, string Downloads, string Reader) NewLinkForm =>
        Refused is { Token: null } r ? (r.Expires, r.Downloads, r.Reader) : ("", "document", "none");

    async Task<ContentItem?> FindAsync(Guid id, CancellationToken ct) =>
        await ContentStats.Visible(db, CurrentUser.Required(User)).AsNoTracking().FirstOrDefaultAsync(c => c.Id == id, ct);

    public async Task<IActionResult> OnGetAsync(Guid id, bool? machines, CancellationToken ct)
    {
        var item = await FindAsync(id, ct);
        if (item is null) return NotFound();
        Machines = machines == true;
        await LoadAsync(item, ct);
        return Page();
    }

    async Task LoadAsync(ContentItem item, CancellationToken ct)
    {
        Stats = await ContentStats.ForAsync(db, item, Machines, ct);
        Links = await ContentApi.ShareLinksAsync(db, item, TrackingUrls.For(HttpContext, tracking.Value), clock.GetUtcNow(), ct);
    }

    /// <summary>Largest time-zone offset a browser can send, in minutes (UTC−12 to UTC+14).</summary>
    const int MaxOffsetMinutes = 14 * 60;

    /// <summary>
    /// The link form's fields as settings: an expiry (or empty for none), downloads, what the reader is asked. The
    /// page's script sends the browser's offset from UTC for the date typed (JavaScript's getTimezoneOffset: minutes
    /// to add to the local time to get UTC), and the expiry is a local time; without script no offset comes, and the
    /// expiry is UTC, as the page then says.
    /// </summary>
    static (ContentApi.ShareLinkSettings? Settings, string? Problem) Read(string? expires, string? downloads, string? reader, string? offset, DateTimeOffset now)
    {
        DateTimeOffset? end = null;
        if (!string.IsNullOrWhiteSpace(expires))
        {
            if (!DateTime.TryParse(expires, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t))
                return (null, $"'{expires}' is not a time. Pick a date and time, or leave it empty for a link that does not expire.");
            var minutes = 0;
            if (!string.IsNullOrEmpty(offset) &&
                (!int.TryParse(offset, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out minutes) || Math.Abs(minutes) > MaxOffsetMinutes))
                return (null, $"'{offset}' is not a time-zone offset (minutes from UTC, −{MaxOffsetMinutes} to {MaxOffsetMinutes}). Reload the page and pick the time again.");
            // 31 December 9999 typed west of UTC is past the last time there is (it failed with an error page).
            var ticks = t.Ticks + minutes * TimeSpan.TicksPerMinute;
            if (ticks > DateTimeOffset.MaxValue.UtcTicks)
                return (null, $"'{expires}' is later than any time this server can keep. Pick an earlier date, or leave it empty for a link that does not expire.");
            if (ticks <= now.UtcTicks)
                return (null, PastExpiry(expires));
            end = new DateTimeOffset(ticks, TimeSpan.Zero);
        }
        bool? allow = downloads switch { "yes" => true, "no" => false, _ => null };
        var (require, verify) = reader switch { "verify" => (true, true), "email" => (true, false), _ => (false, false) };
        return (new ContentApi.ShareLinkSettings(end, true, null, allow, true, require, verify), null);
    }

    public async Task<IActionResult> OnPostNewLinkAsync(Guid id, string? expires, string? downloads, string? reader, string? offset, CancellationToken ct)
    {
        var me = CurrentUser.Required(User);
        var item = await FindAsync(id, ct);
        if (item is null) return NotFound();
        if (item.DeletedAt is not null || await library.CheckPlanAsync(me, ct) is not null)
            return await RefusedAsync(item, "New links are not made for this document: it was removed, or your team's plan does not include documents.", ct);
        var now = clock.GetUtcNow();
        var (settings, problem) = Read(expires, downloads, reader, offset, now);
        var link = new ContentLink { Token = "", ContentId = item.Id, TeamId = item.TeamId, UserId = me.Id, CreatedAt = now };
        if (problem is not null || ContentApi.Apply(link, settings!, gate, now) is { } refused && (problem = Detail(refused)) is not null)
        {
            Refused = (null, Posted(expires, offset), downloads ?? "document", reader ?? "none");
            return await RefusedAsync(item, problem!, ct);
        }
        link = await ContentLinks.CreateShareAsync(db, item, me.Id, now, ct, link);
        Changed = link.Token;
        return RedirectToPage(new { id });
    }

    public async Task<IActionResult> OnPostUpdateLinkAsync(Guid id, string token, string? expires, string? downloads, string? reader, string? offset,
        CancellationToken ct)
    {
        var item = await FindAsync(id, ct);
        if (item is null) return NotFound();
        var link = await db.ContentLinks.FirstOrDefaultAsync(l => l.Token == token && l.ContentId == item.Id && l.TrackedMessageId == null, ct);
        if (link is null) return NotFound();
        // An expiry left as it was is kept even once it has passed: changing other settings of an expired link is allowed.
        // The form shows it to the minute: one set through the API with seconds (10:04:43) comes back as 10:04, and is
        // the same expiry, not a new one (it was taken for a new one, refused as past on an expired link, and so nothing
        // else of that link could be changed here).
        var now = clock.GetUtcNow();
        var (settings, problem) = Read(expires, downloads, reader, offset, DateTimeOffset.MinValue);
        if (settings is not null && SameMinute(settings.ExpiresAt, link.ExpiresAt)) settings = settings with { ExpiresAtGiven = false };
        else if (settings?.ExpiresAt is { } end && end <= now)
            (settings, problem) = (null, PastExpiry(expires));
        if (problem is not null || ContentApi.Apply(link, settings!, gate, now) is { } refused && (problem = Detail(refused)) is not null)
        {
            db.ChangeTracker.Clear();
            Refused = (token, Posted(expires, offset), downloads ?? "document", reader ?? "none");
            return await RefusedAsync(item, problem!, ct);
        }
        await db.SaveChangesAsync(ct);
        Changed = link.Token;
        return RedirectToPage(new { id });
    }

    /// <summary>Turns a link off (its readers are told to ask for a new one) or on again.</summary>
    public async Task<IActionResult> OnPostToggleLinkAsync(Guid id, string token, bool off, CancellationToken ct)
    {
        var item = await FindAsync(id, ct);
        if (item is null) return NotFound();
        var link = await db.ContentLinks.FirstOrDefaultAsync(l => l.Token == token && l.ContentId == item.Id && l.TrackedMessageId == null, ct);
        if (link is null) return NotFound();
        link.DisabledAt = off ? link.DisabledAt ?? clock.GetUtcNow() : null;
        await db.SaveChangesAsync(ct);
        Changed = link.Token;
        return RedirectToPage(new { id });
    }

    static string PastExpiry(string? expires) =>
        $"The expiry ({expires}) is in the past. Pick a later date and time, or leave it empty for a link that does not expire; Turn off stops a link at once.";

    static string Detail(Microsoft.AspNetCore.Http.HttpResults.ProblemHttpResult p) => $"{p.ProblemDetails.Title}: {p.ProblemDetails.Detail}";

    /// <summary>Whether a posted expiry is the stored one as the form shows it, to the minute (or both are none).</summary>
    static bool SameMinute(DateTimeOffset? posted, DateTimeOffset? stored) =>
        posted is null ? stored is null
            : stored is { } s && posted.Value.UtcTicks == s.UtcTicks - s.UtcTicks % TimeSpan.TicksPerMinute;

    /// <summary>
    /// A refused form's expiry as the page writes it (UTC, which the page's script shows in the browser's zone again): the
    /// time posted, read in the offset posted. One that cannot be read so is left empty (the problem above names it):
    /// written as posted, the script would show it shifted by the reader's offset.
    /// </summary>
    static string Posted(string? expires, string? offset)
    {
        if (string.IsNullOrWhiteSpace(expires)
            || !DateTime.TryParse(expires, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var t)) return "";
        var minutes = 0;
        if (!string.IsNullOrEmpty(offset) && !int.TryParse(offset, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out minutes)) return "";
        var ticks = t.Ticks + (long)minutes * TimeSpan.TicksPerMinute;
        return ticks < 0 || ticks > DateTime.MaxValue.Ticks ? "" : InputTime(new DateTimeOffset(ticks, TimeSpan.Zero));
    }

    async Task<IActionResult> RefusedAsync(ContentItem item, string problem, CancellationToken ct)
    {
        LinkProblem = problem;
        Response.StatusCode = 400;
        await LoadAsync(item, ct);
        return Page();
    }

    public static string Duration(long ms)
    {
        var t = TimeSpan.FromMilliseconds(ms);
        if (t.TotalSeconds < 60) return $"{t.TotalSeconds:0} s";
        if (t.TotalMinutes < 60) return $"{(int)t.TotalMinutes} min {t.Seconds} s";
        return $"{(int)t.TotalHours} h {t.Minutes} min";
    }

    /// <summary>An expiry as the form's datetime-local field takes it, in UTC (the page's script shows it in the browser's zone).</summary>
    public static string InputTime(DateTimeOffset? t) => t?.UtcDateTime.ToString("yyyy-MM-ddTHH:mm", CultureInfo.InvariantCulture) ?? "";
}
