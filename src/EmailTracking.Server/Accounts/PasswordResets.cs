using System.Buffers.Binary;
using System.Collections.Concurrent;
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
/// so that being refused tells nothing either. Kept in this server's memory: with several instances each counts its own.
/// The memory is bounded: at most <see cref="MaxTracked"/> addresses and clients are counted at once (a flood of requests
/// for new addresses from many clients, say a whole IPv6 /48, is refused for <see cref="FloodWait"/> rather than grow it
/// without end), and entries older than a day are dropped at most once a minute, so that no request pays for a scan of
/// them all.
/// </summary>
public sealed class PasswordResetLimits([FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock, ILogger<PasswordResetLimits> log)
{
    /// <summary>Addresses and clients counted at once, at most (about 30 MB); tests lower it.</summary>
    public int MaxTracked { get; init; } = 200_000;

    /// <summary>How long a request for an address or client not yet counted waits while <see cref="MaxTracked"/> are.</summary>
    public static readonly TimeSpan FloodWait = TimeSpan.FromMinutes(15);

    static readonly TimeSpan PruneEvery = TimeSpan.FromMinutes(1);
    DateTimeOffset lastPrune = DateTimeOffset.MinValue;

    public const int PerAddressPerHour = 3;
    public const int PerAddressPerDay = 10;
    public const int PerClientPerHour = 10;
    static readonly TimeSpan Hour = TimeSpan.FromHours(1);
    static readonly TimeSpan Day = TimeSpan.FromDays(1);

    readonly ConcurrentDictionary<string, Queue<DateTimeOffset>> seen = new(StringComparer.Ordinal);

    /// <summary>Counts the request and answers null, or answers how long until another may be made (and counts nothing).</summary>
    public TimeSpan? Take(string address, IPAddress? client)
    {
        var now = clock.GetUtcNow();
        var addressKey = "a:" + AccountService.AddressKey(address);
        var clientKey = "c:" + ClientKey(client);
        lock (seen)
        {
            if (seen.Count >= MaxTracked / 2 && now - lastPrune >= PruneEvery)
            {
                Prune(now);
                lastPrune = now;
            }
            if (seen.Count + (seen.ContainsKey(addressKey) ? 0 : 1) + (seen.ContainsKey(clientKey) ? 0 : 1) > MaxTracked)
            {
                log.LogWarning("Password reset requests for {Count} addresses and clients in a day: new ones are refused for now", seen.Count);
                return FloodWait;
            }
            var byAddress = Recent(addressKey, now);
            var byClient = Recent(clientKey, now);
            var waits = new List<TimeSpan>();
            var addressInHour = byAddress.Where(t => t > now - Hour).ToList();
            if (addressInHour.Count >= PerAddressPerHour) waits.Add(addressInHour[^PerAddressPerHour] + Hour - now);
            if (byAddress.Count >= PerAddressPerDay) waits.Add(byAddress.ElementAt(byAddress.Count - PerAddressPerDay) + Day - now);
            var clientInHour = byClient.Where(t => t > now - Hour).ToList();
            if (clientInHour.Count >= PerClientPerHour) waits.Add(clientInHour[^PerClientPerHour] + Hour - now);
            if (waits.Count > 0) return waits.Max();
            byAddress.Enqueue(now);
            byClient.Enqueue(now);
            return null;
        }
    }

    Queue<DateTimeOffset> Recent(string key, DateTimeOffset now)
    {
        var q = seen.GetOrAdd(key, _ => new Queue<DateTimeOffset>());
        while (q.Count > 0 && q.Peek() <= now - Day) q.Dequeue();
        return q;
    }

    void Prune(DateTimeOffset now)
    {
        foreach (var (key, q) in seen)
        {
            if (q.Count == 0 || q.Last() <= now - Day) seen.TryRemove(key, out _);
        }
    }

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

    public ResetRequestOutcome Request(string? email, IPAddress? client)
    {
        if (!Offered) return new(ResetRequestResult.NotOffered);
        if (AccountService.NormalizeAddress(email) is not { } address) return new(ResetRequestResult.Invalid);
        if (limits.Take(address, client) is { } wait) return new(ResetRequestResult.TooMany, wait);
        mailer.Enqueue(address);
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
/// Sends the reset mails one after another, off the request: looks the address up as a sign-in email (either form of an
/// internationalized domain), and mails a link to an account that exists and that no administrator closed. A relay that
/// fails is logged (with the reason, not the address's account) and the mail is not sent: the page cannot say so
/// without telling whoever asked that the address has an account.
/// </summary>
public sealed class PasswordResetMailer(IServiceScopeFactory scopes, ILogger<PasswordResetMailer> log,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock) : BackgroundService
{
    /// <summary>Bounded: past it a request is dropped (and logged) rather than held in memory without end.</summary>
    readonly Channel<(string Address, bool Locked)> queue = Channel.CreateBounded<(string, bool)>(new BoundedChannelOptions(1000) { SingleReader = true, FullMode = BoundedChannelFullMode.DropWrite });

    public void Enqueue(string address)
    {
        if (!queue.Writer.TryWrite((address, false))) log.LogWarning("Password reset requests are arriving faster than mail can be sent; one was dropped");
    }

    /// <summary>
    /// Tells the account's owner that wrong passwords locked its password sign-in, with a reset link (the sign-in page
    /// says the same to everyone, so that it tells a stranger nothing). One a lock: sent by the attempt that locks it.
    /// </summary>
    public void EnqueueLockNotice(string address)
    {
        if (!queue.Writer.TryWrite((address, true))) log.LogWarning("Lock notices are arriving faster than mail can be sent; one was dropped");
    }

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await foreach (var (address, locked) in queue.Reader.ReadAllAsync(stoppingToken))
        {
            try
            {
                using var scope = scopes.CreateScope();
                await SendAsync(scope.ServiceProvider, address, locked, stoppingToken);
            }
            catch (Exception ex) when (ex is not OperationCanceledException || !stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "A password reset mail could not be prepared");
            }
        }
    }

    async Task SendAsync(IServiceProvider services, string address, bool locked, CancellationToken ct)
    {
        var db = services.GetRequiredService<AppDbContext>();
        var forms = AccountService.StoredForms(address);
        // The sign-in email only: an alias, even a confirmed one, is not where the account's password is reset.
        var userId = await db.Users.Where(u => forms.Contains(u.Email!)).Select(u => (Guid?)u.Id).FirstOrDefaultAsync(ct);
        if (userId is null) return;
        var users = services.GetRequiredService<UserManager<User>>();
        var user = await users.FindByIdAsync(userId.Value.ToString());
        if (user?.Email is null) return;
        // A closed account is not reopened by mail: its owner asks the administrator who closed it.
        if (Auth.IsShut(user.LockoutEnd, clock.GetUtcNow()))
        {
            log.LogInformation("No password reset mail for user {UserId}: an administrator closed the account", user.Id);
            return;
        }
        var resets = services.GetRequiredService<PasswordResets>();
        if (resets.BaseUrl is not { } baseUrl) return;
        var token = await users.GeneratePasswordResetTokenAsync(user);
        var url = PasswordResets.Url(baseUrl, user.Id, token);
        var message = locked ? PasswordResets.ComposeLockNotice(user.Email, url, resets.LinkLifetime) : PasswordResets.Compose(user.Email, url, resets.LinkLifetime);
        try
        {
            await services.GetRequiredService<ISystemMail>().SendAsync(message, ct);
            log.LogInformation("Password reset mail sent for user {UserId}", user.Id);
        }
        catch (SystemMailException ex)
        {
            log.LogError("The password reset mail for user {UserId} was not sent: {Reason}", user.Id, ex.Message);
        }
    }
}
