using System.Net;
using System.Net.Http.Json;
using EmailTracking.Data;
using EmailTracking.Server.Accounts;
using EmailTracking.Tests.Graph;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Api;

/// <summary>Accounts beyond the ASCII addresses most tests use.</summary>
public sealed class AccountsTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    [Fact]
    public async Task A_user_with_an_internationalized_address_is_created_and_signs_in()
    {
        var email = $"zoë.{Guid.NewGuid():N}"[..12] + "@例え.jp";
        using (var scope = app.Services.CreateScope())
        {
            var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
            var created = await accounts.CreateUserAsync(new NewUser(email, "Unicode " + Guid.NewGuid().ToString("N")[..8], Plan.Team, TeamRole.Member, Password, "Zoë"));
            Assert.Equal(email, created.User.Email);
        }
        var browser = await WebSession.SignInAsync(app, email, Password);
        var me = await browser.GetStringAsync("/api/me");
        Assert.Contains("例え.jp", me);
    }

    [Fact]
    public async Task The_sign_in_page_takes_the_email_with_its_domain_written_either_way()
    {
        // A browser's email field may submit the domain in punycode (what the HTML standard makes its value), whichever
        // way the user was made: one mailbox, one account, as `et`, the reset page and the add-ins already take it.
        var local = $"sales.{Guid.NewGuid():N}"[..14];
        using (var scope = app.Services.CreateScope())
        {
            await scope.ServiceProvider.GetRequiredService<AccountService>().CreateUserAsync(
                new NewUser(local + "@例え.jp", "Idn " + Guid.NewGuid().ToString("N")[..8], Plan.Team, TeamRole.Member, Password, null));
        }
        using var punycode = await WebSession.SignInAsync(app, local + "@xn--r8jz45g.jp", Password);
        Assert.Contains("例え.jp", await punycode.GetStringAsync("/api/me"));
        using var unicode = await WebSession.SignInAsync(app, local.ToUpperInvariant() + "@例え.JP", Password);
        Assert.Contains("例え.jp", await unicode.GetStringAsync("/api/me"));
    }

    [Fact]
    public async Task A_team_or_display_name_longer_than_its_column_is_refused_with_the_reason()
    {
        // PostgreSQL refused the insert (a 500 on the first-run page); SQLite stored a megabyte of name.
        using var scope = app.Services.CreateScope();
        var accounts = scope.ServiceProvider.GetRequiredService<AccountService>();
        var team = await Assert.ThrowsAsync<AccountException>(() => accounts.CreateUserAsync(
            new NewUser($"long.{Guid.NewGuid():N}"[..13] + "@sender.test", new string('t', 201), Plan.Team, TeamRole.Member, Password, null)));
        Assert.Contains("200", team.Message);
        var name = await Assert.ThrowsAsync<AccountException>(() => accounts.CreateUserAsync(
            new NewUser($"long.{Guid.NewGuid():N}"[..13] + "@sender.test", "Long " + Guid.NewGuid().ToString("N")[..8], Plan.Team, TeamRole.Member, Password,
                new string('n', 201))));
        Assert.Contains("200", name.Message);
        Assert.False(app.WithDb(db => db.Teams.Any(t => t.Name.Length > 200)));
        // Exactly as long as the columns allow is taken.
        var fits = await accounts.CreateUserAsync(new NewUser($"long.{Guid.NewGuid():N}"[..13] + "@sender.test", Guid.NewGuid().ToString("N") + new string('t', 168),
            Plan.Team, TeamRole.Member, Password, new string('n', 200)));
        Assert.Equal(200, fits.Team.Name.Length);
        Assert.Equal(200, fits.User.DisplayName!.Length);
    }

    [Fact]
    public async Task A_sign_in_email_longer_than_identitys_column_is_refused_as_too_long_not_as_taken()
    {
        // Identity keeps the user name and email in 256 characters; an address may be read up to 320. PostgreSQL refused
        // the insert, which was then said as "already belongs to a user" (to an admin, of an address nobody has).
        var label = new string('d', 60);
        var email = $"{Guid.NewGuid():N}{new string('x', 32)}@{label}.{label}.{label}.{label[..10]}.test";
        Assert.InRange(email.Length, 257, 320);
        Assert.NotNull(AccountService.NormalizeAddress(email));
        using var scope = app.Services.CreateScope();
        var error = await Assert.ThrowsAsync<AccountException>(() => scope.ServiceProvider.GetRequiredService<AccountService>().CreateUserAsync(
            new NewUser(email, "Long " + Guid.NewGuid().ToString("N")[..8], Plan.Team, TeamRole.Member, Password, null)));
        Assert.Contains("256", error.Message);
        Assert.DoesNotContain("already belongs", error.Message);
        Assert.False(app.WithDb(db => db.Users.Any(u => u.Email == email)));
    }

    [Fact]
    public async Task The_same_alias_added_several_times_at_once_is_added_once_and_the_others_are_told_it_is_theirs_already()
    {
        var user = await app.NewUserAsync();
        var alias = $"sales.{Guid.NewGuid():N}"[..14] + "@sender.test";
        var answers = await Task.WhenAll(Enumerable.Range(0, 6).Select(_ => user.Client.PostAsJsonAsync("/api/me/addresses", new { address = alias })));
        var bodies = await Task.WhenAll(answers.Select(a => a.Content.ReadAsStringAsync()));
        Assert.All(answers.Zip(bodies), a => Assert.True(a.First.StatusCode is HttpStatusCode.NoContent or HttpStatusCode.BadRequest, $"{(int)a.First.StatusCode}: {a.Second}"));
        Assert.Single(answers, a => a.StatusCode == HttpStatusCode.NoContent);
        Assert.All(bodies.Where(b => b.Length > 0), b => Assert.Contains("is already one of your addresses", b));
        Assert.Equal(1, app.WithDb(db => db.UserAddresses.Count(a => a.UserId == user.Id && a.Address == alias)));
    }
}
