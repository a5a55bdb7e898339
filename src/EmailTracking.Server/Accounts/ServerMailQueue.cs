using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Server.Web;
using Microsoft.AspNetCore.Identity;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.Options;
using MimeKit;

namespace EmailTracking.Server.Accounts;

/// <summary>What one try at a queued mail came to: sent, waiting for another try (Temporary), failed for good, or dropped.</summary>
public sealed record ServerMailTry(ServerMailState State, string? Error = null)
{
    /// <summary>Another instance or try holds the mail: this one did nothing.</summary>
    public static readonly ServerMailTry NotMine = new(ServerMailState.Pending, "held by another try");
}

/// <summary>Wakes the server mail worker early (a mail was queued, or its next try moved).</summary>
public sealed class ServerMailSignal : WakeSignal;

/// <summary>
/// The server's own mail (<see cref="ServerMail"/>), in the database before it goes: each is written as it is asked for
/// and sent by <see cref="ServerMailWorker"/> (or, where the caller answers with the result, tried once at once by the
/// request, holding the row as the worker would). A relay that answers 4xx, cannot be reached or times out is tried
/// again after each of <see cref="RetryDelays"/>; a 5xx answer or a refused login ends it at once; either way the row
/// keeps when it was sent, the tries and the last error. Rows are leased as the outbox's deliveries are
/// (<see cref="Outbox.OutboxWorker"/>: PostgreSQL's FOR UPDATE SKIP LOCKED, SQLite's one writer), so that two instances
/// never send the same mail, and a crash mid-send leaves it to go again once its lease runs out.
/// <para>
/// Links are made when the mail goes, never stored: a reset or invitation link is Identity's token, which the server
/// otherwise keeps nowhere, and a table of links waiting for a relay would be a table of ways into accounts. Made at
/// each try, a link lasts its whole lifetime from when it is mailed (a reset link's hour does not run out while the
/// relay is down), and the account is looked at again: a mail for an account closed, or a member who chose a password,
/// since it was asked for does not go.
/// </para>
/// </summary>
public sealed class ServerMailQueue(IServiceScopeFactory scopes, ServerMailSignal signal, IOptions<SystemMailOptions> options,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock, [FromKeyedServices(ServerMailQueue.JitterKey)] Random random,
    ILogger<ServerMailQueue> log)
{
    /// <summary>The key of the <see cref="Random"/> that spreads the waits (<see cref="SystemMailOptions.RetryJitter"/>).</summary>
    public const string JitterKey = "server-mail-jitter";

    /// <summary>How long a mail the relay did not take for now waits before each new try (<c>Mail:RetryDelays</c>).</summary>
    public IReadOnlyList<TimeSpan> RetryDelays => options.Value.Delays;

    /// <summary>The wait before try <paramref name="retry"/> + 2: the configured one, lengthened by up to the jitter's fraction.</summary>
    public TimeSpan RetryDelay(int retry)
    {
        var delay = RetryDelays[retry];
        return delay + delay * (options.Value.RetryJitter * random.NextDouble());
    }

    /// <summary>How long one try holds its mail: well past the relay's timeout (<see cref="SmtpRelayOptions.Timeout"/>).</summary>
    public static readonly TimeSpan Lease = TimeSpan.FromMinutes(5);

    /// <summary>Mails claimed by one pass of the worker.</summary>
    const int Batch = 20;

    sealed record InvitationData(string Team, string? InvitedBy);

    sealed record ConfirmationData(string BaseUrl);

    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    public static string Invitation(string team, string? invitedBy) => JsonSerializer.Serialize(new InvitationData(team, invitedBy), Json);

    public static string Confirmation(string baseUrl) => JsonSerializer.Serialize(new ConfirmationData(baseUrl), Json);

    /// <summary>A lease owner of its own: each worker and each request's try (test servers share one process).</summary>
    public static string NewOwner() => $"{Data.ServerInstance.Name}:{Guid.NewGuid().ToString("N")[..8]}";

    /// <summary>Queues a mail for the worker, due now.</summary>
    public async Task AddAsync(string kind, string recipient, Guid? userId = null, string? data = null, CancellationToken ct = default)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.GetUtcNow();
        db.ServerMails.Add(new ServerMail { Kind = kind, Recipient = recipient, UserId = userId, Data = data, CreatedAt = now, NextAttemptAt = now });
        await db.SaveChangesAsync(ct);
        signal.Poke();
    }

    /// <summary>
    /// Queues a mail and tries it at once, for a caller that answers with the result (an admin's invitation, a user's
    /// confirmation mail): Sent, Failed or Dropped as the worker would leave it, or Pending when the relay did not take it
    /// for now and the worker tries again later.
    /// </summary>
    public async Task<ServerMailTry> SendNowAsync(string kind, string recipient, Guid? userId, string? data, CancellationToken ct)
    {
        var owner = NewOwner();
        long id;
        await using (var scope = scopes.CreateAsyncScope())
        {
            var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
            var now = clock.GetUtcNow();
            // Held by this request from the start: the worker leaves it alone unless this try dies with it.
            var row = new ServerMail
            {
                Kind = kind, Recipient = recipient, UserId = userId, Data = data, CreatedAt = now, NextAttemptAt = now,
                LeaseOwner = owner, LeaseUntil = now + Lease,
            };
            db.ServerMails.Add(row);
            await db.SaveChangesAsync(ct);
            id = row.Id;
        }
        var result = await TryAsync(id, owner, ct);
        if (result.State == ServerMailState.Pending) signal.Poke();
        return result;
    }

    /// <summary>Leases up to a batch of due mails to <paramref name="owner"/>, the longest waiting first.</summary>
    public async Task<List<long>> ClaimAsync(string owner, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.GetUtcNow();
        var until = now + Lease;
        if (db.Database.IsNpgsql())
        {
            var claimed = await db.Database.SqlQuery<long>($"""
                UPDATE "ServerMails" SET "LeaseOwner" = {owner}, "LeaseUntil" = {until}
                WHERE "Id" IN (
                    SELECT "Id" FROM "ServerMails"
                    WHERE "State" = 0 AND "NextAttemptAt" <= {now} AND ("LeaseUntil" IS NULL OR "LeaseUntil" < {now})
                    ORDER BY "NextAttemptAt", "Id" LIMIT {Batch}
                    FOR UPDATE SKIP LOCKED)
                RETURNING "Id" AS "Value"
                """).ToListAsync(ct);
            // RETURNING does not keep the inner query's order: mails go in the order they were asked for.
            claimed.Sort();
            return claimed;
        }
        var candidates = await db.ServerMails.Where(m => m.State == ServerMailState.Pending && m.NextAttemptAt <= now && (m.LeaseUntil == null || m.LeaseUntil < now))
            .OrderBy(m => m.NextAttemptAt).ThenBy(m => m.Id).Select(m => m.Id).Take(Batch).ToListAsync(ct);
        var ids = new List<long>();
        foreach (var id in candidates)
        {
            // One writer at a time on SQLite: of two instances, the second finds the lease taken and passes over it.
            if (await db.ServerMails.Where(m => m.Id == id && m.State == ServerMailState.Pending && (m.LeaseUntil == null || m.LeaseUntil < now))
                    .ExecuteUpdateAsync(u => u.SetProperty(m => m.LeaseOwner, owner).SetProperty(m => m.LeaseUntil, until), ct) == 1) ids.Add(id);
        }
        return ids;
    }

    /// <summary>When the next pending mail no try holds is due (by this server's clock), or null when none is.</summary>
    public async Task<DateTimeOffset?> NextDueAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var now = clock.GetUtcNow();
        // A mail another try holds is left to the poll: it is due again only if that try dies with its lease.
        var next = await db.ServerMails.Where(m => m.State == ServerMailState.Pending && (m.LeaseUntil == null || m.LeaseUntil < now)).OrderBy(m => m.NextAttemptAt)
            .Select(m => new { m.NextAttemptAt }).FirstOrDefaultAsync(ct);
        return next?.NextAttemptAt;
    }

    /// <summary>How many mails wait to go (pending), for the warning when no relay is configured.</summary>
    public async Task<int> CountWaitingAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        return await scope.ServiceProvider.GetRequiredService<AppDbContext>().ServerMails.CountAsync(m => m.State == ServerMailState.Pending, ct);
    }

    /// <summary>Deletes mails done with (sent, failed, dropped) for longer than <see cref="SystemMailOptions.KeepFor"/>.</summary>
    public async Task<int> PruneAsync(CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var db = scope.ServiceProvider.GetRequiredService<AppDbContext>();
        var before = clock.GetUtcNow() - options.Value.KeepFor;
        return await db.ServerMails.Where(m => m.State != ServerMailState.Pending && m.CreatedAt < before).ExecuteDeleteAsync(ct);
    }

    /// <summary>One try at a mail <paramref name="owner"/> holds: made, sent, and its row left as the try left it.</summary>
    public async Task<ServerMailTry> TryAsync(long id, string owner, CancellationToken ct)
    {
        await using var scope = scopes.CreateAsyncScope();
        var services = scope.ServiceProvider;
        var db = services.GetRequiredService<AppDbContext>();
        // The lease is renewed as the try starts (a batch behind slow relays can outlast the one taken for it): either
        // this comes first, and another instance finds it leased, or the other's claim does, and this one passes.
        var renewed = await db.ServerMails.Where(m => m.Id == id && m.LeaseOwner == owner && m.State == ServerMailState.Pending)
            .ExecuteUpdateAsync(u => u.SetProperty(m => m.LeaseUntil, clock.GetUtcNow() + Lease), ct);
        if (renewed == 0) return ServerMailTry.NotMine;
        var mail = await db.ServerMails.AsNoTracking().FirstAsync(m => m.Id == id, ct);

        Made made;
        try
        {
            made = await MakeAsync(services, mail, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            // The database or the account store failed: nothing the relay said, so tried again as a 4xx would be.
            log.LogError(ex, "Server mail {Mail} could not be made", mail.Id);
            made = new Made(null, mail.UserId, What(mail.Kind), Error: $"The mail could not be made: {ex.Message}");
        }
        if (made.Message is null && made.Error is null)
        {
            if (made.DropReason is null)
            {
                // Nothing to send, and nothing worth keeping: a reset asked for an address without an account.
                await db.ServerMails.Where(m => m.Id == id && m.LeaseOwner == owner).ExecuteDeleteAsync(CancellationToken.None);
            }
            else
            {
                await FinishAsync(db, id, owner, ServerMailState.Dropped, mail.Attempts, made.UserId, made.DropReason, sentAt: null, mail.NextAttemptAt);
            }
            return new ServerMailTry(ServerMailState.Dropped, made.DropReason);
        }

        var attempts = mail.Attempts + 1;
        string error;
        bool temporary;
        if (made.Message is { } message)
        {
            try
            {
                await services.GetRequiredService<ISystemMail>().SendAsync(message, ct);
                var now = clock.GetUtcNow();
                await FinishAsync(db, id, owner, ServerMailState.Sent, attempts, made.UserId, null, now, mail.NextAttemptAt);
                log.LogInformation("Server mail {Mail} ({What}) sent for user {UserId}", id, made.What, made.UserId);
                return new ServerMailTry(ServerMailState.Sent);
            }
            catch (SystemMailException ex)
            {
                (error, temporary) = (ex.Message, ex.Temporary);
            }
        }
        else
        {
            (error, temporary) = (made.Error!, true);
        }

        if (!temporary)
        {
            log.LogError("The relay refused the {What} for user {UserId}, which is not tried again: {Reason}", made.What, made.UserId, error);
            await FinishAsync(db, id, owner, ServerMailState.Failed, attempts, made.UserId, error, null, mail.NextAttemptAt);
            return new ServerMailTry(ServerMailState.Failed, error);
        }
        if (attempts > RetryDelays.Count)
        {
            log.LogError("The {What} for user {UserId} was not sent after {Tries} tries: {Reason}", made.What, made.UserId, attempts, error);
            await FinishAsync(db, id, owner, ServerMailState.Failed, attempts, made.UserId, error, null, mail.NextAttemptAt);
            return new ServerMailTry(ServerMailState.Failed, error);
        }
        var delay = RetryDelay(attempts - 1);
        log.LogWarning("The {What} for user {UserId} is tried again in {Delay}: {Reason}", made.What, made.UserId, delay, error);
        await FinishAsync(db, id, owner, ServerMailState.Pending, attempts, made.UserId, error, null, clock.GetUtcNow() + delay);
        return new ServerMailTry(ServerMailState.Pending, error);
    }

    /// <summary>Leaves the row as the try ended, and releases it; only while this try still holds it.</summary>
    static Task<int> FinishAsync(AppDbContext db, long id, string owner, ServerMailState state, int attempts, Guid? userId, string? error,
        DateTimeOffset? sentAt, DateTimeOffset next) =>
        db.ServerMails.Where(m => m.Id == id && m.LeaseOwner == owner).ExecuteUpdateAsync(u => u
            .SetProperty(m => m.State, state).SetProperty(m => m.Attempts, attempts).SetProperty(m => m.UserId, userId)
            .SetProperty(m => m.LastError, TextClip.PrefixOrNull(error, 2000)).SetProperty(m => m.SentAt, sentAt)
            .SetProperty(m => m.NextAttemptAt, next)
            .SetProperty(m => m.LeaseOwner, (string?)null).SetProperty(m => m.LeaseUntil, (DateTimeOffset?)null), CancellationToken.None);

    /// <summary>
    /// The mail ready to go (Message), or why not: nothing to send (neither set: the row goes; DropReason: kept as
    /// Dropped), or an Error that a later try may not meet.
    /// </summary>
    sealed record Made(MimeMessage? Message, Guid? UserId, string What, string? DropReason = null, string? Error = null);

    static string What(string kind) => kind switch
    {
        ServerMail.PasswordReset or ServerMail.LockNotice => "password reset mail",
        ServerMail.Invitation => "invitation mail",
        ServerMail.AddressConfirmation => "confirmation mail",
        _ => "server mail",
    };

    async Task<Made> MakeAsync(IServiceProvider services, ServerMail mail, CancellationToken ct)
    {
        var what = What(mail.Kind);
        var resets = services.GetRequiredService<PasswordResets>();
        switch (mail.Kind)
        {
            case ServerMail.PasswordReset or ServerMail.LockNotice:
            {
                var db = services.GetRequiredService<AppDbContext>();
                var forms = AccountService.StoredForms(mail.Recipient);
                // The sign-in email only: an alias, even a confirmed one, is not where the account's password is reset.
                var userId = await db.Users.Where(u => forms.Contains(u.Email!)).Select(u => (Guid?)u.Id).FirstOrDefaultAsync(ct);
                var users = services.GetRequiredService<UserManager<User>>();
                if (userId is null || await users.FindByIdAsync(userId.Value.ToString()) is not { Email: not null } user) return new(null, null, what);
                // A closed account is not reopened by mail: its owner asks the administrator who closed it.
                if (Auth.IsShut(user.LockoutEnd, clock.GetUtcNow()))
                {
                    log.LogInformation("No password reset mail for user {UserId}: an administrator closed the account", user.Id);
                    return new(null, user.Id, what, DropReason: "An administrator closed the account.");
                }
                if (resets.BaseUrl is not { } baseUrl) return new(null, user.Id, what, DropReason: "No public base URL (Tracking:PublicBaseUrl) to build the link on.");
                var url = PasswordResets.Url(baseUrl, user.Id, await users.GeneratePasswordResetTokenAsync(user));
                var message = mail.Kind == ServerMail.LockNotice
                    ? PasswordResets.ComposeLockNotice(user.Email, url, resets.LinkLifetime)
                    : PasswordResets.Compose(user.Email, url, resets.LinkLifetime);
                return new(message, user.Id, what);
            }
            case ServerMail.Invitation:
            {
                var users = services.GetRequiredService<UserManager<User>>();
                var data = mail.Data is null ? null : JsonSerializer.Deserialize<InvitationData>(mail.Data, Json);
                if (data is null || mail.UserId is not { } memberId) return new(null, mail.UserId, what, DropReason: "The stored mail cannot be read.");
                if (await users.FindByIdAsync(memberId.ToString()) is not { Email: not null } member) return new(null, memberId, what, DropReason: "The member is no longer on this server.");
                if (Auth.IsShut(member.LockoutEnd, clock.GetUtcNow())) return new(null, memberId, what, DropReason: "The member was deactivated.");
                if (member.PasswordHash is not null) return new(null, memberId, what, DropReason: "The member has chosen a password already.");
                if (resets.BaseUrl is not { } baseUrl) return new(null, memberId, what, DropReason: "No public base URL (Tracking:PublicBaseUrl) to build the link on.");
                var lifetime = services.GetRequiredService<IOptions<TeamOptions>>().Value.InvitationLifetime;
                var token = await users.GenerateUserTokenAsync(member, InvitationTokenProvider.ProviderName, InvitationTokenProvider.Purpose);
                var url = Invitations.Url(baseUrl, member.Id, token);
                return new(Invitations.Compose(member.Email, data.Team, data.InvitedBy, url, lifetime), memberId, what);
            }
            case ServerMail.AddressConfirmation:
            {
                var db = services.GetRequiredService<AppDbContext>();
                var data = mail.Data is null ? null : JsonSerializer.Deserialize<ConfirmationData>(mail.Data, Json);
                if (data is null || mail.UserId is not { } userId) return new(null, mail.UserId, what, DropReason: "The stored mail cannot be read.");
                var address = mail.Recipient;
                if (!await db.UserAddresses.AnyAsync(x => x.UserId == userId && x.Address == address, ct)) return new(null, userId, what, DropReason: "The address is no longer the user's.");
                if (await services.GetRequiredService<AccountService>().IsVerifiedAsync(userId, address, ct)) return new(null, userId, what, DropReason: "The address is confirmed already.");
                var requester = await db.Users.Where(u => u.Id == userId).Select(u => new { u.Email, u.DisplayName }).FirstOrDefaultAsync(ct);
                if (requester?.Email is null) return new(null, userId, what, DropReason: "The user is no longer on this server.");
                var url = services.GetRequiredService<AddressConfirmationLinks>().Url(data.BaseUrl, userId, address);
                return new(AddressConfirmations.Compose(address, requester.Email, requester.DisplayName, url), userId, what);
            }
            default:
                return new(null, mail.UserId, what, DropReason: $"No mail of the kind '{mail.Kind}' is made by this server.");
        }
    }
}

