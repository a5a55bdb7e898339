using System.Net;
using System.Net.Http.Json;
using System.Text.Json;
using System.Text.RegularExpressions;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Fakes;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.Hosting;
using Microsoft.EntityFrameworkCore;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Api;

/// <summary>The server with its own mail relay (`Mail:Smtp`), a local fake that keeps what it is sent.</summary>
public abstract class MailRelayApp(DatabaseProvider db, string? connectionString = null) : AppFactory(db, connectionString)
{
    public FakeSmtpRelay Relay { get; } = new();

    /// <summary>What the server logs, warnings and up.</summary>
    public LogCollector Log { get; } = new();

    protected override void Configure(IWebHostBuilder builder)
    {
        builder.ConfigureLogging(l => l.AddProvider(Log));
        builder.UseSetting("Mail:From", "EmailTracking <no-reply@et.test>");
        builder.UseSetting("Mail:Smtp:Host", "127.0.0.1");
        builder.UseSetting("Mail:Smtp:Port", Relay.Port.ToString(System.Globalization.CultureInfo.InvariantCulture));
        builder.UseSetting("Mail:Smtp:Security", "None");
    }

    protected override void Dispose(bool disposing)
    {
        base.Dispose(disposing);
        if (disposing) Relay.Dispose();
    }
}

public sealed class MailRelaySqliteApp() : MailRelayApp(DatabaseProvider.Sqlite);

public sealed class MailRelayPostgresApp() : MailRelayApp(DatabaseProvider.Postgres);

/// <summary>
/// An alias starts unconfirmed; a mail to it, through the server's relay, holds a link that confirms it for the user who
/// asked. Unconfirmed claims give way to the address's proven owner, and adding an address tells nothing about others.
/// </summary>
public abstract class AddressConfirmationTests(MailRelayApp app)
{
    const string Password = "Confirm-Address-Test7";
    static readonly JsonSerializerOptions Json = new(JsonSerializerDefaults.Web);

    static string NewAddress(string prefix = "alias") => $"{prefix}-{Guid.NewGuid():N}"[..(prefix.Length + 11)] + "@claims.test";

    static async Task<HttpResponseMessage> AddAsync(TestUser user, string address) =>
        await user.Client.PostAsJsonAsync("/api/me/addresses", new { address });

    static async Task<HttpResponseMessage> RequestConfirmationAsync(TestUser user, string address) =>
        await user.Client.PostAsJsonAsync("/api/me/addresses/confirmation", new { address });

    static async Task<Dictionary<string, JsonElement>> AddressesAsync(TestUser user) =>
        (await user.Client.GetFromJsonAsync<List<JsonElement>>("/api/me/addresses", Json))!
        .ToDictionary(a => a.GetProperty("address").GetString()!);

    static string StateOf(Dictionary<string, JsonElement> addresses, string address) => addresses[address].GetProperty("state").GetString()!;

