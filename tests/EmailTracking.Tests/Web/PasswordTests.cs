using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Tests.Feed;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>
/// A user changes their web sign-in password: the current one is checked as sign-in checks it, and the change ends the
/// account's other web sessions and the live feeds they hold, while the session that made it goes on.
/// </summary>
public sealed class PasswordTests(FeedRecheckApp app) : IClassFixture<FeedRecheckApp>
{
    const string Old = "Correct-horse-battery-9";
    const string New = "Staple-battery-horse-42";

    async Task<HttpClient> SignedInAsync(string email, string password)
    {
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        var res = await SignInTests.PostLoginAsync(client, new() { ["Email"] = email, ["Password"] = password });
        Assert.Equal(HttpStatusCode.Redirect, res.StatusCode);
        return client;
    }

    static async Task<HttpResponseMessage> ChangeAsync(HttpClient client, string current, string next, string? confirm = null)
    {
        var form = await client.GetStringAsync("/password");
        var token = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        return await client.PostAsync("/password", new FormUrlEncodedContent(new Dictionary<string, string>
        {
            ["__RequestVerificationToken"] = token, ["Current"] = current, ["New"] = next, ["Confirm"] = confirm ?? next,
        }));
    }

    [Fact]
    public async Task A_changed_password_signs_out_the_other_sessions_and_ends_their_streams_while_this_one_goes_on()
    {
        var user = await app.NewUserAsync(password: Old);
        var here = await SignedInAsync(user.Email, Old);
        var elsewhere = await SignedInAsync(user.Email, Old);
        using var stream = await Sse.OpenAsync(elsewhere, "/api/feed");
        // The user's API token is not a web session: it goes on.
        using var byToken = await Sse.OpenAsync(user.Client, "/api/feed");

        Assert.Contains("The current password is wrong.", await (await ChangeAsync(here, "Not-the-password-1", New)).Content.ReadAsStringAsync());
        Assert.Contains("differ", await (await ChangeAsync(here, Old, New, confirm: New + "x")).Content.ReadAsStringAsync());
        Assert.Contains("at least 10 characters", await (await ChangeAsync(here, Old, "Short1a")).Content.ReadAsStringAsync());
        // Nothing changed so far: the other session still reads pages.
        Assert.Equal(HttpStatusCode.OK, (await elsewhere.GetAsync("/tokens")).StatusCode);

        var changed = await ChangeAsync(here, Old, New);
        Assert.Equal(HttpStatusCode.Redirect, changed.StatusCode);
        Assert.Contains("Password changed", await here.GetStringAsync(changed.Headers.Location!.OriginalString));
        Assert.Equal(HttpStatusCode.OK, (await here.GetAsync("/tokens")).StatusCode);

        // The other session is sent to sign in at its next request, and its open stream ends, saying why.
        var next = await elsewhere.GetAsync("/tokens");
        Assert.Equal(HttpStatusCode.Redirect, next.StatusCode);
        Assert.StartsWith("/login", next.Headers.Location!.PathAndQuery);
        var end = await stream.NextAsync(TimeSpan.FromSeconds(10));
        Assert.Contains("password was changed", end.Data.GetProperty("reason").GetString());
        Assert.Equal(HttpStatusCode.OK, (await user.Client.GetAsync("/api/messages")).StatusCode);

        // Sign-in takes the new password only.
        var anew = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Contains("Wrong email or password.", await (await SignInTests.PostLoginAsync(anew, new() { ["Email"] = user.Email, ["Password"] = Old })).Content.ReadAsStringAsync());
        Assert.Equal(HttpStatusCode.Redirect, (await SignInTests.PostLoginAsync(anew, new() { ["Email"] = user.Email, ["Password"] = New })).StatusCode);
    }

    [Fact]
    public async Task Guessing_the_current_password_in_a_session_left_open_locks_like_sign_in_does()
    {
        var user = await app.NewUserAsync(password: Old);
        var session = await SignedInAsync(user.Email, Old);
        for (var i = 0; i < 4; i++)
            Assert.Contains("The current password is wrong.", await (await ChangeAsync(session, $"Guess-number-{i}", New)).Content.ReadAsStringAsync());
        Assert.Contains("locked for 15 minutes", await (await ChangeAsync(session, "Guess-number-5", New)).Content.ReadAsStringAsync());
        // Even the right one now: the password is not changed while the lock lasts.
        Assert.Contains("locked for 15 minutes", await (await ChangeAsync(session, Old, New)).Content.ReadAsStringAsync());
        var other = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        Assert.Contains("locked for 15 minutes", await (await SignInTests.PostLoginAsync(other, new() { ["Email"] = user.Email, ["Password"] = Old })).Content.ReadAsStringAsync());
    }
}
