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
}
