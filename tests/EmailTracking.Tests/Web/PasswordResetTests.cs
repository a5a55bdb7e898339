using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Api;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;
using MimeKit;

namespace EmailTracking.Tests.Web;

/// <summary>The server with its relay (a local fake) and the password reset's clock in the test's hand.</summary>
public abstract class PasswordResetApp(DatabaseProvider db, string? connectionString = null, FakeTimeProvider? clock = null)
    : MailRelayApp(db, connectionString)
{
    public FakeTimeProvider Clock { get; } = clock ?? new(DateTimeOffset.UtcNow);

    /// <summary>
    /// Whether the limits on sending an invitation again are the server's defaults (Team:InvitationResend*): true only for
    /// the tests of those limits. The other tests invite and resend one after another, faster and more often than an
    /// admin would, to check other things; they get limits that never stop them.
    /// </summary>
    protected virtual bool InvitationLimits => false;

    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.ConfigureServices(s => s.AddKeyedSingleton<TimeProvider>(PasswordResetOptions.ClockKey, Clock));
        if (!InvitationLimits)
        {
            builder.UseSetting("Team:InvitationResendAfter", "00:00:00");
            builder.UseSetting("Team:InvitationResendsPerDay", "1000000");
            builder.UseSetting("Team:InvitationResendsPerHour", "1000000");
        }
    }
}

public sealed class PasswordResetSqliteApp() : PasswordResetApp(DatabaseProvider.Sqlite);

public sealed class PasswordResetPostgresApp() : PasswordResetApp(DatabaseProvider.Postgres);

/// <summary>
/// "Forgot your password?": a mail to the sign-in email with a link that sets a new password once, within its lifetime,
/// and ends the account's other sessions; the page answers the same whatever the address, within limits.
/// </summary>
public abstract class PasswordResetTests(PasswordResetApp app)
{
    const string Old = "Forgotten-Password-1";
    const string New = "Remembered-Password-2";
    static readonly TimeSpan Patience = TimeSpan.FromSeconds(15);

