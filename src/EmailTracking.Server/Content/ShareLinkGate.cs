using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using MimeKit;

namespace EmailTracking.Server.Content;

/// <summary>A share link's reader as they named themselves: the address they gave, and whether a mailed code proved it.</summary>
public sealed record ShareReader(string Email, bool Verified)
{
    /// <summary>How the owner's pages name the reader: the address, and how far it can be trusted.</summary>
    public static string Label(string email, bool verified) =>
        verified ? $"{email} (verified)" : $"{email} (given by the reader, not verified)";
}

/// <summary>
/// The gate in front of a share link that asks for the reader's address (<see cref="ContentLink.EmailGate"/>): the
/// cookies that remember a reader for one link, and the 6-digit codes mailed through the server's relay to prove an
/// address. The cookies are made with Data Protection and name the link, so they cannot be made up, altered or carried
/// to another link.
/// </summary>
public sealed class ShareLinkGate(IDataProtectionProvider provider, TimeProvider clock, ISystemMail mail, ILogger<ShareLinkGate> log)
{
    /// <summary>The reader's cookie, one per link (its path is the link's).</summary>
    public const string ReaderCookie = "et_reader";
    /// <summary>The address waiting for its code, between the email form and the code form.</summary>
    public const string PendingCookie = "et_reader_pending";

    /// <summary>A verified reader is not asked again for this long, on the same browser.</summary>
    public static readonly TimeSpan VerifiedLifetime = TimeSpan.FromDays(30);
    /// <summary>A reader who gave an address without proof keeps it for the browser session, at most this long.</summary>
    public static readonly TimeSpan GivenLifetime = TimeSpan.FromDays(1);
    public static readonly TimeSpan CodeLifetime = TimeSpan.FromMinutes(10);
    /// <summary>Wrong codes in a row before the reader of that link, client address and email address is locked out.</summary>
    public const int MaxAttempts = 5;
    public static readonly TimeSpan Lockout = TimeSpan.FromMinutes(15);
    /// <summary>Codes mailed to one address for one link and client in an hour.</summary>
    public const int MaxCodesPerHour = 5;

    readonly ExpiringTokens readers = new(provider.CreateProtector("EmailTracking.Content.ShareReader.v1"), clock);
    readonly ExpiringTokens pending = new(provider.CreateProtector("EmailTracking.Content.ShareReaderPending.v1"), clock);

    public bool CanVerify => mail.Configured;

    /// <summary>The reader this browser named for the link; null when none, or when the link now wants proof the cookie lacks.</summary>
    public ShareReader? Reader(HttpRequest request, ContentLink link)
    {
        if (Unpack(readers.Unprotect(request.Cookies[ReaderCookie]), link) is not [var email, var verified]) return null;
        var reader = new ShareReader(email, verified == "1");
        return link.EmailGate == ReaderEmailGate.VerifiedEmail && !reader.Verified ? null : reader;
    }

    /// <summary>The address that waits for its code on this browser, if any.</summary>
    public string? PendingEmail(HttpRequest request, ContentLink link) =>
        Unpack(pending.Unprotect(request.Cookies[PendingCookie]), link) is [var email] ? email : null;

    static string[]? Unpack(string? payload, ContentLink link)
    {
        if (payload is null) return null;
        var parts = payload.Split('\n');
        return parts.Length >= 2 && parts[0] == link.Id.ToString("N") ? parts[1..] : null;
    }

    public void Remember(HttpResponse response, string token, ContentLink link, ShareReader reader)
    {
        var lifetime = reader.Verified ? VerifiedLifetime : GivenLifetime;
        var value = readers.Protect($"{link.Id:N}\n{reader.Email}\n{(reader.Verified ? "1" : "0")}", lifetime);
        // A verified reader keeps the cookie for 30 days; an address given without proof lasts the browser session.
        response.Cookies.Append(ReaderCookie, value, Options(response, token, reader.Verified ? clock.GetUtcNow() + lifetime : null));
        response.Cookies.Delete(PendingCookie, Options(response, token, null));
    }

    void Pend(HttpResponse response, string token, ContentLink link, string email) =>
        response.Cookies.Append(PendingCookie, pending.Protect($"{link.Id:N}\n{email}", CodeLifetime), Options(response, token, null));

    /// <summary>"Use another address": the address waiting for its code is dropped.</summary>
    public static void Forget(HttpResponse response, string token) => response.Cookies.Delete(PendingCookie, Options(response, token, null));

    static CookieOptions Options(HttpResponse response, string token, DateTimeOffset? expires) => new()
    {
        Path = $"/d/{token}",
        HttpOnly = true,
        Secure = response.HttpContext.Request.IsHttps,
        SameSite = SameSiteMode.Lax,
        Expires = expires,
        IsEssential = true,
    };

