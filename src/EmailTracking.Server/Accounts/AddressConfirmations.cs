using System.Net;
using EmailTracking.Data;
using EmailTracking.Server.Data;
using EmailTracking.Server.Tracking;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Accounts;

/// <summary>
/// The link in a confirmation mail: it names the user who asked and the address, signed and encrypted by Data Protection,
/// and lasts <see cref="Lifetime"/> by our clock. Only the address's mailbox receives it; the page it opens confirms for
/// the signed-in user it names, and nobody else.
/// </summary>
public sealed class AddressConfirmationLinks(IDataProtectionProvider provider, TimeProvider clock)
{
    public const string PagePath = "/addresses/confirm";
    public static readonly TimeSpan Lifetime = TimeSpan.FromHours(24);

    readonly ExpiringTokens tokens = new(provider.CreateProtector("EmailTracking.Accounts.AddressConfirmation.v1"), clock);

    public string Token(Guid userId, string address) => tokens.Protect($"{userId:N}\n{address}", Lifetime);

    public string Url(string baseUrl, Guid userId, string address) =>
        $"{baseUrl.TrimEnd('/')}{PagePath}?t={Uri.EscapeDataString(Token(userId, address))}";

    /// <summary>The user and address in a token, or null when it is not ours, was altered or has expired.</summary>
    public (Guid UserId, string Address)? Read(string? token)
    {
        var parts = tokens.Unprotect(token)?.Split('\n', 2);
        return parts is { Length: 2 } && Guid.TryParseExact(parts[0], "N", out var userId) && AccountService.NormalizeAddress(parts[1]) is { } address
            ? (userId, address)
            : null;
    }
}

public enum ConfirmationRequestResult { Sent, Invalid, NotConfigured, NotYours, AlreadyConfirmed, TooSoon, TooMany, Failed }

/// <param name="RetryAfter">With TooSoon and TooMany: when another may go.</param>
public sealed record ConfirmationRequestOutcome(ConfirmationRequestResult Result, string? Address, DateTimeOffset? SentAt = null,
    TimeSpan? RetryAfter = null, string? Detail = null);

