using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>The API tokens page on a phone (390 px, as the layout tests' phone), in Chromium. Screenshot.</summary>
[Collection(RealServerCollection.Name)]
public sealed class TokensPageBrowserTests : InProcessBrowserTest<TeamPageBrowserApp>
{
    async Task<(IPage Page, List<string> Errors)> SignedInAsync(string email, int width)
    {
        var context = await browser.NewContextAsync(new BrowserNewContextOptions
        {
            ViewportSize = new ViewportSize { Width = width, Height = 844 }, IsMobile = true, HasTouch = true,
        });
        var page = await context.NewPageAsync();
        var errors = new List<string>();
        page.Console += (_, m) => { if (m.Type == "error") errors.Add(m.Text + " @ " + m.Location); };
        await page.GotoAsync(baseUrl + "/login");
        await page.FillAsync("#Email", email);
        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(baseUrl + "/");
        return (page, errors);
    }

    /// <summary>
    /// On a 390 px phone the API tokens' table ran past the screen's edge inside its scrolling box: the Revoke buttons
    /// were off the screen, reached only by scrolling the table sideways. Each token's row now stacks, its button in view.
    /// </summary>
    [Fact]
    public async Task On_a_phone_every_tokens_revoke_button_shows_without_scrolling_sideways()
    {
        var user = await app.NewUserAsync(password: Password);
        var (page, errors) = await SignedInAsync(user.Email, width: 390);
        foreach (var name in new[] { "laptop script", "Salesforce sync for the EMEA regional sales team" })
        {
            await page.GotoAsync(baseUrl + "/tokens");
            await page.FillAsync("input[name=Name]", name);
            await page.ClickAsync("form.inline button[type=submit]");
            await Assertions.Expect(page.Locator("#new-token")).ToBeVisibleAsync();
        }
        await page.GotoAsync(baseUrl + "/tokens");
        // The two made here, and the one the user was made with.
        await Assertions.Expect(page.Locator("main table.grid button.danger")).ToHaveCountAsync(3);
        var fit = await page.EvaluateAsync<JsonElement>("""
            () => ({
              scrollWidth: document.documentElement.scrollWidth,
              innerWidth: window.innerWidth,
              innerHeight: window.innerHeight,
              // Where each button is, and whether what shows at its middle is the button itself (not clipped by its box),
              // the page scrolled up or down (never sideways) to bring its row to the screen.
              buttons: Array.from(document.querySelectorAll("main table.grid button.danger")).map((b) => {
                window.scrollTo(0, window.scrollY + b.getBoundingClientRect().top - window.innerHeight / 2);
                const r = b.getBoundingClientRect();
                const hit = document.elementFromPoint(r.left + r.width / 2, r.top + r.height / 2);
                return { left: r.left, right: r.right, top: r.top, bottom: r.bottom, width: r.width, shown: !!hit && (hit === b || b.contains(hit)) };
              }),
              scrolledSideways: Math.max(0, ...Array.from(document.querySelectorAll(".table-scroll")).map((s) => s.scrollLeft)),
            })
            """);
        var where = fit.ToString();
        Assert.True(fit.GetProperty("innerWidth").GetInt32() == 390, where);
        Assert.True(fit.GetProperty("scrollWidth").GetInt32() <= 390, where);
        Assert.Equal(0, fit.GetProperty("scrolledSideways").GetDouble());
        foreach (var b in fit.GetProperty("buttons").EnumerateArray())
        {
            Assert.True(b.GetProperty("width").GetDouble() > 0 && b.GetProperty("left").GetDouble() >= 0 && b.GetProperty("right").GetDouble() <= 390, where);
            Assert.True(b.GetProperty("bottom").GetDouble() <= fit.GetProperty("innerHeight").GetDouble() && b.GetProperty("shown").GetBoolean(), where);
        }
        await Chromium.ShotAsync(page, "40-phone-tokens-revoke");
        Assert.True(errors.Count == 0, string.Join("\n", errors));
    }
}