    /// <summary>A browser from its own address (the limits count per client).</summary>
    HttpClient Browser(string? ip = null)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        client.DefaultRequestHeaders.Add("X-Test-Remote-Ip", ip ?? $"10.{Random.Shared.Next(256)}.{Random.Shared.Next(256)}.{Random.Shared.Next(1, 255)}");
        return client;
    }

    internal static string Antiforgery(string page)
    {
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "no antiforgery token on the page:\n" + page);
        return token;
    }

    internal static async Task<HttpResponseMessage> AskAsync(HttpClient browser, string email, string? host = null)
    {
        var form = await browser.GetStringAsync("/forgot-password");
        using var request = new HttpRequestMessage(HttpMethod.Post, "/forgot-password")
        {
            Content = new FormUrlEncodedContent(new Dictionary<string, string> { ["Email"] = email, ["__RequestVerificationToken"] = Antiforgery(form) }),
        };
        if (host is not null) request.Headers.Host = host;
        return await browser.SendAsync(request);
    }

    /// <summary>The page without what differs between any two answers (the antiforgery token) and the address it repeats.</summary>
    static string Comparable(string page, string email) =>
        Regex.Replace(page, "name=\"__RequestVerificationToken\"[^>]*value=\"[^\"]+\"", "").Replace(email, "ADDRESS", StringComparison.Ordinal);

    Task<MimeMessage> MailAsync(string address, int count = 1) => app.Relay.MailAsync(address, count);

    static async Task WaitForAsync(Func<bool> done, string what)
    {
        var until = DateTime.UtcNow + Patience;
        while (!done())
        {
            Assert.True(DateTime.UtcNow < until, what);
            await Task.Delay(20);
        }
    }

    /// <summary>The user's latest queued mail, once a try has named the user.</summary>
    ServerMail? Queued(Guid userId) => app.WithDb(db => db.ServerMails.AsNoTracking().Where(m => m.UserId == userId).OrderByDescending(m => m.Id).FirstOrDefault());

    ServerMailWorker Worker => app.Services.GetServices<IHostedService>().OfType<ServerMailWorker>().Single();

    /// <summary>Waits until the user's mail has had <paramref name="tries"/> tries and waits for another, with the worker set to wake by then.</summary>
    async Task WaitForRetryAsync(Guid userId, int tries, string what) =>
        await WaitForAsync(() => Queued(userId) is { State: ServerMailState.Pending } m && m.Attempts == tries && Worker.SleepingUntil is { } wake && wake <= m.NextAttemptAt, what);

    static string LinkIn(MimeMessage mail)
    {
        var path = Regex.Match(mail.TextBody ?? "", @"http://localhost(/reset-password\?u=[0-9a-f]{32}&t=\S+)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(path), "no reset link in the mail:\n" + mail.TextBody);
        return path;
    }

    static async Task<(HttpStatusCode Status, string Page)> OpenAsync(HttpClient browser, string path)
    {
        var res = await browser.GetAsync(path);
        return (res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    static async Task<(HttpStatusCode Status, string Page)> ResetAsync(HttpClient browser, string path, string password, string? confirm = null)
    {
        var page = await browser.GetStringAsync("/forgot-password");
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + path).Query);
        var res = await browser.PostAsync(path, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["u"] = query["u"] ?? "", ["t"] = query["t"] ?? "", ["New"] = password, ["Confirm"] = confirm ?? password,
            ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        return (res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    async Task<HttpStatusCode> SignInAsync(string email, string password)
    {
        var res = await SignInTests.PostLoginAsync(Browser(), new() { ["Email"] = email, ["Password"] = password });
        return res.StatusCode;
    }

    [Fact]
    public async Task The_mailed_link_sets_a_new_password_once_and_signs_out_the_other_sessions()
    {
        var user = await app.NewUserAsync(password: Old);
        using var elsewhere = await WebSession.SignInAsync(app, user.Email, Old);
        var browser = Browser();

        // Asked with a forged Host header: the link is built on the configured public URL, never on the request's.
        var asked = await AskAsync(browser, user.Email.ToUpperInvariant(), host: "evil.test");
        Assert.Equal(HttpStatusCode.OK, asked.StatusCode);
        Assert.Contains("data-state=\"Sent\"", await asked.Content.ReadAsStringAsync());
        var mail = await MailAsync(user.Email);
        var received = Assert.Single(app.Relay.Messages, m => m.RcptTo.Contains(user.Email));
        Assert.Equal("no-reply@et.test", received.MailFrom);
        Assert.Equal([user.Email], received.RcptTo);
        Assert.Equal("auto-generated", mail.Headers["Auto-Submitted"]);
        Assert.Contains("works once, for 1 hour", mail.TextBody);
        Assert.DoesNotContain("evil.test", mail.TextBody);
        Assert.DoesNotContain("evil.test", mail.HtmlBody);
        var path = LinkIn(mail);

        // Opening the link changes nothing (a mail scanner's GET does no harm).
        var (status, form) = await OpenAsync(browser, path);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("data-state=\"Ready\"", form);
        Assert.Contains(user.Email, form);
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/tokens")).StatusCode);
        // The page keeps no cache the way its form's antiforgery token wants it, so the token does not override the
        // page's headers with a warning in the log at every opening of a reset link.
        Assert.False(app.Log.Has(LogLevel.Warning, "headers have been overridden"), "the antiforgery token overrode the page's cache headers");

        // Identity's password rules, with their messages; a repetition that differs. The link still works after them.
        var (shortStatus, shortPage) = await ResetAsync(browser, path, "Short1a");
        Assert.Equal(HttpStatusCode.BadRequest, shortStatus);
        Assert.Contains("Passwords must be at least 10 characters.", shortPage);
        Assert.Contains("Passwords must have at least one uppercase", (await ResetAsync(browser, path, "all-lower-case-1")).Page);
        Assert.Contains("differ", (await ResetAsync(browser, path, New, New + "x")).Page);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, Old));

        var (doneStatus, done) = await ResetAsync(browser, path, New);
        Assert.Equal(HttpStatusCode.OK, doneStatus);
        Assert.Contains("data-state=\"Done\"", done);

        // The other session is sent to sign in at its next request; sign-in takes the new password only.
        var next = await elsewhere.GetAsync("/tokens");
        Assert.Equal(HttpStatusCode.Redirect, next.StatusCode);
        Assert.StartsWith("/login", next.Headers.Location!.PathAndQuery);
        Assert.Equal(HttpStatusCode.OK, await SignInAsync(user.Email, Old));
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, New));
        // API tokens are not web sessions: they go on.
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync("/api/messages")).StatusCode);

        // Once: the same link again is a clear page, not an exception, and changes nothing.
        var (usedStatus, used) = await OpenAsync(browser, path);
        Assert.Equal(HttpStatusCode.BadRequest, usedStatus);
        Assert.Contains("data-state=\"Invalid\"", used);
        Assert.Contains("it was used already", used);
        var (againStatus, again) = await ResetAsync(browser, path, "Third-Password-33");
        Assert.Equal(HttpStatusCode.BadRequest, againStatus);
        Assert.Contains("data-state=\"Invalid\"", again);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, New));
    }

    [Fact]
    public async Task The_answer_is_the_same_for_an_address_without_an_account_and_only_the_sign_in_email_gets_mail()
    {
        var user = await app.NewUserAsync(password: Old);
        var stranger = $"nobody-{Guid.NewGuid():N}"[..15] + "@sender.test";
        // A confirmed alias signs in to the add-ins, but is not where the account's password is reset.
        var alias = $"alias-{Guid.NewGuid():N}"[..14] + "@sender.test";
        using (var scope = app.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(user.Id, alias);
        }

        var unknown = await AskAsync(Browser(), stranger);
        var byAlias = await AskAsync(Browser(), alias);
        var known = await AskAsync(Browser(), user.Email);
        Assert.Equal(known.StatusCode, unknown.StatusCode);
        Assert.Equal(known.StatusCode, byAlias.StatusCode);
        var knownPage = Comparable(await known.Content.ReadAsStringAsync(), user.Email);
        Assert.Equal(knownPage, Comparable(await unknown.Content.ReadAsStringAsync(), stranger));
        Assert.Equal(knownPage, Comparable(await byAlias.Content.ReadAsStringAsync(), alias));
        Assert.Contains("If <b>ADDRESS</b> is the email of an EmailTracking account", knownPage);

        // The mails go out in the order asked: once a later request's has arrived, the three were looked at, and only
        // the one for the sign-in email sent a mail (the alias's sent none, to the alias or to the sign-in email).
        var marker = await app.NewUserAsync(password: Old);
        await AskAsync(Browser(), marker.Email);
        await MailAsync(marker.Email);
        Assert.Single(app.Relay.To(user.Email));
        Assert.Empty(app.Relay.To(stranger));
        Assert.Empty(app.Relay.To(alias));
    }

    [Fact]
    public async Task The_answer_does_not_wait_for_the_mail()
    {
        var user = await app.NewUserAsync(password: Old);
        app.Relay.Hold();
        try
        {
            // An answer that waited for the mail would wait for the relay's greeting, which does not come.
            var known = await AskAsync(Browser(), user.Email).WaitAsync(Patience);
            Assert.Equal(HttpStatusCode.OK, known.StatusCode);
            Assert.Contains("data-state=\"Sent\"", await known.Content.ReadAsStringAsync());
            // Answered while its mail is still waiting on the relay.
            var until = DateTime.UtcNow + Patience;
            while (app.Relay.Waiting == 0)
            {
                Assert.True(DateTime.UtcNow < until, "the reset mail never reached the relay");
                await Task.Delay(20);
            }
            Assert.Empty(app.Relay.To(user.Email));
        }
        finally
        {
            app.Relay.Release();
        }
        await MailAsync(user.Email);
    }

    [Fact]
    public async Task A_link_stops_working_when_its_hour_is_over()
    {
        var user = await app.NewUserAsync(password: Old);
        var browser = Browser();
        await AskAsync(browser, user.Email);
        var path = LinkIn(await MailAsync(user.Email));
        app.Clock.Advance(TimeSpan.FromMinutes(59));
        Assert.Contains("data-state=\"Ready\"", (await OpenAsync(browser, path)).Page);
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        var (status, page) = await OpenAsync(browser, path);
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Contains("data-state=\"Invalid\"", page);
        Assert.Contains("it has expired (links work for 1 hour)", page);
        var (postStatus, posted) = await ResetAsync(browser, path, New);
        Assert.Equal(HttpStatusCode.BadRequest, postStatus);
        Assert.Contains("data-state=\"Invalid\"", posted);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, Old));
    }

    [Fact]
    public async Task A_newer_link_or_a_password_change_makes_the_older_links_useless()
    {
        var user = await app.NewUserAsync(password: Old);
        var browser = Browser();
        await AskAsync(browser, user.Email);
        var first = LinkIn(await MailAsync(user.Email));
        await AskAsync(browser, user.Email);
        var second = LinkIn(await MailAsync(user.Email, 2));
        Assert.NotEqual(first, second);
        // Either works until one is used; using one ends the other.
        Assert.Contains("data-state=\"Ready\"", (await OpenAsync(browser, first)).Page);
        Assert.Contains("data-state=\"Done\"", (await ResetAsync(browser, second, New)).Page);
        Assert.Contains("data-state=\"Invalid\"", (await ResetAsync(browser, first, "Third-Password-33")).Page);

        await AskAsync(browser, user.Email);
        var third = LinkIn(await MailAsync(user.Email, 3));
        using (var session = await WebSession.SignInAsync(app, user.Email, New))
        {
            Assert.Equal(HttpStatusCode.Redirect, (await PasswordChangeAsync(session, New, "Changed-Password-44")).StatusCode);
        }
        Assert.Contains("data-state=\"Invalid\"", (await OpenAsync(browser, third)).Page);
    }

    static async Task<HttpResponseMessage> PasswordChangeAsync(HttpClient client, string current, string next)
    {
        var form = await client.GetStringAsync("/password");
        return await client.PostAsync("/password", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = Antiforgery(form), ["Current"] = current, ["New"] = next, ["Confirm"] = next,
        }));
    }

    [Fact]
    public async Task Altered_or_made_up_links_get_a_clear_page_and_change_nothing()
    {
        var user = await app.NewUserAsync(password: Old);
        var other = await app.NewUserAsync(password: Old);
        var browser = Browser();
        await AskAsync(browser, user.Email);
        var path = LinkIn(await MailAsync(user.Email));
        var query = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + path).Query);
        var token = query["t"]!;
        foreach (var bad in new[]
                 {
                     "/reset-password",
                     "/reset-password?u=" + query["u"],
                     $"/reset-password?u={query["u"]}&t=" + Uri.EscapeDataString(token[..^4] + (token[^4] == 'A' ? "B" : "A") + token[^3..]),
                     $"/reset-password?u={query["u"]}&t=" + new string('x', 5000),
                     $"/reset-password?u=not-a-guid&t=" + Uri.EscapeDataString(token),
                     // The right token with another account's id.
                     $"/reset-password?u={other.Id:N}&t=" + Uri.EscapeDataString(token),
                     $"/reset-password?u={Guid.NewGuid():N}&t=" + Uri.EscapeDataString(token),
                 })
        {
            var (status, page) = await OpenAsync(browser, bad);
            Assert.True(status == HttpStatusCode.BadRequest, $"{bad}: {(int)status}");
            Assert.Contains("data-state=\"Invalid\"", page);
            var (postStatus, posted) = await ResetAsync(browser, bad, New);
            Assert.True(postStatus == HttpStatusCode.BadRequest, $"POST {bad}: {(int)postStatus}");
            Assert.Contains("data-state=\"Invalid\"", posted);
        }
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, Old));
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(other.Email, Old));
        Assert.Contains("data-state=\"Ready\"", (await OpenAsync(browser, path)).Page);
    }

    [Fact]
    public async Task Requests_are_limited_per_address_and_per_client_alike_for_any_address()
    {
        var user = await app.NewUserAsync(password: Old);
        var stranger = $"nobody-{Guid.NewGuid():N}"[..15] + "@sender.test";
        foreach (var address in new[] { user.Email, stranger })
        {
            // Three an hour per address, from anywhere; the fourth is refused the same way with or without an account.
            for (var i = 0; i < PasswordResetLimits.PerAddressPerHour; i++) Assert.Equal(HttpStatusCode.OK, (await AskAsync(Browser(), address)).StatusCode);
            var refused = await AskAsync(Browser(), address);
            Assert.Equal((HttpStatusCode)429, refused.StatusCode);
            Assert.InRange(refused.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromMinutes(59), TimeSpan.FromMinutes(60));
            Assert.Contains("Too many reset mails were asked for this address or from your network. Try again in 60 minutes.", await refused.Content.ReadAsStringAsync());
        }
        await MailAsync(user.Email, PasswordResetLimits.PerAddressPerHour);

        // Ten an hour per client, whatever the addresses.
        var client = Browser();
        for (var i = 0; i < PasswordResetLimits.PerClientPerHour; i++)
            Assert.Equal(HttpStatusCode.OK, (await AskAsync(client, $"n{i}-{Guid.NewGuid():N}"[..12] + "@sender.test")).StatusCode);
        Assert.Equal((HttpStatusCode)429, (await AskAsync(client, $"n-{Guid.NewGuid():N}"[..12] + "@sender.test")).StatusCode);
        // An IPv6 client is counted by its /64: another address in it is the same client.
        var v6 = Browser("2001:db8:1234:5678::1");
        for (var i = 0; i < PasswordResetLimits.PerClientPerHour; i++) await AskAsync(v6, $"v{i}-{Guid.NewGuid():N}"[..12] + "@sender.test");
        Assert.Equal((HttpStatusCode)429, (await AskAsync(Browser("2001:db8:1234:5678:abcd::9"), $"v-{Guid.NewGuid():N}"[..12] + "@sender.test")).StatusCode);

        // An hour later the address may ask again; the day's limit still counts.
        app.Clock.Advance(TimeSpan.FromMinutes(61));
        Assert.Equal(HttpStatusCode.OK, (await AskAsync(Browser(), user.Email)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await AskAsync(client, user.Email)).StatusCode);
        await MailAsync(user.Email, PasswordResetLimits.PerAddressPerHour + 2);
        Assert.Equal(PasswordResetLimits.PerAddressPerHour + 2, app.Relay.To(user.Email).Count);
    }

    [Fact]
    public async Task A_relay_that_refuses_leaves_the_answer_as_it_is_and_sends_nothing()
    {
        var user = await app.NewUserAsync(password: Old);
        var later = await app.NewUserAsync(password: Old);
        var stranger = $"nobody-{Guid.NewGuid():N}"[..15] + "@sender.test";
        app.Relay.Refuse = true;
        try
        {
            // The page cannot say that the mail did not go: that would tell whoever asked that the address has an account.
            var known = await AskAsync(Browser(), user.Email);
            var unknown = await AskAsync(Browser(), stranger);
            Assert.Equal(HttpStatusCode.OK, known.StatusCode);
            Assert.Equal(Comparable(await known.Content.ReadAsStringAsync(), user.Email), Comparable(await unknown.Content.ReadAsStringAsync(), stranger));
            var until = DateTime.UtcNow + Patience;
            while (!app.Relay.RefusedTo.Any(r => r.Contains(user.Email)))
            {
                Assert.True(DateTime.UtcNow < until, "the reset mail never reached the relay");
                await Task.Delay(50);
            }
        }
        finally
        {
            app.Relay.Refuse = false;
        }
        // Once the next account's mail has arrived, the unknown address's request was looked at too (in order).
        await AskAsync(Browser(), later.Email);
        await MailAsync(later.Email);
        Assert.Empty(app.Relay.To(user.Email));
        Assert.Empty(app.Relay.To(stranger));
        // A refusal for good (554) is logged as such, and the mail is not tried again.
        Assert.True(app.Log.Has(LogLevel.Error, $"The relay refused the password reset mail for user {user.Id}, which is not tried again: The mail could not be sent: the relay answered 554"));
        var row = Queued(user.Id);
        Assert.Equal((ServerMailState.Failed, 1), (row?.State, row?.Attempts));
        Assert.Contains("the relay answered 554", row!.LastError);
        Assert.Single(app.Relay.RefusedTo, r => r.Contains(user.Email));
    }

    [Fact]
    public async Task A_mail_the_relay_refuses_for_now_is_tried_again_later_with_a_link_that_works()
    {
        var user = await app.NewUserAsync(password: Old);
        // The relay cannot be reached, then answers 451: the third try, after the first two waits, delivers.
        var dropped = app.Relay.Dropped;
        app.Relay.DropConnections(1);
        app.Relay.Defer(user.Email, 1);
        Assert.Equal(HttpStatusCode.OK, (await AskAsync(Browser(), user.Email)).StatusCode);
        await WaitForRetryAsync(user.Id, 1, "the unreached relay's mail is not waiting to be tried again");
        Assert.Equal(dropped + 1, app.Relay.Dropped);
        Assert.True(app.Log.Has(LogLevel.Warning, $"The password reset mail for user {user.Id} is tried again in 00:01:00: The mail could not be sent: the relay could not be reached"));
        // Not before its time.
        app.Clock.Advance(SystemMailOptions.DefaultRetryDelays[0] - TimeSpan.FromSeconds(1));
        await Task.Delay(200);
        Assert.DoesNotContain(app.Relay.DeferredTo, r => r.Contains(user.Email));
        await WaitForAsync(() => Worker.SleepingUntil is not null, "the worker is not waiting again");
        app.Clock.Advance(TimeSpan.FromSeconds(1));
        await WaitForRetryAsync(user.Id, 2, "the deferred mail is not waiting to be tried again");
        Assert.Contains(app.Relay.DeferredTo, r => r.Contains(user.Email));
        Assert.True(app.Log.Has(LogLevel.Warning, $"The password reset mail for user {user.Id} is tried again in 00:05:00: The mail could not be sent: the relay answered 451"));
        Assert.Empty(app.Relay.To(user.Email));
        app.Clock.Advance(SystemMailOptions.DefaultRetryDelays[1]);
        var mail = await MailAsync(user.Email);
        await WaitForAsync(() => Queued(user.Id) is { State: ServerMailState.Sent, Attempts: 3, SentAt: not null }, "the sent mail's row does not say so");
        Assert.Contains("data-state=\"Done\"", (await ResetAsync(Browser(), LinkIn(mail), New)).Page);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, New));
    }

    [Fact]
    public async Task A_mail_the_relay_keeps_refusing_for_now_is_given_up_after_the_last_try()
    {
        var user = await app.NewUserAsync(password: Old);
        var tries = SystemMailOptions.DefaultRetryDelays.Count + 1;
        app.Relay.Defer(user.Email, tries + 1);
        await AskAsync(Browser(), user.Email);
        for (var retry = 0; retry < SystemMailOptions.DefaultRetryDelays.Count; retry++)
        {
            await WaitForRetryAsync(user.Id, retry + 1, $"try {retry + 1} is not waiting to be tried again");
            app.Clock.Advance(SystemMailOptions.DefaultRetryDelays[retry]);
        }
        await WaitForAsync(() => app.Log.Has(LogLevel.Error, $"The password reset mail for user {user.Id} was not sent after {tries} tries: The mail could not be sent: the relay answered 451"),
            "the last try's failure was not logged");
        await WaitForAsync(() => Queued(user.Id) is { State: ServerMailState.Failed }, "the row does not say the mail failed");
        var row = Queued(user.Id)!;
        Assert.Equal(tries, row.Attempts);
        Assert.Contains("451", row.LastError);
        Assert.Null(row.SentAt);
        Assert.Equal(tries, app.Relay.DeferredTo.Count(r => r.Contains(user.Email)));
        Assert.Empty(app.Relay.To(user.Email));
    }

    [Fact]
    public async Task A_locked_account_answers_as_an_unknown_address_does_and_its_owner_is_told_by_mail()
    {
        var user = await app.NewUserAsync(password: Old);
        var stranger = $"nobody-{Guid.NewGuid():N}"[..15] + "@sender.test";
        async Task<string> Answer(string email, string password) =>
            Comparable(await (await SignInTests.PostLoginAsync(Browser(), new() { ["Email"] = email, ["Password"] = password })).Content.ReadAsStringAsync(), email);

        var unknown = await Answer(stranger, "Wrong-guess-0x");
        Assert.Contains("Wrong email or password. After 5 wrong passwords in a row, password sign-in is locked for 15 minutes", unknown);
        for (var i = 0; i < 5; i++) Assert.Equal(unknown, await Answer(user.Email, $"Wrong-guess-{i}x"));
        Assert.True(app.WithDb(db => db.Users.Where(u => u.Id == user.Id).Select(u => u.LockoutEnd).First()) > DateTimeOffset.UtcNow);
        // Locked: a stranger's next guess gets what an unknown address gets, again and again.
        Assert.Equal(unknown, await Answer(user.Email, "Wrong-guess-5x"));
        Assert.Equal(unknown, await Answer(stranger, "Wrong-guess-5x"));
        // Its owner, who knows the password, is told.
        Assert.Contains("Too many failed attempts: password sign-in to this account is locked for 15 minutes.", await Answer(user.Email, Old));

        // And mailed once, by the attempt that locked it, with a link that resets the password and lifts the lock.
        var notice = await MailAsync(user.Email);
        Assert.Contains("locked", notice.Subject);
        Assert.Contains("Wrong passwords were typed 5 times in a row", notice.TextBody);
        // The mails go out in order: once a later request's has arrived, no second notice is on its way.
        var marker = await app.NewUserAsync(password: Old);
        await AskAsync(Browser(), marker.Email);
        await MailAsync(marker.Email);
        Assert.Single(app.Relay.To(user.Email));
        Assert.Empty(app.Relay.To(stranger));
        Assert.Contains("data-state=\"Done\"", (await ResetAsync(Browser(), LinkIn(notice), New)).Page);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, New));
    }

    [Fact]
    public async Task A_reset_lifts_the_lock_of_wrong_passwords_but_not_an_administrators()
    {
        var user = await app.NewUserAsync(password: Old);
        for (var i = 0; i < 5; i++) await SignInTests.PostLoginAsync(Browser(), new() { ["Email"] = user.Email, ["Password"] = $"Wrong-guess-{i}x" });
        Assert.Contains("locked for 15 minutes", await (await SignInTests.PostLoginAsync(Browser(), new() { ["Email"] = user.Email, ["Password"] = Old })).Content.ReadAsStringAsync());
        var browser = Browser();
        await AskAsync(browser, user.Email);
        Assert.Contains("data-state=\"Done\"", (await ResetAsync(browser, LinkIn(await MailAsync(user.Email)), New)).Page);
        Assert.Equal(HttpStatusCode.Redirect, await SignInAsync(user.Email, New));
        Assert.Equal(0, app.WithDb(db => db.Users.Where(u => u.Id == user.Id).Select(u => u.AccessFailedCount).First()));

        // An account an administrator closed: no mail (the answer is the same), and a link made before cannot reopen it.
        var closed = await app.NewUserAsync(password: Old);
        await AskAsync(browser, closed.Email);
        var before = LinkIn(await MailAsync(closed.Email));
        await app.WithDbAsync(db => db.Users.Where(u => u.Id == closed.Id).ExecuteUpdateAsync(s => s.SetProperty(u => u.LockoutEnd, DateTimeOffset.MaxValue)));
        var asked = await AskAsync(Browser(), closed.Email);
        Assert.Contains("data-state=\"Sent\"", await asked.Content.ReadAsStringAsync());
        var (status, page) = await OpenAsync(browser, before);
        Assert.Equal(HttpStatusCode.Forbidden, status);
        Assert.Contains("closed by an administrator", page);
        Assert.Equal(HttpStatusCode.Forbidden, (await ResetAsync(browser, before, New)).Status);
        // The next account's mail arrives after the closed account's request was looked at: none went to it.
        await AskAsync(Browser(), user.Email);
        await MailAsync(user.Email, 2);
        Assert.Single(app.Relay.To(closed.Email));
        Assert.True(Auth.IsShut(app.WithDb(db => db.Users.Where(u => u.Id == closed.Id).Select(u => u.LockoutEnd).First()), DateTimeOffset.UtcNow));
        using var scope = app.Services.CreateScope();
        var users = scope.ServiceProvider.GetRequiredService<UserManager<User>>();
        Assert.True(await users.CheckPasswordAsync((await users.FindByIdAsync(closed.Id.ToString()))!, Old));
    }
}