    /// <summary>The link in the newest confirmation mail to the address, as a path.</summary>
    string LinkIn(string address)
    {
        var mail = app.Relay.To(address).Last();
        var url = Regex.Match(mail.TextBody ?? "", @"http://localhost(/addresses/confirm\?t=\S+)").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(url), "no confirmation link in the mail:\n" + mail.TextBody);
        return url;
    }

    static string Antiforgery(string page)
    {
        var token = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        Assert.False(string.IsNullOrEmpty(token), "no antiforgery token on the page");
        return token;
    }

    static async Task<(HttpStatusCode Status, string Page)> ConfirmAsync(HttpClient browser, string path)
    {
        var page = await browser.GetStringAsync("/addresses");
        var res = await browser.PostAsync(path, new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["t"] = System.Web.HttpUtility.ParseQueryString(new Uri("http://localhost" + path).Query)["t"] ?? "",
            ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        return (res.StatusCode, await res.Content.ReadAsStringAsync());
    }

    Guid? SignsInAs(string address) => app.WithDb(db => AccountService.SignsInAs(db, address).Select(u => (Guid?)u.Id).FirstOrDefault());

    Guid[] Claimants(string address) => app.WithDb(db => db.UserAddresses.Where(a => a.Address == address).Select(a => a.UserId).ToArray());

    [Fact]
    public async Task A_forged_host_header_does_not_put_another_site_in_the_mail()
    {
        // The link would hand its token to that site, and whoever asked could then confirm the address with it.
        var user = await app.NewUserAsync(password: Password);
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        using var request = new HttpRequestMessage(HttpMethod.Post, "/api/me/addresses/confirmation") { Content = JsonContent.Create(new { address = alias }) };
        request.Headers.Host = "evil.test";
        Assert.Equal(HttpStatusCode.Accepted, (await user.Client.SendAsync(request)).StatusCode);
        var mail = app.Relay.To(alias).Last();
        Assert.DoesNotContain("evil.test", mail.TextBody);
        Assert.DoesNotContain("evil.test", mail.HtmlBody);
        Assert.StartsWith("/addresses/confirm?t=", LinkIn(alias));
    }

    [Fact]
    public async Task A_confirmation_mail_round_trip_confirms_the_alias_for_the_user_who_asked()
    {
        var user = await app.NewUserAsync(password: Password);
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        var listed = await AddressesAsync(user);
        Assert.Equal("sign-in", StateOf(listed, user.Email));
        Assert.Equal("unconfirmed", StateOf(listed, alias));
        Assert.Equal(JsonValueKind.Null, listed[alias].GetProperty("confirmationSentAt").ValueKind);
        Assert.Null(SignsInAs(alias));

        var sent = await RequestConfirmationAsync(user, alias);
        Assert.Equal(HttpStatusCode.Accepted, sent.StatusCode);
        var body = await sent.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Equal(alias, body.GetProperty("address").GetString());
        Assert.Equal(TimeSpan.FromHours(24), body.GetProperty("expiresAt").GetDateTimeOffset() - body.GetProperty("sentAt").GetDateTimeOffset());
        Assert.NotEqual(JsonValueKind.Null, (await AddressesAsync(user))[alias].GetProperty("confirmationSentAt").ValueKind);

        // The mail: from the server's own address (not the user's mailbox, whose Sent folder would hand them the link),
        // to the alias only, automatic, naming who asked; the token is opaque.
        var received = Assert.Single(app.Relay.Messages, m => m.RcptTo.Contains(alias));
        Assert.Equal("no-reply@et.test", received.MailFrom);
        Assert.Equal([alias], received.RcptTo);
        Assert.Equal("auto-generated", received.Message.Headers["Auto-Submitted"]);
        Assert.Contains(user.Email, received.Message.TextBody);
        Assert.Contains("/addresses/confirm?t=", received.Message.HtmlBody);
        var path = LinkIn(alias);
        Assert.DoesNotContain(alias, path);
        Assert.DoesNotContain(user.Id.ToString("N"), path);

        // Opening it shows what will happen and changes nothing (a mail scanner's GET does no harm)…
        using var browser = await WebSession.SignInAsync(app, user.Email, Password);
        var page = await browser.GetStringAsync(path);
        Assert.Contains("data-state=\"Ready\"", page);
        Assert.Contains(alias, page);
        Assert.Null(SignsInAs(alias));
        // …the button confirms it: the alias is now verified, signs the user in to the add-ins and is theirs alone.
        var (status, confirmed) = await ConfirmAsync(browser, path);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Contains("data-state=\"Confirmed\"", confirmed);
        Assert.Equal(user.Id, SignsInAs(alias));
        Assert.True(app.WithDb(db => db.UserLogins.Any(l => l.LoginProvider == AccountService.VerifiedAddressProvider && l.ProviderKey == alias && l.UserId == user.Id)));
        Assert.Equal("confirmed", StateOf(await AddressesAsync(user), alias));

        // Again: said so, nothing sent.
        Assert.Contains("data-state=\"AlreadyConfirmed\"", await browser.GetStringAsync(path));
        var again = await RequestConfirmationAsync(user, alias);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Single(app.Relay.To(alias));
        // Only the user's own addresses, and only addresses.
        Assert.Equal(HttpStatusCode.NotFound, (await RequestConfirmationAsync(user, NewAddress("notmine"))).StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await RequestConfirmationAsync(user, "not an address")).StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, (await RequestConfirmationAsync(user, user.Email)).StatusCode);
    }

    [Fact]
    public async Task An_altered_expired_or_another_accounts_link_confirms_nothing()
    {
        var user = await app.NewUserAsync(password: Password);
        var other = await app.NewUserAsync(password: Password);
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(user, alias)).StatusCode);
        var path = LinkIn(alias);
        var links = app.Services.GetRequiredService<AddressConfirmationLinks>();
        var expired = new AddressConfirmationLinks(app.Services.GetRequiredService<IDataProtectionProvider>(),
            new FakeTimeProvider(DateTimeOffset.UtcNow - AddressConfirmationLinks.Lifetime - TimeSpan.FromMinutes(1)));
        // A token Data Protection made for another purpose (the Gmail link's) is not ours either.
        var gmailLink = new Uri(app.Services.GetRequiredService<EmailTracking.Server.Gmail.GmailAccountLink>().Url("http://localhost", alias)).Query;

        using var browser = await WebSession.SignInAsync(app, user.Email, Password);
        foreach (var bad in new[]
                 {
                     path[..^3] + (path[^3] == 'A' ? "B" : "A") + path[^2..],
                     AddressConfirmationLinks.PagePath,
                     AddressConfirmationLinks.PagePath + "?t=" + new string('x', 5000),
                     new Uri(expired.Url("http://localhost", user.Id, alias)).PathAndQuery,
                     AddressConfirmationLinks.PagePath + gmailLink,
                 })
        {
            var res = await browser.GetAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, res.StatusCode);
            var page = await res.Content.ReadAsStringAsync();
            Assert.Contains("data-state=\"Invalid\"", page);
            Assert.Contains("not valid or has expired", page);
            var (status, posted) = await ConfirmAsync(browser, bad);
            Assert.Equal(HttpStatusCode.BadRequest, status);
            Assert.Contains("data-state=\"Invalid\"", posted);
        }
        Assert.Null(SignsInAs(alias));

        // The right link opened by another account: refused without naming the address or the account, nothing changes.
        using var stranger = await WebSession.SignInAsync(app, other.Email, Password);
        var foreign = await stranger.GetAsync(path);
        Assert.Equal(HttpStatusCode.Forbidden, foreign.StatusCode);
        var foreignPage = await foreign.Content.ReadAsStringAsync();
        Assert.Contains("data-state=\"OtherAccount\"", foreignPage);
        Assert.DoesNotContain(alias, foreignPage);
        Assert.DoesNotContain(user.Email, foreignPage);
        var (foreignStatus, _) = await ConfirmAsync(stranger, path);
        Assert.Equal(HttpStatusCode.Forbidden, foreignStatus);
        // A link made for the other account and this address (as if they had asked) does not confirm it for this user.
        var theirs = new Uri(links.Url("http://localhost", other.Id, alias)).PathAndQuery;
        Assert.Equal(HttpStatusCode.Forbidden, (await ConfirmAsync(browser, theirs)).Status);
        Assert.Null(SignsInAs(alias));
        Assert.Equal([user.Id], Claimants(alias));

        // Not signed in: sign in first, then back.
        using var anonymous = app.CreateClient(new Microsoft.AspNetCore.Mvc.Testing.WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var login = await anonymous.GetAsync(path);
        Assert.Equal(HttpStatusCode.Redirect, login.StatusCode);
        Assert.Contains("/login", login.Headers.Location!.OriginalString);

        // The genuine link still works for its user.
        Assert.Contains("data-state=\"Confirmed\"", (await ConfirmAsync(browser, path)).Page);
        Assert.Equal(user.Id, SignsInAs(alias));
    }

    [Fact]
    public async Task Resends_wait_a_minute_and_stop_at_the_daily_limits()
    {
        var user = await app.NewUserAsync();
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(user, alias)).StatusCode);
        var soon = await RequestConfirmationAsync(user, alias);
        Assert.Equal((HttpStatusCode)429, soon.StatusCode);
        Assert.InRange(soon.Headers.RetryAfter!.Delta!.Value.TotalSeconds, 1, 60);
        Assert.Contains("less than a minute ago", (await soon.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());
        Assert.Single(app.Relay.To(alias));

        // Five to one address in a day: the sixth waits until the oldest is a day old.
        var now = DateTimeOffset.UtcNow;
        await app.WithDbAsync(async db =>
        {
            await db.AddressConfirmations.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
            db.AddressConfirmations.AddRange(Enumerable.Range(1, AddressConfirmations.PerAddressPerDay)
                .Select(h => new AddressConfirmation { UserId = user.Id, Address = alias, SentAt = now - TimeSpan.FromHours(h) }));
            await db.SaveChangesAsync();
        });
        var many = await RequestConfirmationAsync(user, alias);
        Assert.Equal((HttpStatusCode)429, many.StatusCode);
        Assert.InRange(many.Headers.RetryAfter!.Delta!.Value, TimeSpan.FromHours(18.9), TimeSpan.FromHours(19.1));

        // Twenty for one user in a day, whatever the addresses.
        var another = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, another)).StatusCode);
        await app.WithDbAsync(async db =>
        {
            await db.AddressConfirmations.Where(c => c.UserId == user.Id).ExecuteDeleteAsync();
            db.AddressConfirmations.AddRange(Enumerable.Range(1, AddressConfirmations.PerUserPerDay)
                .Select(i => new AddressConfirmation { UserId = user.Id, Address = $"n{i}@claims.test", SentAt = now - TimeSpan.FromMinutes(10 * i) }));
            await db.SaveChangesAsync();
        });
        Assert.Equal((HttpStatusCode)429, (await RequestConfirmationAsync(user, another)).StatusCode);
        Assert.Empty(app.Relay.To(another));
        // A day later they may go again (older sends are kept a week for the page, then dropped).
        await app.WithDbAsync(db => db.AddressConfirmations.Where(c => c.UserId == user.Id)
            .ExecuteUpdateAsync(s => s.SetProperty(c => c.SentAt, now - TimeSpan.FromDays(2))));
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(user, another)).StatusCode);
    }

    [Fact]
    public async Task Requests_at_the_same_moment_send_one_mail_not_one_each()
    {
        // The limits are what keep a user from flooding an address that is not theirs (anyone's can be added): a script
        // asking many times at once must not get past them because each request counted before the others had written.
        var user = await app.NewUserAsync();
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        var answers = await Task.WhenAll(Enumerable.Range(0, 12).Select(_ => RequestConfirmationAsync(user, alias)));
        Assert.Equal(1, answers.Count(a => a.StatusCode == HttpStatusCode.Accepted));
        Assert.All(answers.Where(a => a.StatusCode != HttpStatusCode.Accepted), a => Assert.Equal((HttpStatusCode)429, a.StatusCode));
        Assert.Equal(1, app.WithDb(db => db.AddressConfirmations.Count(c => c.UserId == user.Id)));
        Assert.Single(app.Relay.To(alias));
    }

    [Fact]
    public async Task A_relay_that_refuses_is_a_502_and_does_not_count_against_the_limits()
    {
        var user = await app.NewUserAsync();
        var alias = NewAddress();
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, alias)).StatusCode);
        app.Relay.Refuse = true;
        HttpResponseMessage refused;
        try { refused = await RequestConfirmationAsync(user, alias); }
        finally { app.Relay.Refuse = false; }
        Assert.Equal(HttpStatusCode.BadGateway, refused.StatusCode);
        Assert.Contains("554", (await refused.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());
        Assert.Equal(0, app.WithDb(db => db.AddressConfirmations.Count(c => c.UserId == user.Id)));
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(user, alias)).StatusCode);
    }

    /// <summary>
    /// What adding an address answers, for each thing it could be to others: the same 204, and the address is then this
    /// user's unconfirmed claim; a confirmation mail can be asked for in every case (it goes to the address, whose owner
    /// reads only that someone asked). Only the user's own address is refused, as already theirs.
    /// </summary>
    [Fact]
    public async Task Adding_an_address_answers_the_same_whoever_else_has_it()
    {
        var adder = await app.NewUserAsync();
        var owner = await app.NewUserAsync(password: Password);
        var claimed = NewAddress("claimed");
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(owner, claimed)).StatusCode);
        var confirmed = NewAddress("confirmed");
        using (var scope = app.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(owner.Id, confirmed);
        }
        var cases = new Dictionary<string, string>
        {
            ["nobody's"] = NewAddress("free"),
            ["another user's unconfirmed alias"] = claimed,
            ["another user's confirmed alias"] = confirmed,
            ["another user's sign-in email"] = owner.Email,
        };
        var answers = new List<string>();
        foreach (var (what, address) in cases)
        {
            var res = await AddAsync(adder, address.ToUpperInvariant());
            answers.Add($"{(int)res.StatusCode} {res.Content.Headers.ContentType} [{await res.Content.ReadAsStringAsync()}]");
            Assert.True(res.StatusCode == HttpStatusCode.NoContent, $"{what}: {answers[^1]}");
            Assert.Equal("unconfirmed", StateOf(await AddressesAsync(adder), address));
            Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(adder, address)).StatusCode);
        }
        Assert.Single(answers.Distinct());

        // The owners keep what they had: the claims sign nobody in and change nothing of theirs.
        Assert.Equal(owner.Id, SignsInAs(confirmed));
        Assert.Equal(owner.Id, SignsInAs(owner.Email));
        Assert.Null(SignsInAs(claimed));
        // The owner of a confirmed address got the adder's confirmation mail; its link confirms nothing for the adder.
        var path = LinkIn(confirmed);
        using (var browser = await WebSession.SignInAsync(app, owner.Email, Password))
        {
            Assert.Contains("data-state=\"OtherAccount\"", await (await browser.GetAsync(path)).Content.ReadAsStringAsync());
        }

        // Twice by the same user: plainly refused, about their own account only.
        var twice = await AddAsync(adder, cases["nobody's"]);
        Assert.Equal(HttpStatusCode.BadRequest, twice.StatusCode);
        Assert.Contains("already one of your addresses", (await twice.Content.ReadFromJsonAsync<JsonElement>()).GetProperty("detail").GetString());
    }

    [Fact]
    public async Task An_unconfirmed_claim_gives_way_to_the_owner_who_confirms_it_and_a_confirmed_address_stays_theirs()
    {
        var squatter = await app.NewUserAsync(password: Password);
        var owner = await app.NewUserAsync(password: Password);
        var address = NewAddress("owner");
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(squatter, address)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(squatter, address)).StatusCode);
        var squattersLink = LinkIn(address);
        // The squatter may send "from" it while it is their claim.
        Assert.True((await squatter.Client.PostAsJsonAsync("/api/messages", Message(address))).IsSuccessStatusCode);

        // The real owner adds it too and confirms it from the mailbox.
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(owner, address)).StatusCode);
        Assert.Equal(2, Claimants(address).Length);
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(owner, address)).StatusCode);
        using (var browser = await WebSession.SignInAsync(app, owner.Email, Password))
        {
            Assert.Contains("data-state=\"Confirmed\"", (await ConfirmAsync(browser, LinkIn(address))).Page);
        }
        Assert.Equal([owner.Id], Claimants(address));
        Assert.Equal(owner.Id, SignsInAs(address));
        Assert.DoesNotContain(address, (await AddressesAsync(squatter)).Keys);

        // Own-mail rules follow: the owner sends from it, the squatter no longer can.
        Assert.True((await owner.Client.PostAsJsonAsync("/api/messages", Message(address))).IsSuccessStatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, (await squatter.Client.PostAsJsonAsync("/api/messages", Message(address))).StatusCode);

        // The squatter's own earlier link, even if they could read the mailbox, no longer takes it.
        using (var browser = await WebSession.SignInAsync(app, squatter.Email, Password))
        {
            var (status, page) = await ConfirmAsync(browser, squattersLink);
            Assert.Equal(HttpStatusCode.Conflict, status);
            Assert.Contains("data-state=\"SomeoneElses\"", page);
        }
        // Claiming it again is answered as always, and stays a claim that cannot be confirmed or verified by the Gmail link.
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(squatter, address)).StatusCode);
        using (var scope = app.Services.CreateScope())
        {
            await Assert.ThrowsAsync<AccountException>(() =>
                scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(squatter.Id, address));
        }
        Assert.Equal(owner.Id, SignsInAs(address));
        // Nor can it become another account.
        using (var scope = app.Services.CreateScope())
        {
            var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
            var refused = await Assert.ThrowsAsync<AccountException>(() =>
                accounts.CreateUserAsync(new NewUser(address, "team-" + Guid.NewGuid().ToString("N")[..8], null, TeamRole.Member, null, null)));
            Assert.Contains("already belongs to a user", refused.Message);
        }
    }

    [Fact]
    public async Task One_mailbox_with_its_domain_in_punycode_and_in_unicode_is_one_address_and_one_owner()
    {
        var user = await app.NewUserAsync();
        var name = $"sales-{Guid.NewGuid():N}"[..16];
        string Puny(string n) => n + "@xn--r8jz45g.jp";
        string Unicode(string n) => n + "@例え.jp";
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, Puny(name))).StatusCode);
        var again = await AddAsync(user, Unicode(name).ToUpperInvariant());
        Assert.Equal(HttpStatusCode.BadRequest, again.StatusCode);
        Assert.Contains($"is already one of your addresses (as {Puny(name)})", await again.Content.ReadAsStringAsync());

        // Google names it in Unicode: the address the user has is the one confirmed, and no second one appears.
        using var scope = app.Services.CreateScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        await accounts.LinkVerifiedAddressAsync(user.Id, Unicode(name));
        var addresses = await AddressesAsync(user);
        Assert.Equal("confirmed", StateOf(addresses, Puny(name)));
        Assert.DoesNotContain(Unicode(name), addresses.Keys);
        Assert.Equal(user.Id, SignsInAs(Puny(name)));
        Assert.Equal(user.Id, SignsInAs(Unicode(name)));

        // Nobody else verifies it, or is made with it, in either form.
        var other = await app.NewUserAsync();
        await Assert.ThrowsAsync<AccountException>(() => accounts.LinkVerifiedAddressAsync(other.Id, Puny(name)));
        var owner = Unicode("owner-" + name);
        var created = (await accounts.CreateUserAsync(new NewUser(owner, "team-" + Guid.NewGuid().ToString("N")[..8], null, TeamRole.Member, null, null))).User.Id;
        var refused = await Assert.ThrowsAsync<AccountException>(() =>
            accounts.CreateUserAsync(new NewUser(Puny("owner-" + name), "team-" + Guid.NewGuid().ToString("N")[..8], null, TeamRole.Member, null, null)));
        Assert.Contains("already belongs to a user", refused.Message);
        // A claim on it in the other form gives way to its owner, as a claim in the same form does.
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(other, Puny("claimed-" + name))).StatusCode);
        await accounts.LinkVerifiedAddressAsync(user.Id, Unicode("claimed-" + name));
        Assert.Empty(Claimants(Puny("claimed-" + name)));
        Assert.Equal(created, SignsInAs(Puny("owner-" + name)));
    }

    [Fact]
    public async Task A_confirmation_asked_for_with_the_domain_written_the_other_way_goes_to_the_address_the_user_has()
    {
        var user = await app.NewUserAsync();
        var name = $"zoe-{Guid.NewGuid():N}"[..14];
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, name + "@例え.jp")).StatusCode);
        var res = await RequestConfirmationAsync(user, name + "@xn--r8jz45g.jp");
        Assert.True(res.StatusCode == HttpStatusCode.Accepted, await res.Content.ReadAsStringAsync());
        Assert.Equal(name + "@例え.jp", app.WithDb(db => db.AddressConfirmations.Single(c => c.UserId == user.Id).Address));
    }

    [Fact]
    public async Task An_unconfirmed_claim_gives_way_to_a_gmail_link_and_to_a_new_user_with_the_address()
    {
        var squatter = await app.NewUserAsync();
        var gmailOwner = await app.NewUserAsync();
        var gmail = NewAddress("gmail");
        var newcomer = NewAddress("newcomer");
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(squatter, gmail)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(squatter, newcomer)).StatusCode);

        using (var scope = app.Services.CreateScope())
        {
            // The Gmail link page's path: an address Google verified, confirmed by the signed-in user.
            await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(gmailOwner.Id, gmail);
        }
        Assert.Equal([gmailOwner.Id], Claimants(gmail));
        Assert.Equal(gmailOwner.Id, SignsInAs(gmail));

        // An administrator makes a user with the claimed address as their email: the claim was no obstacle.
        Guid created;
        using (var scope = app.Services.CreateScope())
        {
            created = (await scope.ServiceProvider.GetRequiredService<AccountService>()
                .CreateUserAsync(new NewUser(newcomer, "team-" + Guid.NewGuid().ToString("N")[..8], null, TeamRole.Member, null, null))).User.Id;
        }
        Assert.Equal([created], Claimants(newcomer));
        Assert.Equal(created, SignsInAs(newcomer));
        var left = await AddressesAsync(squatter);
        Assert.DoesNotContain(gmail, left.Keys);
        Assert.DoesNotContain(newcomer, left.Keys);
        Assert.Contains(squatter.Email, left.Keys);
    }

    [Fact]
    public async Task The_addresses_page_shows_each_state_and_sends_a_confirmation_mail()
    {
        var user = await app.NewUserAsync(password: Password);
        var confirmed = NewAddress("confirmed");
        var waiting = NewAddress("waiting");
        var fresh = NewAddress("fresh");
        using (var scope = app.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(user.Id, confirmed);
        }
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, waiting)).StatusCode);
        Assert.Equal(HttpStatusCode.NoContent, (await AddAsync(user, fresh)).StatusCode);
        Assert.Equal(HttpStatusCode.Accepted, (await RequestConfirmationAsync(user, waiting)).StatusCode);

        using var browser = await WebSession.SignInAsync(app, user.Email, Password);
        var page = await browser.GetStringAsync("/addresses");
        string Row(string html, string address) => Regex.Match(html, $"<li data-address=\"{Regex.Escape(address)}\"[\\s\\S]*?</li>").Value;
        Assert.Contains("data-state=\"SignIn\"", Row(page, user.Email));
        Assert.Contains("you sign in with it", Row(page, user.Email));
        Assert.Contains("data-state=\"Confirmed\"", Row(page, confirmed));
        Assert.DoesNotContain("<form", Row(page, confirmed));
        Assert.Contains("data-state=\"Unconfirmed\"", Row(page, waiting));
        Assert.Matches(@"confirmation sent <time datetime=""[^""]+Z"">\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC</time>", Row(page, waiting));
        Assert.Contains("Send again", Row(page, waiting));
        Assert.Contains("data-state=\"Unconfirmed\"", Row(page, fresh));
        Assert.Contains("Send confirmation mail", Row(page, fresh));
        Assert.True(page.IndexOf(user.Email, StringComparison.Ordinal) < page.IndexOf(confirmed, StringComparison.Ordinal), "the sign-in address comes first");

        // The button: a mail goes, the page says so and shows when.
        var send = await browser.PostAsync("/addresses?handler=Confirm", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Address"] = fresh, ["__RequestVerificationToken"] = Antiforgery(page),
        }));
        Assert.Equal(HttpStatusCode.Redirect, send.StatusCode);
        var after = await browser.GetStringAsync("/addresses");
        Assert.Contains($"A confirmation mail went to {fresh}", after);
        Assert.Contains("confirmation sent", Row(after, fresh));
        Assert.Single(app.Relay.To(fresh));
        // Too soon: a 429 page saying why, nothing sent.
        var soon = await browser.PostAsync("/addresses?handler=Confirm", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["Address"] = fresh, ["__RequestVerificationToken"] = Antiforgery(after),
        }));
        Assert.Equal((HttpStatusCode)429, soon.StatusCode);
        Assert.Contains("less than a minute ago", await soon.Content.ReadAsStringAsync());
        Assert.Single(app.Relay.To(fresh));
    }

    static object Message(string from) => new { from, subject = "Proposal", to = new[] { "alan@encom.test" }, html = "<p>Hello</p>" };
}

