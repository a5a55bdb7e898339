using System.Text.Json;
using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>
/// A refused form comes back with the focus on its problems, in view (app.js): a keyboard or screen-reader user starts
/// there. The focus was at the top of the page, or on the sign-in page in the email field past the reason, and the Team
/// page's problem with adding a member showed above the members' table, a screen away from the form. Screenshots.
/// </summary>
[Collection(RealServerCollection.Name)]
public sealed class FormErrorFocusBrowserTests() : ServerBrowserTest("et-web-focus-")
{
    const string Email = "flynn@encom.test";
    const string Password = "Correct-Horse-9";

    static Task<JsonElement> FocusAsync(IPage page) => page.EvaluateAsync<JsonElement>("""
        () => {
          const e = document.activeElement;
          const r = e.getBoundingClientRect();
          return { role: e.getAttribute("role") || e.tagName.toLowerCase(), text: e.textContent.trim(), inView: r.top >= 0 && r.bottom <= window.innerHeight };
        }
        """);

    [Fact]
    public async Task A_refused_form_comes_back_with_the_focus_on_its_problem_in_view()
    {
        using var api = await NewTeamUserAsync(Email, Password);
        // Enough members that the form to add one is below the first screen.
        for (var i = 0; i < 12; i++) await ServerProcess.AddUserAsync(Settings, $"member{i}@encom.test", "Encom", "team", Password, ownPassword: true);

        var context = await browser.NewContextAsync(new BrowserNewContextOptions { ViewportSize = new ViewportSize { Width = 1280, Height = 700 } });
        var page = await context.NewPageAsync();
        await page.GotoAsync(server.BaseUrl + "/login");
        await page.FillAsync("#Email", Email);
        await page.FillAsync("#Password", "not the password");
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToContainTextAsync("Wrong email or password");
        var focus = await FocusAsync(page);
        Assert.True(focus.GetProperty("role").GetString() == "alert" && focus.GetProperty("text").GetString()!.StartsWith("Wrong email or password", StringComparison.Ordinal), $"{focus}");
        // The next Tab goes on to the fields, the email as typed.
        await page.Keyboard.PressAsync("Tab");
        await Assertions.Expect(page.Locator("#Email")).ToBeFocusedAsync();
        await Assertions.Expect(page.Locator("#Email")).ToHaveValueAsync(Email);

        await page.FillAsync("#Password", Password);
        await page.ClickAsync("button[type=submit]");
        await Assertions.Expect(page).ToHaveURLAsync(server.BaseUrl + "/");
        // A member's address again, from the form under the list: the reason, focused and in view.
        await page.GotoAsync(server.BaseUrl + "/team");
        await page.FillAsync("#add-member input[name=Email]", "member3@encom.test");
        await page.ClickAsync("#add-member button[type=submit]");
        await Assertions.Expect(page.Locator(".errors")).ToBeVisibleAsync();
        focus = await FocusAsync(page);
        Assert.True(focus.GetProperty("role").GetString() == "alert" && focus.GetProperty("inView").GetBoolean(), $"{focus}");
        Assert.Equal(await page.Locator(".errors").TextContentAsync(), await page.EvaluateAsync<string>("() => document.activeElement.textContent"));
        await Chromium.ShotAsync(page, "team-add-refused-focus");
        await context.CloseAsync();
    }
}