    /// <summary>The address typed in the form, in the form it is stored and shown; null when it is not one address.</summary>
    public static string? ParseEmail(string? text) =>
        AccountService.TryParseAddress(text, out var address, out var name) && name is null && !text!.Contains('<') ? address.ToLowerInvariant() : null;

    public enum CodeSend { Sent, LockedOut, TooMany, NotSent }

    /// <summary>
    /// Mails a new code for <paramref name="email"/> to read <paramref name="link"/> from <paramref name="visitor"/>,
    /// replacing the last one; remembers the address as waiting for it on this browser.
    /// </summary>
    public async Task<(CodeSend Result, DateTimeOffset? Until)> SendCodeAsync(AppDbContext db, HttpResponse response, string token, ContentLink link,
        ContentItem content, string visitor, string email, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var mine = db.ShareLinkCodes.Where(c => c.ContentLinkId == link.Id && c.Visitor == visitor && c.Email == email);
        // As for the checks: each mail claims its place in the hour's count in the database before it goes (an update
        // that only succeeds on the values read), so a burst of requests cannot have more than MaxCodesPerHour codes
        // mailed to an address. A round that loses its claim reads the row again.
        for (var round = 0; round < 4 * MaxCodesPerHour; round++)
        {
            var row = await mine.AsNoTracking().Select(c => new { c.Id, c.CodesSent, c.WindowStartedAt, c.LockedUntil }).FirstOrDefaultAsync(ct);
            if (row?.LockedUntil is { } locked && locked > now) return (CodeSend.LockedOut, locked);
            if (row is null)
            {
                // The first code for this reader: the row is made without a code, then claimed like any other. Two
                // first requests at once meet the unique index; the one that loses reads the other's row.
                db.ShareLinkCodes.Add(new ShareLinkCode { ContentLinkId = link.Id, Visitor = visitor, Email = email, CodeHash = "", WindowStartedAt = now });
                try
                {
                    await db.SaveChangesAsync(ct);
                }
                catch (DbUpdateException)
                {
                    db.ChangeTracker.Clear();
                }
                continue;
            }
            var newWindow = now - row.WindowStartedAt >= TimeSpan.FromHours(1);
            var sent = newWindow ? 0 : row.CodesSent;
            var window = newWindow ? now : row.WindowStartedAt;
            if (sent >= MaxCodesPerHour) return (CodeSend.TooMany, window.AddHours(1));
            var claim = db.ShareLinkCodes.Where(c => c.Id == row.Id && c.CodesSent == row.CodesSent && c.WindowStartedAt == row.WindowStartedAt
                                                     && c.LockedUntil == row.LockedUntil);
            // A lockout that has run out is lifted with the new code, and its tries start again.
            var claimed = row.LockedUntil is null
                ? await claim.ExecuteUpdateAsync(u => u.SetProperty(c => c.CodesSent, sent + 1).SetProperty(c => c.WindowStartedAt, window), ct)
                : await claim.ExecuteUpdateAsync(u => u.SetProperty(c => c.CodesSent, sent + 1).SetProperty(c => c.WindowStartedAt, window)
                    .SetProperty(c => c.LockedUntil, (DateTimeOffset?)null).SetProperty(c => c.FailedAttempts, 0), ct);
            if (claimed == 0) continue;

            var code = RandomNumberGenerator.GetInt32(0, 1_000_000).ToString("D6", CultureInfo.InvariantCulture);
            try
            {
                await mail.SendAsync(Compose(email, code, content.Name), ct);
            }
            catch (SystemMailException e)
            {
                // A code that never left does not count against the hour.
                await db.ShareLinkCodes.Where(c => c.Id == row.Id && c.CodesSent > 0 && c.WindowStartedAt == window)
                    .ExecuteUpdateAsync(u => u.SetProperty(c => c.CodesSent, c => c.CodesSent - 1), CancellationToken.None);
                log.LogWarning("A share link's code for a reader was not sent: {Reason}", e.Message);
                return (CodeSend.NotSent, null);
            }
            // Stored once mailed: a code that never left is not one to be tried. It replaces the last one.
            var hash = Hash(row.Id, code);
            var expires = now + CodeLifetime;
            await db.ShareLinkCodes.Where(c => c.Id == row.Id)
                .ExecuteUpdateAsync(u => u.SetProperty(c => c.CodeHash, hash).SetProperty(c => c.SentAt, now).SetProperty(c => c.ExpiresAt, expires), CancellationToken.None);
            Pend(response, token, link, email);
            return (CodeSend.Sent, null);
        }
        log.LogWarning("A share link's code request gave up after its row changed {Rounds} times", 4 * MaxCodesPerHour);
        return (CodeSend.TooMany, now.AddHours(1));
    }