/// <summary>
/// Confirmation mails for a user's unconfirmed addresses, sent through the server's relay (<see cref="ISystemMail"/>),
/// never through the user's own mailbox (its Sent folder would hand them the link). Limited: one per address per
/// <see cref="ResendAfter"/>, <see cref="PerAddressPerDay"/> per address and <see cref="PerUserPerDay"/> per user in 24 hours.
/// A mail goes to any address the user added, another user's too, so that the answer does not tell whose it is; that
/// owner only reads that someone asked, and the link confirms nothing for an address someone signs in with.
/// </summary>
public sealed class AddressConfirmations(AppDbContext db, AccountService accounts, ISystemMail mail, ServerMailQueue queue,
    IOptions<TrackingOptions> tracking, TimeProvider clock, ILogger<AddressConfirmations> log)
{
    public static readonly TimeSpan ResendAfter = TimeSpan.FromMinutes(1);
    public const int PerAddressPerDay = 5;
    public const int PerUserPerDay = 20;
    static readonly TimeSpan Day = TimeSpan.FromDays(1);
    /// <summary>How long sends are kept (the page shows the last; the limits look back a day).</summary>
    static readonly TimeSpan Kept = TimeSpan.FromDays(7);
    /// <summary>The first key of the PostgreSQL advisory lock on a user's confirmation requests (the second is from the user's id).</summary>
    const int LockClass = 7_262_004;

    public bool Configured => mail.Configured;

    /// <param name="http">The request asking: the link is built on the configured public base URL as tracking links are
    /// (<see cref="TrackingUrls.For(HttpContext, TrackingOptions)"/>), so a request with a forged Host header cannot send
    /// the address's owner a link to another site that would hand its token to whoever made the request.</param>
    public async Task<ConfirmationRequestOutcome> RequestAsync(Guid userId, string? address, HttpContext http, CancellationToken ct)
    {
        if (AccountService.NormalizeAddress(address) is not { } a)
        {
            return new(ConfirmationRequestResult.Invalid, null, Detail: $"'{address}' is not an email address.");
        }
        // The address as the user has it, its domain written either way (punycode or Unicode: one mailbox); the rest goes
        // by that form, as the limits and the confirmation do.
        var forms = AccountService.StoredForms(a);
        if (await db.UserAddresses.Where(x => x.UserId == userId && forms.Contains(x.Address)).Select(x => x.Address).FirstOrDefaultAsync(ct) is not { } stored)
        {
            return new(ConfirmationRequestResult.NotYours, a, Detail: $"{a} is not one of your addresses: add it first.");
        }
        a = stored;
        if (await accounts.IsVerifiedAsync(userId, a, ct))
        {
            return new(ConfirmationRequestResult.AlreadyConfirmed, a, Detail: $"{a} is already confirmed as yours.");
        }
        if (!mail.Configured)
        {
            return new(ConfirmationRequestResult.NotConfigured, a,
                Detail: "Confirmation mail is not configured on this server (Mail:Smtp:Host and Mail:From): ask your administrator. " +
                        "The address stays yours to send from, unconfirmed.");
        }

        var now = clock.GetUtcNow();
        // Counted and recorded one request of the user's at a time (SQLite: the write transaction, BEGIN IMMEDIATE;
        // PostgreSQL: the user's advisory lock), committed before the mail goes: requests made at the same moment each
        // read the others' rows, where before every one of them counted none and a dozen mails went at once.
        await using var tx = await db.Database.BeginSerializedAsync(LockClass, userId, ct);
        await db.AddressConfirmations.Where(c => c.UserId == userId && c.SentAt < now - Kept).ExecuteDeleteAsync(ct);
        var recent = await db.AddressConfirmations.Where(c => c.UserId == userId && c.SentAt > now - Day)
            .Select(c => new { c.Address, c.SentAt }).ToListAsync(ct);
        var toThis = recent.Where(c => c.Address == a).Select(c => c.SentAt).Order().ToList();
        if (toThis.Count > 0 && toThis[^1] + ResendAfter > now)
        {
            return new(ConfirmationRequestResult.TooSoon, a, toThis[^1], toThis[^1] + ResendAfter - now,
                $"A confirmation mail went to {a} less than a minute ago. Wait for it (look in spam too), or ask again in a minute.");
        }
        if (toThis.Count >= PerAddressPerDay || recent.Count >= PerUserPerDay)
        {
            var oldest = toThis.Count >= PerAddressPerDay ? toThis[^PerAddressPerDay] : recent.Min(c => c.SentAt);
            return new(ConfirmationRequestResult.TooMany, a, toThis.Count > 0 ? toThis[^1] : null, oldest + Day - now,
                toThis.Count >= PerAddressPerDay
                    ? $"{PerAddressPerDay} confirmation mails went to {a} in the last 24 hours; ask again later."
                    : $"You asked for {PerUserPerDay} confirmation mails in the last 24 hours; ask again later.");
        }

        // Counted before it goes, so that two requests at once do not both pass the limits; taken back if it did not go.
        var row = new AddressConfirmation { UserId = userId, Address = a, SentAt = now };
        db.AddressConfirmations.Add(row);
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        // Queued and tried at once (the link is made as it goes): a relay that refuses for now, or cannot be reached, is
        // tried again later by the queue, and the mail counts as sent; one that refuses for good is said now.
        var sent = await queue.SendNowAsync(ServerMail.AddressConfirmation, a, userId, ServerMailQueue.Confirmation(TrackingUrls.For(http, tracking.Value).BaseUrl), ct);
        if (sent.State is ServerMailState.Failed or ServerMailState.Dropped)
        {
            db.AddressConfirmations.Remove(row);
            await db.SaveChangesAsync(CancellationToken.None);
            return new(ConfirmationRequestResult.Failed, a, Detail: sent.Error);
        }
        log.LogInformation("Confirmation mail for {Address} {State} for user {UserId}", a, sent.State == ServerMailState.Sent ? "sent" : "queued", userId);
        return new(ConfirmationRequestResult.Sent, a, now);
    }

    /// <summary>The confirmation mail: who asked, the link, how long it lasts, and that ignoring it changes nothing.</summary>
    public static MimeMessage Compose(string address, string requesterEmail, string? requesterName, string url)
    {
        var who = string.IsNullOrWhiteSpace(requesterName) ? requesterEmail : $"{requesterName} ({requesterEmail})";
        var hours = (int)AddressConfirmationLinks.Lifetime.TotalHours;
        var message = new MimeMessage();
        message.To.Add(MailboxAddress.Parse(address));
        message.Subject = $"Confirm {address} for EmailTracking";
        // An automatic mail: out-of-office robots do not answer it (RFC 3834).
        message.Headers.Add("Auto-Submitted", "auto-generated");
        var text = $"""
            {who} asked EmailTracking to confirm that {address} is theirs, as an address they send from.

            If that is you, open this link while signed in to EmailTracking as {requesterEmail}, and confirm:
            {url}

            The link lasts {hours} hours. If you did not ask for this, ignore this mail: nothing changes.
            """;
        var e = (string s) => WebUtility.HtmlEncode(s);
        var html = $"""
            <p>{e(who)} asked EmailTracking to confirm that <b>{e(address)}</b> is theirs, as an address they send from.</p>
            <p>If that is you, open this link while signed in to EmailTracking as {e(requesterEmail)}, and confirm:</p>
            <p><a href="{e(url)}">Confirm {e(address)}</a></p>
            <p>The link lasts {hours} hours. If you did not ask for this, ignore this mail: nothing changes.</p>
            """;
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return message;
    }
}
