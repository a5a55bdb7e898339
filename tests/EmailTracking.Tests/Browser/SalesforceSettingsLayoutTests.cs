using System.Text.Json;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.EntityFrameworkCore;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// The Salesforce page's "What is logged" in Chromium: each box sits at the start of its own words, on their line. The
/// boxes stood alone in the middle of the card, each above its words (the form's labels are columns), so that which box
/// was which took reading the page's code. At a laptop's and a phone's width, with a screenshot of each.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class SalesforceSettingsLayoutTests() : ServerBrowserTest("et-web-salesforce-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";

    [Fact]
    public async Task Each_logging_choice_has_its_box_beside_its_words()
    {
        using var api = await NewTeamUserAsync(Email, Password);
        await using (var db = OpenDb())
        {
            var user = await db.Users.SingleAsync(u => u.Email == Email);
            db.SalesforceConnections.Add(new SalesforceConnection
            {
                TeamId = user.TeamId, ConnectedByUserId = user.Id, InstanceUrl = "https://encom.my.salesforce.com", ProtectedSecret = "unused",
                SalesforceUsername = "flynn@encom.test", CreatedAt = DateTimeOffset.UtcNow, LogOpens = true,
            });
            await db.SaveChangesAsync();
        }
        foreach (var (width, height) in new[] { (1280, 900), (390, 844) })
        {
            var page = await SignedInPageAsync(new BrowserNewContextOptions
            {
                ViewportSize = new ViewportSize { Width = width, Height = height }, IsMobile = width < 700, HasTouch = width < 700,
            }, Email, Password);
            await page.GotoAsync(server.BaseUrl + "/salesforce");
            await Assertions.Expect(page.Locator("#salesforce-settings input[type=checkbox]")).ToHaveCountAsync(6);
            var choices = await page.EvaluateAsync<JsonElement>("""
                () => Array.from(document.querySelectorAll("#salesforce-settings input[type=checkbox]")).map((box) => {
                  const words = document.createRange();
                  words.selectNodeContents(box.closest("label").lastChild);
                  const b = box.getBoundingClientRect(), w = words.getBoundingClientRect();
                  return { name: box.name, words: box.closest("label").textContent.trim(),
                           sameLine: b.top < w.bottom && w.top < b.bottom, before: b.right <= w.left && w.left - b.right < 20 };
                })
                """);
            foreach (var choice in choices.EnumerateArray())
            {
                Assert.True(choice.GetProperty("sameLine").GetBoolean() && choice.GetProperty("before").GetBoolean(), $"{width}px: {choice}");
            }
            // Each box still says what it is to a screen reader, and what was stored.
            await Assertions.Expect(page.GetByLabel("Opens (the first by each person)")).ToBeCheckedAsync();
            await Assertions.Expect(page.GetByLabel("Bounces")).Not.ToBeCheckedAsync();
            await Chromium.ShotAsync(page, $"salesforce-settings-{width}");
            await page.Context.CloseAsync();
        }
    }
}