    public enum CodeCheck { Right, Wrong, Expired, LockedOut, NoCode }

    /// <summary>
    /// Checks a code typed by the reader; every code checked counts, and the last one allowed locks the reader out. Each
    /// check first claims its try in the database (an update that only succeeds on the count it read), so however many
    /// codes arrive at once, no more than <see cref="MaxAttempts"/> are ever compared with a code, and the right one
    /// arriving after the last try was taken is refused like any other.
    /// </summary>
    public async Task<(CodeCheck Result, int AttemptsLeft, DateTimeOffset? Until)> CheckCodeAsync(AppDbContext db, ContentLink link, string visitor,
        string email, string? typed, CancellationToken ct)
    {
        var now = clock.GetUtcNow();
        var code = new string((typed ?? "").Where(c => !char.IsWhiteSpace(c) && c != '-').ToArray());
        var mine = db.ShareLinkCodes.Where(c => c.ContentLinkId == link.Id && c.Visitor == visitor && c.Email == email);
        // Each round that loses its claim does so because the row changed since it was read (another try was claimed, a
        // new code was mailed, the right code removed it): the row is read again and judged as it is now.
        for (var round = 0; round < 4 * MaxAttempts; round++)
        {
            var row = await mine.AsNoTracking().Select(c => new { c.Id, c.CodeHash, c.ExpiresAt, c.FailedAttempts, c.LockedUntil }).FirstOrDefaultAsync(ct);
            // Locked out first: the lockout spends the code, and a reader locked out is told so, not asked for a new code.
            if (row?.LockedUntil is { } locked && locked > now) return (CodeCheck.LockedOut, 0, locked);
            if (row is null || row.CodeHash.Length == 0) return (CodeCheck.NoCode, 0, null);
            if (row.ExpiresAt <= now) return (CodeCheck.Expired, 0, null);
            // A code still waiting has had fewer tries than the limit (the last one spends it); this is only a guard.
            if (row.FailedAttempts >= MaxAttempts) return (CodeCheck.NoCode, 0, null);

            // Claim this try: the count goes up by one only from the value read, for the code read. The try that is the
            // last one allowed locks the reader out and spends the code in the same update, so that nothing arriving
            // after it can be checked; should it be the right code, removing the row below lifts the lockout again.
            var attempt = row.FailedAttempts + 1;
            var last = attempt >= MaxAttempts;
            var until = now + Lockout;
            var claim = db.ShareLinkCodes.Where(c => c.Id == row.Id && c.FailedAttempts == row.FailedAttempts && c.CodeHash == row.CodeHash);
            var claimed = last
                ? await claim.ExecuteUpdateAsync(u => u.SetProperty(c => c.FailedAttempts, attempt)
                    .SetProperty(c => c.LockedUntil, until).SetProperty(c => c.CodeHash, ""), ct)
                : await claim.ExecuteUpdateAsync(u => u.SetProperty(c => c.FailedAttempts, attempt), ct);
            if (claimed == 0) continue;

            if (code.Length == 6 && code.All(char.IsAsciiDigit) &&
                CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(Hash(row.Id, code)), Encoding.ASCII.GetBytes(row.CodeHash)))
            {
                // The code is spent, and the tries counted for it with it.
                await db.ShareLinkCodes.Where(c => c.Id == row.Id).ExecuteDeleteAsync(ct);
                return (CodeCheck.Right, 0, null);
            }
            return last ? (CodeCheck.LockedOut, 0, until) : (CodeCheck.Wrong, MaxAttempts - attempt, null);
        }
        // The row kept changing under this check (which never compared the code): as if no code were waiting.
        log.LogWarning("A share link's code check gave up after its row changed {Rounds} times", 4 * MaxAttempts);
        return (CodeCheck.NoCode, 0, null);
    }

    static string Hash(Guid id, string code) =>
        Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes($"{id:N}:{code}")));

    public static MimeMessage Compose(string email, string code, string document)
    {
        var message = new MimeMessage();
        message.To.Add(MailboxAddress.Parse(email));
        message.Subject = $"Your code to read {document}: {code}";
        var minutes = (int)CodeLifetime.TotalMinutes;
        var text = $"Your code to read {document} is {code}.\n\nType it on the page that asked for it. It works for {minutes} minutes.\n\n" +
                   "If you did not ask for it, someone typed your address; you can ignore this mail.\n";
        var html = $"<p>Your code to read {WebUtility.HtmlEncode(document)} is</p><p style=\"font-size:24px;letter-spacing:4px\"><strong>{code}</strong></p>" +
                   $"<p>Type it on the page that asked for it. It works for {minutes} minutes.</p>" +
                   "<p>If you did not ask for it, someone typed your address; you can ignore this mail.</p>";
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return message;
    }
}