/// <summary>
/// Sends the queued server mail (<see cref="ServerMailQueue"/>): claims what is due, one mail after another in the order
/// asked, then waits until the next is due, until poked, or <see cref="SystemMailOptions.PollInterval"/> (for mail
/// another instance queued, or left behind). Deletes old rows about once an hour.
/// </summary>
public sealed class ServerMailWorker(ServerMailQueue queue, ServerMailSignal signal, IOptions<SystemMailOptions> options,
    [FromKeyedServices(PasswordResetOptions.ClockKey)] TimeProvider clock, ILogger<ServerMailWorker> log) : BackgroundService
{
    static readonly TimeSpan PruneEvery = TimeSpan.FromHours(1);

    /// <summary>Timers take at most about 49 days; a mail due later than this (a clock set back) is looked at again then.</summary>
    static readonly TimeSpan LongestWait = TimeSpan.FromDays(1);

    static TimeSpan Min(TimeSpan a, TimeSpan b) => a < b ? a : b;

    readonly string owner = ServerMailQueue.NewOwner();
    /// <summary>UTC ticks of <see cref="SleepingUntil"/>, 0 for none.</summary>
    long sleepingUntil;

    /// <summary>
    /// When the worker, idle, is to wake for the next mail due (by the server's clock), or null while it works or has
    /// nothing due: whoever moves the clock past it (the tests) knows the wait is set.
    /// </summary>
    public DateTimeOffset? SleepingUntil => Volatile.Read(ref sleepingUntil) is var ticks and not 0 ? new DateTimeOffset(ticks, TimeSpan.Zero) : null;

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        await Task.Yield();
        if (!options.Value.Configured)
        {
            try
            {
                // Silent waiting hides resets and invitations that never go: say so where the operator looks.
                if (await queue.CountWaitingAsync(stoppingToken) is var waiting and > 0)
                    log.LogWarning("{Count} server mails (password resets, invitations, confirmations) wait for a relay, and none is configured: set Mail:Smtp:Host and Mail:From (`et mail list` shows them)", waiting);
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "The server's mail queue could not be counted");
            }
        }
        var lastPrune = DateTimeOffset.MinValue;
        while (!stoppingToken.IsCancellationRequested)
        {
            using var done = CancellationTokenSource.CreateLinkedTokenSource(stoppingToken);
            // Listened for before the pass: a mail queued while it runs wakes the next one.
            var poked = signal.WaitAsync(Timeout.InfiniteTimeSpan, clock, done.Token);
            DateTimeOffset? next = null;
            try
            {
                // Without a relay the mails wait (the configuration may come back) rather than fail one after another.
                if (options.Value.Configured)
                {
                    List<long> claimed;
                    while ((claimed = await queue.ClaimAsync(owner, stoppingToken)).Count > 0)
                    {
                        foreach (var id in claimed) await TryAsync(id, stoppingToken);
                    }
                    next = await queue.NextDueAsync(stoppingToken);
                }
                if (clock.GetUtcNow() - lastPrune >= PruneEvery)
                {
                    lastPrune = clock.GetUtcNow();
                    var pruned = await queue.PruneAsync(stoppingToken);
                    if (pruned > 0) log.LogInformation("Deleted {Count} server mails done with for longer than {KeepFor}", pruned, options.Value.KeepFor);
                }
            }
            catch (Exception ex) when (!stoppingToken.IsCancellationRequested)
            {
                log.LogError(ex, "A pass over the server's mail queue failed; the next one runs as usual");
            }
            // The next due mail by the server's clock (tests move it), a poke, or the poll on the machine's clock.
            try
            {
                var now = clock.GetUtcNow();
                if (next is { } at && at <= now) continue;
                DateTimeOffset? wake = next is { } later ? now + Min(later - now, LongestWait) : null;
                var due = wake is { } w ? Task.Delay(w - now, clock, done.Token) : Task.Delay(Timeout.InfiniteTimeSpan, done.Token);
                // The wait is measured from when it was set: had the clock moved meanwhile, it would end late; set it again.
                if (next is not null && clock.GetUtcNow() != now) continue;
                var poll = Task.Delay(options.Value.PollInterval, TimeProvider.System, done.Token);
                Volatile.Write(ref sleepingUntil, wake?.UtcTicks ?? 0);
                await Task.WhenAny(poked, due, poll);
            }
            finally
            {
                Volatile.Write(ref sleepingUntil, 0);
                await done.CancelAsync();
            }
        }
    }

    async Task TryAsync(long id, CancellationToken ct)
    {
        try
        {
            await queue.TryAsync(id, owner, ct);
        }
        catch (Exception ex) when (ex is not OperationCanceledException || !ct.IsCancellationRequested)
        {
            log.LogError(ex, "Server mail {Mail} failed unexpectedly; its lease runs out and it goes again", id);
        }
    }
}
