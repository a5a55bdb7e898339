using EmailTracking.Data;
using Microsoft.EntityFrameworkCore;

namespace EmailTracking.Server.Outlook;

/// <summary>A Microsoft account that signs in as a user: linked on the add-in's link page, or bound at its first
/// sign-in by the user's email (then only its ids are known).</summary>
/// <param name="Key">"link:{id}" or "login:{tenant}/{object id}": what the user's Addresses page removes.</param>
public sealed record MicrosoftAccount(string Key, string TenantId, string ObjectId, string? DisplayName, string? SignInName, DateTimeOffset? LinkedAt);

/// <summary>
/// The Microsoft accounts that sign users in to the Outlook add-in (<see cref="MicrosoftSignIn"/>): the user's own
/// Addresses page, the Team page (for an admin, each member's) and `et users unlink-microsoft` read and remove them here.
/// </summary>
public static class MicrosoftAccounts
{
    /// <summary>Each user's Microsoft accounts: the bound ones first, then the linked ones in the order they were linked.</summary>
    public static async Task<Dictionary<Guid, List<MicrosoftAccount>>> OfAsync(AppDbContext db, IReadOnlyCollection<Guid> userIds, CancellationToken ct)
    {
        var ids = userIds.ToList();
        var linked = await db.MicrosoftAccountLinks.Where(l => ids.Contains(l.UserId)).OrderBy(l => l.Id).AsNoTracking().ToListAsync(ct);
        var bound = await db.UserLogins.Where(l => ids.Contains(l.UserId) && l.LoginProvider == MicrosoftSignIn.LoginProvider)
            .Select(l => new { l.UserId, l.ProviderKey }).ToListAsync(ct);
        return ids.Distinct().ToDictionary(id => id, id => (List<MicrosoftAccount>)
        [
            .. bound.Where(b => b.UserId == id).Select(b => b.ProviderKey).Order(StringComparer.Ordinal).Select(k => k.Split('/', 2) is [var t, var o]
                ? new MicrosoftAccount("login:" + k, t, o, null, null, null) : new MicrosoftAccount("login:" + k, k, "", null, null, null)),
            .. linked.Where(l => l.UserId == id).Select(l => new MicrosoftAccount("link:" + l.Id, l.TenantId, l.ObjectId, l.DisplayName, l.SignInName, l.LinkedAt)),
        ]);
    }

    /// <summary>
    /// Forgets every Microsoft account of the user: the one bound at the first add-in sign-in (so that the next one to
    /// sign in with the user's address is bound instead: an account deleted and made again, or moved to another tenant)
    /// and those the user linked. Answers how many were removed.
    /// </summary>
    public static async Task<int> UnlinkAllAsync(AppDbContext db, Guid userId, CancellationToken ct) =>
        await db.UserLogins.Where(l => l.UserId == userId && l.LoginProvider == MicrosoftSignIn.LoginProvider).ExecuteDeleteAsync(ct)
        + await db.MicrosoftAccountLinks.Where(l => l.UserId == userId).ExecuteDeleteAsync(ct);
}
