using System.Net;
using System.Net.Http.Json;
using EmailTracking.Tests.Infrastructure;
using EmailTracking.Tests.Web;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The message page in Chromium for a send whose copy to one recipient the mail server refused: that recipient shows
/// "Not sent" and why, styled as a problem, with a "Send again" button; sending again lands back on the page with its
/// notice and the recipient no longer marked. Screenshots before and after.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class UnsentCopiesBrowserTests : InProcessBrowserTest<ComposePageSqliteApp>
{
    [Fact]
    public async Task A_not_sent_recipient_is_shown_as_a_problem_and_the_button_sends_their_copy_again()
    {
        var user = await app.NewUserAsync(password: Password);
        await app.MailboxAsync(user);
        var (good, refused) = ("alan@encom.test", "flynn@encom.test");
        app.Transport.Refuse[refused] = true;
        // The API over the server's real port (the factory's own client does not reach a Kestrel-served app).
        using var api = new HttpClient { BaseAddress = new Uri(baseUrl) };
        api.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", user.Token);
        var res = await api.PostAsJsonAsync("/api/messages/send", new
        {
            from = user.Email, subject = "The grid, as promised", to = new[] { good, refused }, html = "<p>Hi, the <a href=\"https://encom.test/grid\">grid</a>.</p>",
        }, TestApi.Json);
        Assert.Equal(HttpStatusCode.Created, res.StatusCode);
        var id = (await res.Content.ReadFromJsonAsync<System.Text.Json.JsonElement>()).GetProperty("id").GetGuid();

        var page = await (await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1024, Height = 768 } })).NewPageAsync();
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", user.Email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        await Assertions.Expect(page.Locator($"tbody[data-message-id='{id}'] .not-sent-count")).ToHaveTextAsync("1 not sent");

        await page.GotoAsync($"{baseUrl}/messages/{id}");
        var row = page.Locator("#recipients tr", new() { HasText = refused });
        await Assertions.Expect(row.Locator(".not-sent[role=note]")).ToContainTextAsync("Not sent: 550 5.1.1 User unknown");
        // Shown as a problem (the danger colour), not as a muted "no opens yet".
        Assert.Equal("rgb(180, 35, 24)", await row.Locator(".not-sent[role=note]").EvaluateAsync<string>("e => getComputedStyle(e).color"));
        await Assertions.Expect(page.Locator("#recipients tr", new() { HasText = good }).Locator(".not-sent")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#resend")).ToHaveTextAsync("Send again to 1 recipient");
        await Chromium.ShotAsync(page, "49-message-not-sent");

        app.Transport.Refuse.TryRemove(refused, out _);
        await page.ClickAsync("#resend");
        await Assertions.Expect(page.Locator("#notice")).ToHaveTextAsync("Sent again to 1 recipient.");
        await Assertions.Expect(page.Locator(".not-sent")).ToHaveCountAsync(0);
        await Assertions.Expect(page.Locator("#resend")).ToHaveCountAsync(0);
        await Chromium.ShotAsync(page, "50-message-sent-again");
        // The refused recipient's own copy left once, with its Message-ID.
        var copyId = app.WithDb(db => db.Copies.Where(c => c.TrackedMessageId == id)
            .Join(db.Recipients.Where(r => r.Address == refused), c => c.Id, r => r.CopyId, (c, _) => c.MessageIdHeader).Single());
        Assert.Single(app.Transport.Sent, m => m.MessageId == copyId);
    }
}
