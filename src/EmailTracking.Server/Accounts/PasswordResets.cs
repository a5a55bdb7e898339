using System.Buffers.Binary;
using System.Net;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Threading.Channels;
using EmailTracking.Data;
using EmailTracking.Server.Tracking;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Accounts;

/// <summary>Self-service password reset by mail (`PasswordReset:*`).</summary>
public sealed class PasswordResetOptions
{
    public const string Section = "PasswordReset";

    /// <summary>The clock the links' lifetime (reset and invitation links) and the request limits are measured by (tests move it).</summary>
    public const string ClockKey = "password-reset";

    /// <summary>How long the link in a reset mail works (it works once in any case).</summary>
    public TimeSpan LinkLifetime { get; set; } = TimeSpan.FromHours(1);
}

/// <summary>
/// Identity's own reset token (<see cref="DataProtectorTokenProvider{TUser}"/>: the user, the purpose and the account's
/// security stamp, signed and encrypted by Data Protection), so that a reset, which gives the account a new stamp, makes
/// every link sent before it useless, and so does a password change. It lasts <see cref="PasswordResetOptions.LinkLifetime"/>
/// by our clock as well as by the machine's, which Identity reads and tests cannot move.
/// </summary>
public sealed class PasswordResetTokenProvider(IDataProtectionProvider provider, IOptions<PasswordResetOptions> options,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock, ILogger<DataProtectorTokenProvider<User>> log)
    : DataProtectorTokenProvider<User>(new OnClock(provider, clock, options.Value.LinkLifetime),
        Microsoft.Extensions.Options.Options.Create(new DataProtectionTokenProviderOptions { Name = ProviderName, TokenLifespan = options.Value.LinkLifetime }), log)
{
    public const string ProviderName = "EmailTracking.PasswordReset";

    /// <summary>Puts an expiry by <paramref name="clock"/> inside what it protects, and refuses it once passed (the invitation's token too).</summary>
    internal sealed class OnClock(IDataProtectionProvider inner, TimeProvider clock, TimeSpan lifetime) : IDataProtectionProvider
    {
        public IDataProtector CreateProtector(string purpose) => new ClockedProtector(inner.CreateProtector(purpose), clock, lifetime);
    }

    sealed class ClockedProtector(IDataProtector inner, TimeProvider clock, TimeSpan lifetime) : IDataProtector
    {
        public IDataProtector CreateProtector(string purpose) => new ClockedProtector(inner.CreateProtector(purpose), clock, lifetime);

        public byte[] Protect(byte[] plaintext)
        {
            var data = new byte[8 + plaintext.Length];
            BinaryPrimitives.WriteInt64BigEndian(data, (clock.GetUtcNow() + lifetime).UtcTicks);
            plaintext.CopyTo(data, 8);
            return inner.Protect(data);
        }

        public byte[] Unprotect(byte[] protectedData)
        {
            var data = inner.Unprotect(protectedData);
            if (data.Length < 8 || BinaryPrimitives.ReadInt64BigEndian(data) <= clock.GetUtcNow().UtcTicks)
            {
                throw new CryptographicException("The link has expired.");
            }
            return data[8..];
        }
    }
}

