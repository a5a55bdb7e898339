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
/// One reader of one document: a recipient, the readers of one shared copy of a message (named by its recipients), a
/// share link's reader by the address they gave, or everyone else who came through a share link.
/// </summary>
/// <param name="PageMs">Active milliseconds per page; index 0 is page 1.</param>
/// <param name="Links">The links inside the document the reader followed, each once, in the order first followed.</param>
/// <param name="ReaderEmail">The address a share link's reader gave (<see cref="Reader"/> says whether it was verified).</param>
/// <param name="CopyId">For the readers of a shared copy (one body for all its recipients), that copy.</param>
public sealed record ReaderStats(string Reader, Guid? RecipientId, Guid? MessageId, int Visits, long ActiveMs, long[] PageMs,
    int MaxPage, int Downloads, DateTimeOffset LastVisit, List<FollowedLink> Links, string? ReaderEmail = null, bool ReaderVerified = false,
    Guid? CopyId = null);

/// <summary>A link inside a document a reader followed: where it leads, the page it is on, how often.</summary>
public sealed record FollowedLink(string Url, int Page, int Times);

public sealed record ContentStatsResponse(ContentDto Content, int Visits, long ActiveMs, long[] PageMs, int Downloads,
    List<ReaderStats> Readers, int MachineVisits);

public static class ContentStats
{
    /// <summary>The documents a user may see: their own; a team admin sees the team's.</summary>
    public static IQueryable<ContentItem> Visible(AppDbContext db, CurrentUser me) =>
        me.IsAdmin ? db.Contents.Where(c => c.TeamId == me.TeamId) : db.Contents.Where(c => c.TeamId == me.TeamId && c.UserId == me.Id);

    /// <summary>
    /// Who a visit or a followed link is counted for. A link in a copy sent to one recipient names the recipient. A link
    /// in a shared copy (the add-ins send every message as one) names no one, so its reads go with that copy: two
    /// messages to two prospects stay two readers, and neither is taken for the share link's. A share link outside any
    /// message names its reader by the address they gave, if it asked for one.
    /// </summary>
    readonly record struct ReaderKey(Guid? RecipientId, Guid? CopyId, string? ReaderEmail, bool ReaderVerified)
    {
        public static ReaderKey Of(Guid? recipientId, Guid? copyId, string? readerEmail, bool readerVerified) =>
            recipientId is not null ? new(recipientId, null, null, false) : new(null, copyId, readerEmail, readerVerified);
    }

    /// <summary>At most this many of a shared copy's recipients name its row; the rest are counted.</summary>
    const int NamedRecipients = 3;

