using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Content;

public sealed record ContentDto(Guid Id, string Name, ContentFileType Type, int Pages, int Thumbnails, long Size, bool AllowDownload,
    DateTimeOffset CreatedAt, bool Removed)
{
    public static ContentDto From(ContentItem c) =>
        new(c.Id, c.Name, c.FileType, c.PageCount, c.ThumbnailCount, c.OriginalSize, c.AllowDownload, c.CreatedAt, c.DeletedAt is not null);
}

/// <summary>
/// One reader of one document: a recipient, a share link's reader by the address they gave, or everyone else who came
/// through a share link.
/// </summary>
/// <param name="PageMs">Active milliseconds per page; index 0 is page 1.</param>
/// <param name="Links">The links inside the document the reader followed, each once, in the order first followed.</param>
/// <param name="ReaderEmail">The address a share link's reader gave (<see cref="Reader"/> says whether it was verified).</param>
public sealed record ReaderStats(string Reader, Guid? RecipientId, Guid? MessageId, int Visits, long ActiveMs, long[] PageMs,
    int MaxPage, int Downloads, DateTimeOffset LastVisit, List<FollowedLink> Links, string? ReaderEmail = null, bool ReaderVerified = false);

/// <summary>A link inside a document a reader followed: where it leads, the page it is on, how often.</summary>
public sealed record FollowedLink(string Url, int Page, int Times);

public sealed record ContentStatsResponse(ContentDto Content, int Visits, long ActiveMs, long[] PageMs, int Downloads,
    List<ReaderStats> Readers, int MachineVisits);

public static class ContentStats
{
    /// <summary>The documents a user may see: their own; a team admin sees the team's.</summary>
    public static IQueryable<ContentItem> Visible(AppDbContext db, CurrentUser me) =>
        me.IsAdmin ? db.Contents.Where(c => c.TeamId == me.TeamId) : db.Contents.Where(c => c.TeamId == me.TeamId && c.UserId == me.Id);

    /// <summary>Visits, time per page, how far and downloads, per reader; humans only unless <paramref name="machines"/>.</summary>
    public static async Task<ContentStatsResponse> ForAsync(AppDbContext db, ContentItem item, bool machines, CancellationToken ct)
    {
        var all = db.DocumentVisits.AsNoTracking().Where(v => v.ContentId == item.Id);
        var machineVisits = await all.CountAsync(v => v.Verdict != Verdict.Human, ct);
        var visits = await (machines ? all : all.Where(v => v.Verdict == Verdict.Human)).Include(v => v.Pages).ToListAsync(ct);
        var recipientIds = visits.Where(v => v.RecipientId != null).Select(v => v.RecipientId!.Value).Distinct().ToList();
        var addresses = await db.Recipients.AsNoTracking().Where(r => recipientIds.Contains(r.Id)).ToDictionaryAsync(r => r.Id, r => r.Address, ct);

        var followed = await db.Events.AsNoTracking()
            .Where(e => e.ContentId == item.Id && e.Kind == EventKind.DocumentLink && e.Url != null
                && (machines || e.Verdict == Verdict.Human))
            .OrderBy(e => e.Id).Select(e => new { e.RecipientId, e.ReaderEmail, e.ReaderVerified, Url = e.Url!, Page = e.Page ?? 0 }).ToListAsync(ct);
        // By reader as the visits are: links followed through a share link go with the address its reader gave, or with
        // "Readers of the share link" when none was asked.
        var links = followed.ToLookup(e => (e.RecipientId, e.ReaderEmail, e.ReaderVerified));

        var n = item.PageCount;
        var readers = visits.GroupBy(v => (v.RecipientId, v.ReaderEmail, v.ReaderVerified)).Select(g =>
        {
            var pages = new long[n];
            foreach (var p in g.SelectMany(v => v.Pages).Where(p => p.Page >= 1 && p.Page <= n)) pages[p.Page - 1] += p.ActiveMs;
            var who = g.Key.RecipientId is { } id && addresses.TryGetValue(id, out var a) ? a
                : g.Key.ReaderEmail is { } email ? ShareReader.Label(email, g.Key.ReaderVerified)
                : "Readers of the share link";
            return new ReaderStats(who, g.Key.RecipientId, g.Select(v => v.TrackedMessageId).FirstOrDefault(v => v != null), g.Count(), g.Sum(v => v.ActiveMs),
                pages, g.Max(v => v.MaxPage), g.Sum(v => v.Downloads), g.Max(v => v.LastSeenAt),
                [.. links[g.Key].GroupBy(e => (e.Url, e.Page)).Select(l => new FollowedLink(l.Key.Url, l.Key.Page, l.Count()))],
                g.Key.ReaderEmail, g.Key.ReaderVerified);
        }).OrderByDescending(r => r.LastVisit).ToList();

        var total = new long[n];
        foreach (var r in readers) for (var i = 0; i < n; i++) total[i] += r.PageMs[i];
        return new ContentStatsResponse(ContentDto.From(item), visits.Count, visits.Sum(v => v.ActiveMs), total, visits.Sum(v => v.Downloads),
            readers, machineVisits);
    }
}
