using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Tracking;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Content;

/// <summary>
/// Tracked document links in message bodies. "Add to email" puts a share link of the sender's in the body; when the
/// message is registered each copy gets a link of its own for the same document, so a forwarded or shared copy still
/// tells which recipient's link was read.
/// </summary>
public static class ContentLinks
{
    public static string Url(TrackingUrls urls, string token) => urls.Document(token);

    /// <summary>What "add to email" inserts: a plain link naming the document and its length.</summary>
    public static string Html(string url, ContentItem item) =>
        $"<a href=\"{WebUtility.HtmlEncode(url)}\">{WebUtility.HtmlEncode(item.Name)} ({item.PageCount} {(item.PageCount == 1 ? "page" : "pages")})</a>";

    /// <summary>"Add to email": a new share link of <paramref name="userId"/> to the document, stored (with the settings of <paramref name="settings"/>, if given).</summary>
    public static async Task<ContentLink> CreateShareAsync(AppDbContext db, ContentItem item, Guid userId, DateTimeOffset now, CancellationToken ct,
        ContentLink? settings = null)
    {
        var link = new ContentLink
        {
            Token = Tokens.NewTrackingToken(), ContentId = item.Id, TeamId = item.TeamId, UserId = userId, CreatedAt = now,
            ExpiresAt = settings?.ExpiresAt, DisabledAt = settings?.DisabledAt, AllowDownload = settings?.AllowDownload,
            EmailGate = settings?.EmailGate ?? ReaderEmailGate.None,
        };
        db.ContentLinks.Add(link);
        await db.SaveChangesAsync(ct);
        return link;
    }

    /// <summary>The team's share links named in these hrefs, by token.</summary>
    public static async Task<Dictionary<string, ContentLink>> FindSharesAsync(AppDbContext db, CurrentUser me, IEnumerable<string> hrefs,
        TrackingUrls urls, CancellationToken ct)
    {
        var tokens = hrefs.Select(urls.DocumentToken).OfType<string>().Distinct().ToList();
        if (tokens.Count == 0) return [];
        return await db.ContentLinks.AsNoTracking()
            .Where(l => tokens.Contains(l.Token) && l.TeamId == me.TeamId)
            .ToDictionaryAsync(l => l.Token, ct);
    }

    /// <summary>
    /// The rewriter for one copy: a share link becomes a new link of this copy (and recipient) for the same document,
    /// which stops working when the share link is turned off or expires; anything else is left to the click tracking (null).
    /// </summary>
    public static Func<string, string?> ForCopy(Dictionary<string, ContentLink> shares, TrackedMessage message, MessageCopy copy,
        TrackingUrls urls, List<ContentLink> created)
    {
        if (shares.Count == 0) return _ => null;
        return href =>
        {
            if (urls.DocumentToken(href) is not { } token || !shares.TryGetValue(token, out var share)) return null;
            var link = new ContentLink
            {
                Token = Tokens.NewTrackingToken(),
                ContentId = share.ContentId,
                TeamId = message.TeamId,
                UserId = message.UserId,
                TrackedMessageId = message.Id,
                CopyId = copy.Id,
                RecipientId = copy.RecipientId,
                CreatedAt = message.CreatedAt,
                // The share link's expiry and off switch hold for the recipient's link too (read through this, so a
                // later change of the share link reaches it).
                SharedFromId = share.Id,
            };
            created.Add(link);
            return urls.Document(link.Token);
        };
    }
}