/// <summary>
/// How many reset mails may be asked for: per address <see cref="PerAddressPerHour"/> an hour and
/// <see cref="PerAddressPerDay"/> a day, per client (its IP address; an IPv6 client by its /64, which one machine usually
/// has whole) <see cref="PerClientPerHour"/> an hour. Requests are counted whether or not the address has an account,
/// so that being refused tells nothing either, and the work is the same for both.
/// <para>
/// Counted in the database (<see cref="PasswordResetRequest"/>: a row for the address and one for the client per
/// request taken), so that every instance shares the limits and a restart keeps them. A request reads and adds its two
/// keys' rows in one transaction, one request per key at a time: SQLite's write transaction admits one writer; on
/// PostgreSQL the two keys' advisory locks, taken in one order, hold back another instance's request for the same
/// address or client until this one commits, so two cannot both pass the last allowed request.
/// </para>
/// <para>
/// The table is bounded: about once a minute, or after <see cref="MaxRows"/>/100 requests taken by this instance, rows
/// older than a day are deleted and the rest counted. While <see cref="MaxRows"/> or more are left (a flood of
/// requests for new addresses from many clients, say a whole IPv6 /48), a request whose address or client has no row
/// yet is refused for <see cref="FloodWait"/>; addresses and clients already counted keep their own limits. So no
/// request pays for more than its own keys' rows, and the table outgrows the bound by at most what the instances take
/// between two counts.
/// </para>
/// </summary>
public sealed class PasswordResetLimits(IServiceScopeFactory scopes, [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock,
    ILogger<PasswordResetLimits> log)
{
    /// <summary>Rows counted at once before new addresses and clients wait (about 40 MB with the indexes); tests lower it.</summary>
    public int MaxRows { get; init; } = 200_000;

    /// <summary>How long a request for an address or client not yet counted waits while <see cref="MaxRows"/> are.</summary>
    public static readonly TimeSpan FloodWait = TimeSpan.FromMinutes(15);

    /// <summary>The first key of the PostgreSQL advisory locks on an address's or client's rows (the second is its hash).</summary>
    const int LockClass = 7_262_003;

    static readonly TimeSpan UpkeepEvery = TimeSpan.FromMinutes(1);
    readonly Lock gate = new();
    DateTimeOffset lastUpkeep = DateTimeOffset.MinValue;
    int takenSinceUpkeep;
    bool flooded;

    public const int PerAddressPerHour = 3;
    public const int PerAddressPerDay = 10;
    public const int PerClientPerHour = 10;
    static readonly TimeSpan Hour = TimeSpan.FromHours(1);
    static readonly TimeSpan Day = TimeSpan.FromDays(1);

    /// <summary>Counts the request and answers null, or answers how long until another may be made (and counts nothing).</summary>
    public async Task<TimeSpan?> TakeAsync(string address, IPAddress? client, CancellationToken ct = default)
    {
        var now = clock.GetUtcNow();
        var addressKey = Hash("a:" + AccountService.AddressKey(address));
        var clientKey = Hash("c:" + ClientKey(client));
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        if (UpkeepDue(now)) await UpkeepAsync(db, now, ct);

        await using var tx = await db.Database.BeginTransactionAsync(ct);
        if (db.Database.IsNpgsql())
        {
            var (first, second) = (LockId(addressKey), LockId(clientKey));
            if (first > second) (first, second) = (second, first);
            await db.Database.ExecuteSqlRawAsync("SELECT pg_advisory_xact_lock({0}, {1}), pg_advisory_xact_lock({0}, {2})", [LockClass, first, second], ct);
        }
        var dayAgo = now - Day;
        var rows = await db.PasswordResetRequests.Where(r => (r.Key == addressKey || r.Key == clientKey) && r.At > dayAgo)
            .Select(r => new { r.Key, r.At }).ToListAsync(ct);
        var byAddress = rows.Where(r => r.Key.AsSpan().SequenceEqual(addressKey)).Select(r => r.At).Order().ToList();
        var byClient = rows.Where(r => r.Key.AsSpan().SequenceEqual(clientKey)).Select(r => r.At).Order().ToList();
        if (Volatile.Read(ref flooded) && (byAddress.Count == 0 || byClient.Count == 0)) return FloodWait;

        var waits = new List<TimeSpan>();
        var addressInHour = byAddress.Where(t => t > now - Hour).ToList();
        if (addressInHour.Count >= PerAddressPerHour) waits.Add(addressInHour[^PerAddressPerHour] + Hour - now);
        if (byAddress.Count >= PerAddressPerDay) waits.Add(byAddress[^PerAddressPerDay] + Day - now);
        var clientInHour = byClient.Where(t => t > now - Hour).ToList();
        if (clientInHour.Count >= PerClientPerHour) waits.Add(clientInHour[^PerClientPerHour] + Hour - now);
        if (waits.Count > 0) return waits.Max();

        db.PasswordResetRequests.Add(new PasswordResetRequest { Key = addressKey, At = now });
        db.PasswordResetRequests.Add(new PasswordResetRequest { Key = clientKey, At = now });
        await db.SaveChangesAsync(ct);
        await tx.CommitAsync(ct);
        Interlocked.Increment(ref takenSinceUpkeep);
        return null;
    }

    /// <summary>Whether this request does the upkeep (one request at a time does it).</summary>
    bool UpkeepDue(DateTimeOffset now)
    {
        lock (gate)
        {
            if (now - lastUpkeep < UpkeepEvery && takenSinceUpkeep < Math.Max(1, MaxRows / 100)) return false;
            lastUpkeep = now;
            takenSinceUpkeep = 0;
            return true;
        }
    }

    /// <summary>Deletes the rows older than a day, and counts the rest to know whether new keys must wait.</summary>
    async Task UpkeepAsync(AppDbContext db, DateTimeOffset now, CancellationToken ct)
    {
        var dayAgo = now - Day;
        await db.PasswordResetRequests.Where(r => r.At <= dayAgo).ExecuteDeleteAsync(ct);
        var count = await db.PasswordResetRequests.CountAsync(ct);
        var wasFlooded = flooded;
        Volatile.Write(ref flooded, count >= MaxRows);
        if (count >= MaxRows && !wasFlooded)
        {
            log.LogWarning("Password reset requests counted in the last day: {Count}; requests for addresses and clients not yet counted are refused for now", count);
        }
    }

    static byte[] Hash(string key) => SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(key))[..16];

    static int LockId(byte[] key) => BinaryPrimitives.ReadInt32BigEndian(key);

    static string ClientKey(IPAddress? ip)
    {
        if (ip is null) return "unknown";
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (ip.AddressFamily != AddressFamily.InterNetworkV6) return ip.ToString();
        var bytes = ip.GetAddressBytes();
        Array.Clear(bytes, 8, 8);
        return new IPAddress(bytes) + "/64";
    }
}

