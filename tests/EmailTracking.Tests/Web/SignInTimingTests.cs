using System.Net;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.AspNetCore.Identity;
using Microsoft.AspNetCore.Mvc.Testing;
using Microsoft.AspNetCore.TestHost;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Web;

/// <summary>Identity's own hasher, counting the password checks it makes.</summary>
public sealed class CountingPasswordHasher : IPasswordHasher<User>
{
    readonly PasswordHasher<User> inner = new();
    int verified;

    public int Verified => Volatile.Read(ref verified);

    public string HashPassword(User user, string password) => inner.HashPassword(user, password);

    public PasswordVerificationResult VerifyHashedPassword(User user, string hashedPassword, string providedPassword)
    {
        Interlocked.Increment(ref verified);
        return inner.VerifyHashedPassword(user, hashedPassword, providedPassword);
    }
}

public sealed class CountingHasherApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public CountingPasswordHasher Hasher { get; } = new();

    protected override void Configure(IWebHostBuilder builder) =>
        builder.ConfigureTestServices(s => s.AddSingleton<IPasswordHasher<User>>(Hasher));
}

/// <summary>
/// The sign-in form's answer must not tell, by how long it takes, which addresses have an account: a wrong password for
/// an account costs a password hash (tens of milliseconds), so an unknown address, or an account without a web
/// password, must cost one too. Counted, not timed: each answer checks exactly one password against a hash.
/// </summary>
public sealed class SignInTimingTests(CountingHasherApp app) : IClassFixture<CountingHasherApp>
{
    const string Password = "Correct-horse-battery-9";

    [Fact]
    public async Task Every_wrong_sign_in_checks_one_password_hash_whether_or_not_the_account_exists()
    {
        var user = await app.NewUserAsync(password: Password);
        var noPassword = await app.NewUserAsync();
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        foreach (var (what, email) in new[]
                 {
                     ("an account, wrong password", user.Email),
                     ("no such account", "nobody-" + Guid.NewGuid().ToString("N")[..8] + "@example.com"),
                     ("an account without a web password", noPassword.Email),
                 })
        {
            var before = app.Hasher.Verified;
            var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = email, ["Password"] = "Not-the-password-1" });
            Assert.Equal(HttpStatusCode.OK, res.StatusCode);
            Assert.Contains("Wrong email or password.", await res.Content.ReadAsStringAsync());
            Assert.True(app.Hasher.Verified - before == 1, $"{what}: {app.Hasher.Verified - before} password checks");
        }
        // The decoy is never a way in, even with an empty password.
        var empty = await SignInTests.PostLoginAsync(client, new() { ["Email"] = "nobody@example.com", ["Password"] = "" });
        Assert.Contains("Wrong email or password.", await empty.Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password })).StatusCode);
    }
}
