using System.Net;
using System.Text.RegularExpressions;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Mvc.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>The sign-in form against what a browser's own checks would have stopped, and a signed-in session afterwards.</summary>
public sealed class SignInTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";

    static async Task<HttpResponseMessage> PostLoginAsync(HttpClient client, Dictionary<string, string> fields)
    {
        var form = await client.GetStringAsync("/login");
        fields["__RequestVerificationToken"] = Regex.Match(form, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        return await client.PostAsync("/login", new FormUrlEncodedContent(fields));
    }

    [Fact]
    public async Task An_empty_email_or_password_is_the_wrong_email_or_password_answer_not_a_500()
    {
        var user = await app.NewUserAsync(password: Password);
        var client = app.CreateClient(new WebApplicationFactoryClientOptions { AllowAutoRedirect = false });
        foreach (var fields in new Dictionary<string, string>[]
                 {
                     new() { ["Email"] = "", ["Password"] = Password },
                     new() { ["Email"] = user.Email, ["Password"] = "" },
                     new() { ["Email"] = "", ["Password"] = "" },
                     new() { ["Password"] = Password },
                     new() { ["Email"] = user.Email },
                 })
        {
            var res = await PostLoginAsync(client, fields);
            var html = await res.Content.ReadAsStringAsync();
            Assert.True(res.StatusCode == HttpStatusCode.OK, $"{string.Join(", ", fields.Keys)}: {(int)res.StatusCode}");
            Assert.Contains("Wrong email or password.", html);
        }
        // Still signs in with the right ones.
        var ok = await PostLoginAsync(client, new() { ["Email"] = user.Email, ["Password"] = Password });
        Assert.Equal(HttpStatusCode.Redirect, ok.StatusCode);
    }
}