public enum ResetRequestResult { Accepted, Invalid, NotOffered, TooMany }

public sealed record ResetRequestOutcome(ResetRequestResult Result, TimeSpan? RetryAfter = null);

/// <summary>
/// "Forgot your password?": a mail to the account's sign-in email (never an alias, confirmed or not) with a link to
/// <see cref="PagePath"/> holding Identity's reset token. The request is answered before anything is looked up: the
/// lookup and the mail happen in <see cref="PasswordResetMailer"/>, so the answer, its status and its time are the same
/// whether or not the address has an account. Offered only with the server's relay and a configured public base URL
/// (<c>Tracking:PublicBaseUrl</c>): the link is never built on the request's Host header, which whoever asks chooses, and
/// a forged one would send the account's owner a link that hands the token to another site.
/// </summary>
public sealed class PasswordResets(ISystemMail mail, IOptions<TrackingOptions> tracking, IOptions<PasswordResetOptions> options,
    PasswordResetLimits limits, PasswordResetMailer mailer)
{
    public const string PagePath = "/reset-password";

    /// <summary>The base URL links are built on, or null when none is configured.</summary>
    public string? BaseUrl => Uri.TryCreate(tracking.Value.PublicBaseUrl, UriKind.Absolute, out var u) && (u.Scheme == Uri.UriSchemeHttps || u.Scheme == Uri.UriSchemeHttp)
        ? tracking.Value.PublicBaseUrl!.TrimEnd('/') : null;

    /// <summary>Whether this server can mail reset links (a relay, and a public base URL to build them on).</summary>
    public bool Offered => mail.Configured && BaseUrl is not null;

    public TimeSpan LinkLifetime => options.Value.LinkLifetime;

    public async Task<ResetRequestOutcome> RequestAsync(string? email, IPAddress? client, CancellationToken ct = default)
    {
        if (!Offered) return new(ResetRequestResult.NotOffered);
        if (AccountService.NormalizeAddress(email) is not { } address) return new(ResetRequestResult.Invalid);
        if (await limits.TakeAsync(address, client, ct) is { } wait) return new(ResetRequestResult.TooMany, wait);
        await mailer.EnqueueAsync(address, ct);
        return new(ResetRequestResult.Accepted);
    }

    public static string Url(string baseUrl, Guid userId, string token) =>
        $"{baseUrl}{PagePath}?u={userId:N}&t={Uri.EscapeDataString(token)}";

    /// <summary>The reset mail: the link, how long it lasts, and that ignoring it changes nothing.</summary>
    public static MimeMessage Compose(string to, string url, TimeSpan lifetime)
    {
        var lasts = DescribeLifetime(lifetime);
        var message = new MimeMessage();
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "Reset your EmailTracking password";
        // An automatic mail: out-of-office robots do not answer it (RFC 3834).
        message.Headers.Add("Auto-Submitted", "auto-generated");
        var text = $"""
            Someone asked to reset the EmailTracking password of {to}.

            If that was you, choose a new password here:
            {url}

            The link works once, for {lasts}. Setting a new password signs you out of EmailTracking everywhere else.
            If you did not ask for this, ignore this mail: your password stays as it is.
            """;
        var e = (string s) => WebUtility.HtmlEncode(s);
        var html = $"""
            <p>Someone asked to reset the EmailTracking password of <b>{e(to)}</b>.</p>
            <p>If that was you, choose a new password here:</p>
            <p><a href="{e(url)}">Choose a new password</a></p>
            <p>The link works once, for {e(lasts)}. Setting a new password signs you out of EmailTracking everywhere else.
            If you did not ask for this, ignore this mail: your password stays as it is.</p>
            """;
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return message;
    }

    /// <summary>The mail saying wrong passwords locked the account's password sign-in for a while, with a reset link.</summary>
    public static MimeMessage ComposeLockNotice(string to, string url, TimeSpan lifetime)
    {
        var lasts = DescribeLifetime(lifetime);
        var lockedFor = DescribeLifetime(Auth.FailedSignInLockout);
        var message = new MimeMessage();
        message.To.Add(MailboxAddress.Parse(to));
        message.Subject = "Your EmailTracking sign-in is locked for a while";
        message.Headers.Add("Auto-Submitted", "auto-generated");
        var text = $"""
            Wrong passwords were typed 5 times in a row to sign in to EmailTracking as {to}: password sign-in is locked for {lockedFor}.
            The add-ins and API tokens work as before.

            If that was you and you forgot the password, choose a new one here (it also lifts the lock):
            {url}

            The link works once, for {lasts}. If it was not you, your password was not accepted: you can wait, or choose a new one all the same.
            """;
        var e = (string s) => WebUtility.HtmlEncode(s);
        var html = $"""
            <p>Wrong passwords were typed 5 times in a row to sign in to EmailTracking as <b>{e(to)}</b>: password sign-in is locked for {e(lockedFor)}.
            The add-ins and API tokens work as before.</p>
            <p>If that was you and you forgot the password, choose a new one here (it also lifts the lock):</p>
            <p><a href="{e(url)}">Choose a new password</a></p>
            <p>The link works once, for {e(lasts)}. If it was not you, your password was not accepted: you can wait, or choose a new one all the same.</p>
            """;
        message.Body = new BodyBuilder { TextBody = text, HtmlBody = html }.ToMessageBody();
        return message;
    }

    /// <summary>"1 hour", "2 hours", "30 minutes".</summary>
    public static string DescribeLifetime(TimeSpan t) =>
        t.TotalHours >= 1 && t.TotalHours == Math.Floor(t.TotalHours) ? (t.TotalHours == 1 ? "1 hour" : $"{t.TotalHours:0} hours")
        : t.TotalMinutes <= 1 ? "1 minute" : $"{Math.Ceiling(t.TotalMinutes):0} minutes";
}