public abstract class AddressConfirmationRaceTests(MailRelayApp app)
{
    /// <summary>
    /// A user made with an address while another user confirms that same address: whichever way the two interleave
    /// (they start a few milliseconds apart, either first), exactly one succeeds, and the one told it succeeded is the
    /// one the address signs in as. The database decides (one verified-address login per address), not the checks that
    /// run first: a check that passed before the other side committed used to let both succeed, and the user being made
    /// then removed the confirmed address of the other.
    /// </summary>
    [Fact]
    public async Task A_user_made_with_an_address_while_another_confirms_it_leaves_exactly_one_owner()
    {
        var claimant = await app.NewUserAsync();
        var team = "Race " + Guid.NewGuid().ToString("N")[..8];
        for (var round = 0; round < 24; round++)
        {
            var address = $"race-{round}-{Guid.NewGuid():N}"[..20] + "@claims.test";
            await app.WithDbAsync(async db =>
            {
                db.UserAddresses.Add(new UserAddress { UserId = claimant.Id, Address = address });
                await db.SaveChangesAsync();
            });
            var delay = TimeSpan.FromMilliseconds(round % 6);
            async Task<bool> Create()
            {
                if (round % 2 == 0) await Task.Delay(delay);
                using var scope = app.Services.CreateScope();
                try
                {
                    await scope.ServiceProvider.GetRequiredService<AccountService>().CreateUserAsync(new NewUser(address, team, Plan.Team, TeamRole.Member, null, null));
                    return true;
                }
                catch (AccountException)
                {
                    return false;
                }
            }
            async Task<bool> Confirm()
            {
                if (round % 2 == 1) await Task.Delay(delay);
                using var scope = app.Services.CreateScope();
                try
                {
                    await scope.ServiceProvider.GetRequiredService<AccountService>().LinkVerifiedAddressAsync(claimant.Id, address);
                    return true;
                }
                catch (Exception e) when (e is AccountException or DbUpdateException)
                {
                    return false;
                }
            }
            var created = Task.Run(Create);
            var confirmed = Task.Run(Confirm);
            var (made, linked) = (await created, await confirmed);
            var owners = app.WithDb(db => AccountService.SignsInAs(db, address).Select(u => u.Id).ToList());
            var madeId = app.WithDb(db => db.Users.Where(u => u.Email == address).Select(u => (Guid?)u.Id).FirstOrDefault());
            var where = $"round {round}: made {made}, confirmed {linked}, owners {owners.Count}";
            Assert.True(made != linked, where);
            Assert.Single(owners);
            Assert.Equal(made ? madeId : claimant.Id, owners[0]);
            Assert.Equal(made, madeId is not null);
        }
    }
}

