using System.Text.RegularExpressions;
using EmailTracking.Tests.Gmail;
using EmailTracking.Tests.Infrastructure;

namespace EmailTracking.Tests.Web;

/// <summary>The message page as the server renders it.</summary>
public sealed class MessagePageTests(SqliteApp app) : IClassFixture<SqliteApp>
{
    const string Password = "Correct-horse-battery-9";
    const string Outlook = "Microsoft Office/16.0 (Windows NT 10.0; Microsoft Outlook 16.0.17928; Pro)";

    [Fact]
    public async Task A_shared_copy_shows_its_counts_once_for_all_its_recipients_not_as_each_persons()
    {
        var user = await app.NewUserAsync(password: Password);
        var reg = await user.RegisterSimpleAsync(perRecipient: false, to: ["a@buyer.test", "b@buyer.test", "c@buyer.test"]);
        var pixel = TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!);
        foreach (var ip in new[] { "203.0.113.7", "203.0.113.8" })
        {
            using var hit = new HttpRequestMessage(HttpMethod.Get, pixel);
            hit.Headers.TryAddWithoutValidation("User-Agent", Outlook);
            hit.Headers.Add("X-Test-Remote-Ip", ip);
            (await app.Anonymous().SendAsync(hit)).EnsureSuccessStatusCode();
        }

        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        var html = await browser.GetStringAsync($"/messages/{reg.GetProperty("id").GetString()}");
        var table = html[html.IndexOf("<table class=\"grid\" id=\"recipients\">", StringComparison.Ordinal)..];
        table = table[..table.IndexOf("</table>", StringComparison.Ordinal)];
        // One row, the one the live feed updates, naming all three; its counts are the message's two opens.
        Assert.Single(Regex.Matches(table, "<tr data-recipient-id=\"\">"));
        Assert.Single(Regex.Matches(table, "<tr data-recipient-id"));
        foreach (var address in new[] { "a@buyer.test", "b@buyer.test", "c@buyer.test" }) Assert.Contains(address, table);
        Assert.Contains("<span class=\"opens\">2</span>", table);
        Assert.Contains("all 3 recipients together", table);
    }
}