public sealed class PasswordResetOnSqlite(PasswordResetSqliteApp app) : PasswordResetTests(app), IClassFixture<PasswordResetSqliteApp>;

public sealed class PasswordResetOnPostgres(PasswordResetPostgresApp app) : PasswordResetTests(app), IClassFixture<PasswordResetPostgresApp>;

/// <summary>Without a relay the sign-in page says to ask an administrator, and the reset page sends nothing.</summary>
public sealed class PasswordResetNotConfiguredTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Without_a_relay_sign_in_says_to_ask_an_administrator()
    {
        var user = await app.NewUserAsync(password: "No-Relay-Reset-42");
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var login = await browser.GetStringAsync("/login");
        Assert.Contains("Forgot your password? Ask whoever runs this EmailTracking server to set a new one.", login);
        Assert.DoesNotContain("href=\"/forgot-password\"", login);
        var page = await browser.GetStringAsync("/forgot-password");
        Assert.Contains("does not send password reset mail", page);
        Assert.DoesNotContain("<form", page);
        var form = await browser.GetStringAsync("/login");
        var token = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var res = await browser.PostAsync("/forgot-password", new FormUrlEncodedContent(new Dictionary<string, string> { ["Email"] = user.Email, ["__RequestVerificationToken"] = token }));
        Assert.Equal(HttpStatusCode.ServiceUnavailable, res.StatusCode);
        Assert.Contains("Ask your administrator", await res.Content.ReadAsStringAsync());
    }
}