/// <summary>
/// Queues the reset mails and lock notices (<see cref="ServerMailQueue"/>), which the queue's worker sends off the
/// request: it looks the address up as a sign-in email (either form of an internationalized domain), and mails a link
/// to an account that exists and that no administrator closed, made as the mail goes. A relay that refuses for now (a
/// 4xx answer) or cannot be reached is tried again after each of <see cref="SystemMailOptions.RetryDelays"/>, with a new
/// link each time, by whichever instance runs then; a refusal for good (5xx, a refused login), or the last try failing,
/// is logged as an error (with the reason and the user's id, not the address) and kept on the queue's row: the page
/// cannot say so without telling whoever asked that the address has an account.
/// </summary>
public sealed class PasswordResetMailer(ServerMailQueue queue, ILogger<PasswordResetMailer> log) : BackgroundService
{
    /// <summary>Bounded: past it a lock notice is dropped (and logged) rather than held in memory without end.</summary>
    readonly Channel<string> lockNotices = Channel.CreateBounded<string>(new BoundedChannelOptions(1000) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    /// <summary>Queues the reset mail for <paramref name="address"/>, whether or not it has an account (the worker looks).</summary>
    public Task EnqueueAsync(string address, CancellationToken ct) => queue.AddAsync(ServerMail.PasswordReset, address, ct: ct);

    /// <summary>
    /// Tells the account's owner that wrong passwords locked its password sign-in, with a reset link (the sign-in page
    /// says the same to everyone, so that it tells a stranger nothing). One a lock: sent by the attempt that locks it.
    /// Written to the queue just after the answer, so that the answer takes as long as any other refusal.
    /// </summary>
    public void EnqueueLockNotice(string address)
    {
        if (!lockNotices.Writer.TryWrite(address)) log.LogWarning("Lock notices are arriving faster than they can be queued; one was dropped");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var address in lockNotices.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                await queue.AddAsync(ServerMail.LockNotice, address, ct: stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "A lock notice could not be queued");
            }
        }
    }
}
