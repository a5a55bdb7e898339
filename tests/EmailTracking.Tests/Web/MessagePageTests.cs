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
        var table = html[html.IndexOf("id=\"recipients\">", StringComparison.Ordinal)..];
        table = table[..table.IndexOf("</table>", StringComparison.Ordinal)];
        // One row, the one the live feed updates, naming all three; its counts are the message's two opens.
        Assert.Single(Regex.Matches(table, "<tr data-recipient-id=\"\" "));
        Assert.Single(Regex.Matches(table, "<tr data-recipient-id"));
        foreach (var address in new[] { "a@buyer.test", "b@buyer.test", "c@buyer.test" }) Assert.Contains(address, table);
        Assert.Contains("<span class=\"opens\">2</span>", table);
        Assert.Contains("all 3 recipients together", table);
    }

    [Fact]
    public async Task Every_time_on_the_page_is_a_time_element_with_its_instant_in_utc()
    {
        var user = await app.NewUserAsync(password: Password);
        var sent = new DateTimeOffset(2025, 1, 15, 20, 30, 0, TimeSpan.Zero);
        var reg = await user.RegisterSimpleAsync(sentAt: sent);
        using (var hit = new HttpRequestMessage(HttpMethod.Get, TestApi.Path(reg.GetProperty("copies")[0].GetProperty("pixelUrl").GetString()!)))
        {
            hit.Headers.TryAddWithoutValidation("User-Agent", Outlook);
            (await app.Anonymous().SendAsync(hit)).EnsureSuccessStatusCode();
        }

        var browser = await WebSignIn.SignInAsync(app, user.Email, Password);
        foreach (var path in new[] { $"/messages/{reg.GetProperty("id").GetString()}", "/" })
        {
            var html = await browser.GetStringAsync(path);
            Assert.Contains("<time datetime=\"2025-01-15T20:30:00.0000000Z\">2025-01-15 20:30:00 UTC</time>", html);
            // The send time, the open in the timeline and the recipient's first (or last) open: each a time element whose
            // text is its datetime in UTC, and no time written outside one.
            var times = Regex.Matches(html, "<time datetime=\"([^\"]+)\">([^<]*)</time>");
            Assert.True(times.Count >= 3, $"{path}: {times.Count} time elements");
            foreach (Match t in times)
            {
                var at = DateTimeOffset.Parse(t.Groups[1].Value, System.Globalization.CultureInfo.InvariantCulture);
                Assert.EndsWith("Z", t.Groups[1].Value);
                Assert.Equal(at.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", System.Globalization.CultureInfo.InvariantCulture) + " UTC", t.Groups[2].Value);
            }
            Assert.Equal(times.Count, Regex.Matches(html, @"\d\d:\d\d:\d\d UTC").Count);
        }
    }
}