public sealed class AddressConfirmationRaceOnSqlite(MailRelaySqliteApp app) : AddressConfirmationRaceTests(app), IClassFixture<MailRelaySqliteApp>;

public sealed class AddressConfirmationRaceOnPostgres(MailRelayPostgresApp app) : AddressConfirmationRaceTests(app), IClassFixture<MailRelayPostgresApp>;


public sealed class AddressConfirmationOnSqlite(MailRelaySqliteApp app) : AddressConfirmationTests(app), IClassFixture<MailRelaySqliteApp>;

public sealed class AddressConfirmationOnPostgres(MailRelayPostgresApp app) : AddressConfirmationTests(app), IClassFixture<MailRelayPostgresApp>;

/// <summary>A server without a relay says so: the API with a 503 problem, the page with a note and no button.</summary>
public sealed class AddressConfirmationNotConfiguredTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    [Fact]
    public async Task Without_a_relay_the_api_and_the_page_say_that_confirmation_mail_is_not_configured()
    {
        const string password = "No-Relay-Test-42";
        var user = await app.NewUserAsync(password: password);
        var alias = $"alias-{Guid.NewGuid():N}"[..14] + "@claims.test";
        Assert.Equal(HttpStatusCode.NoContent, (await user.Client.PostAsJsonAsync("/api/me/addresses", new { address = alias })).StatusCode);
        var res = await user.Client.PostAsJsonAsync("/api/me/addresses/confirmation", new { address = alias });
        Assert.Equal(HttpStatusCode.ServiceUnavailable, res.StatusCode);
        Assert.Equal("application/problem+json", res.Content.Headers.ContentType?.MediaType);
        var problem = await res.Content.ReadFromJsonAsync<JsonElement>();
        Assert.Contains("is not configured on this server", problem.GetProperty("detail").GetString());
        Assert.Contains("Mail:Smtp", problem.GetProperty("detail").GetString());
        Assert.Equal(0, app.WithDb(db => db.AddressConfirmations.Count(c => c.UserId == user.Id)));

        using var browser = await WebSession.SignInAsync(app, user.Email, password);
        var page = await browser.GetStringAsync("/addresses");
        Assert.Contains("Confirmation mail is not configured on this server", page);
        Assert.DoesNotContain("Send confirmation mail", page);
        Assert.Contains("data-state=\"Unconfirmed\"", page);
    }
}