/// <summary>`PasswordReset:LinkLifetime` set to half an hour.</summary>
public sealed class PasswordResetHalfHourApp() : PasswordResetApp(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder)
    {
        base.Configure(builder);
        builder.UseSetting("PasswordReset:LinkLifetime", "00:30:00");
    }
}

/// <summary>The link's lifetime is a setting: the pages and the mail say it, and the link keeps to it.</summary>
public sealed class PasswordResetLifetimeTests(PasswordResetHalfHourApp app) : IClassFixture<PasswordResetHalfHourApp>
{
    [Fact]
    public async Task A_configured_lifetime_is_the_one_said_and_kept()
    {
        var user = await app.NewUserAsync(password: "Half-An-Hour-Pass-1");
        var browser = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var form = await browser.GetStringAsync("/forgot-password");
        var token = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var sent = await browser.PostAsync("/forgot-password", new FormUrlEncodedContent(new Dictionary<string, string> { ["Email"] = user.Email, ["__RequestVerificationToken"] = token }));
        Assert.Contains("The link works once, for 30 minutes.", await sent.Content.ReadAsStringAsync());
        var mail = await app.Relay.MailAsync(user.Email, 1);
        Assert.Contains("The link works once, for 30 minutes.", mail.TextBody);
        var path = Regex.Match(mail.TextBody!, @"http://localhost(/reset-password\?\S+)").Groups[1].Value;
        app.Clock.Advance(TimeSpan.FromMinutes(29));
        Assert.Contains("data-state=\"Ready\"", await browser.GetStringAsync(path));
        app.Clock.Advance(TimeSpan.FromMinutes(2));
        var expired = await browser.GetAsync(path);
        Assert.Equal(HttpStatusCode.BadRequest, expired.StatusCode);
        Assert.Contains("links work for 30 minutes", await expired.Content.ReadAsStringAsync());
    }

    [Fact]
    public void A_lifetime_that_is_not_one_stops_the_start_saying_so()
    {
        foreach (var bad in new[] { "00:00:00", "-01:00:00", "8.00:00:00" })
        {
            using var broken = new BadLifetimeApp(bad);
            var error = Assert.ThrowsAny<Exception>(() => broken.Server);
            Assert.Contains("PasswordReset:LinkLifetime must be more than zero and at most 7 days", error.ToString());
        }
    }

    sealed class BadLifetimeApp(string lifetime) : AppFactory(DatabaseProvider.Sqlite)
    {
        protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("PasswordReset:LinkLifetime", lifetime);
    }
}