    /// <summary>Visits, time per page, how far and downloads, per reader; humans only unless <paramref name="machines"/>.</summary>
    public static async Task<ContentStatsResponse> ForAsync(AppDbContext db, ContentItem item, bool machines, CancellationToken ct)
    {
        var all = db.DocumentVisits.AsNoTracking().Where(v => v.ContentId == item.Id);
        var machineVisits = await all.CountAsync(v => v.Verdict != Verdict.Human, ct);
        var visits = await (machines ? all : all.Where(v => v.Verdict == Verdict.Human)).Include(v => v.Pages).ToListAsync(ct);
        var recipientIds = visits.Where(v => v.RecipientId != null).Select(v => v.RecipientId!.Value).Distinct().ToList();
        var addresses = await db.Recipients.AsNoTracking().Where(r => recipientIds.Contains(r.Id)).ToDictionaryAsync(r => r.Id, r => r.Address, ct);
        // A visit knows its link, and a link in a message knows the copy it was put in.
        var copyOfLink = await db.ContentLinks.AsNoTracking().Where(l => l.ContentId == item.Id && l.CopyId != null)
            .ToDictionaryAsync(l => l.Id, l => l.CopyId, ct);
        ReaderKey KeyOf(DocumentVisit v) => ReaderKey.Of(v.RecipientId, copyOfLink.GetValueOrDefault(v.ContentLinkId), v.ReaderEmail, v.ReaderVerified);

        var followed = await db.Events.AsNoTracking()
            .Where(e => e.ContentId == item.Id && e.Kind == EventKind.DocumentLink && e.Url != null
                && (machines || e.Verdict == Verdict.Human))
            .OrderBy(e => e.Id).Select(e => new { e.RecipientId, e.CopyId, e.ReaderEmail, e.ReaderVerified, Url = e.Url!, Page = e.Page ?? 0 }).ToListAsync(ct);
        // By reader as the visits are: links followed through a share link go with the address its reader gave, or with
        // "Readers of the share link" when none was asked.
        var links = followed.ToLookup(e => ReaderKey.Of(e.RecipientId, e.CopyId, e.ReaderEmail, e.ReaderVerified));

        var groups = visits.GroupBy(KeyOf).ToList();
        var copyNames = await CopyNamesAsync(db, groups.Where(g => g.Key.CopyId is not null)
            .Select(g => (g.Key.CopyId!.Value, g.First().TrackedMessageId)).ToList(), ct);

        var n = item.PageCount;
        var readers = groups.Select(g =>
        {
            var pages = new long[n];
            foreach (var p in g.SelectMany(v => v.Pages).Where(p => p.Page >= 1 && p.Page <= n)) pages[p.Page - 1] += p.ActiveMs;
            var who = g.Key.RecipientId is { } id && addresses.TryGetValue(id, out var a) ? a
                : g.Key.CopyId is { } copy ? copyNames[copy]
                : g.Key.ReaderEmail is { } email ? ShareReader.Label(email, g.Key.ReaderVerified)
                : "Readers of the share link";
            return new ReaderStats(who, g.Key.RecipientId, g.Select(v => v.TrackedMessageId).FirstOrDefault(v => v != null), g.Count(), g.Sum(v => v.ActiveMs),
                pages, g.Max(v => v.MaxPage), g.Sum(v => v.Downloads), g.Max(v => v.LastSeenAt),
                [.. links[g.Key].GroupBy(e => (e.Url, e.Page)).Select(l => new FollowedLink(l.Key.Url, l.Key.Page, l.Count()))],
                g.Key.ReaderEmail, g.Key.ReaderVerified, g.Key.CopyId);
        }).OrderByDescending(r => r.LastVisit).ToList();

        var total = new long[n];
        foreach (var r in readers) for (var i = 0; i < n; i++) total[i] += r.PageMs[i];
        return new ContentStatsResponse(ContentDto.From(item), visits.Count, visits.Sum(v => v.ActiveMs), total, visits.Sum(v => v.Downloads),
            readers, machineVisits);
    }

    /// <summary>
    /// What names the readers of each shared copy: its recipients ("alan@encom.test, bob@encom.test and 2 more"), or
    /// the message's subject when it has none.
    /// </summary>
    static async Task<Dictionary<Guid, string>> CopyNamesAsync(AppDbContext db, List<(Guid CopyId, Guid? MessageId)> copies, CancellationToken ct)
    {
        if (copies.Count == 0) return [];
        var messageIds = copies.Select(c => c.MessageId).OfType<Guid>().Distinct().ToList();
        var copyIds = copies.Select(c => c.CopyId).ToHashSet();
        // Recipients are found by message (indexed), then kept for the copies wanted.
        var recipients = (await db.Recipients.AsNoTracking().Where(r => messageIds.Contains(r.TrackedMessageId))
                .Select(r => new { r.CopyId, r.Role, r.Address }).ToListAsync(ct))
            .Where(r => copyIds.Contains(r.CopyId)).ToLookup(r => r.CopyId);
        var subjects = await db.Messages.AsNoTracking().Where(m => messageIds.Contains(m.Id)).ToDictionaryAsync(m => m.Id, m => m.Subject, ct);
        var names = new Dictionary<Guid, string>();
        foreach (var (copyId, messageId) in copies)
        {
            var to = recipients[copyId].OrderBy(r => r.Role).ThenBy(r => r.Address, StringComparer.Ordinal).Select(r => r.Address).ToList();
            names[copyId] = to.Count > 0
                ? string.Join(", ", to.Take(NamedRecipients)) + (to.Count > NamedRecipients ? $" and {to.Count - NamedRecipients} more" : "")
                : messageId is { } m && subjects.TryGetValue(m, out var subject) && subject.Length > 0 ? subject
                : "(no subject)";
        }
        return names;
    }
}
