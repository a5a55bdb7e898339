using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>Debian's Chromium driven by Playwright, as every browser test starts it, and where their screenshots go.</summary>
static class Chromium
{
    public static Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
        playwright.Chromium.LaunchAsync(new BrowserTypeLaunchOptions
        {
            ExecutablePath = Environment.GetEnvironmentVariable("ET_CHROMIUM") ?? "/usr/bin/chromium",
            Headless = true,
            Args = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
        });

    static string ScreenshotDir => Environment.GetEnvironmentVariable("ET_SCREENSHOTS") ?? Path.Combine(ServerProcess.RepoRoot, "artifacts", "screenshots");

    /// <summary>A full-page screenshot, saved as NAME.png.</summary>
    public static async Task ShotAsync(IPage page, string name)
    {
        Directory.CreateDirectory(ScreenshotDir);
        await page.ScreenshotAsync(new PageScreenshotOptions { Path = Path.Combine(ScreenshotDir, name + ".png"), FullPage = true });
    }

    /// <summary>
    /// Does <paramref name="action"/> (a click on a destructive button) and answers the confirmation it raises:
    /// accepts or dismisses it, and returns the question asked. Fails if no confirmation comes (Playwright would
    /// otherwise dismiss an unexpected one silently, and the test would see only that nothing happened).
    /// </summary>
    public static async Task<string> AnswerConfirmAsync(IPage page, Func<Task> action, bool accept)
    {
        var asked = new TaskCompletionSource<string>(TaskCreationOptions.RunContinuationsAsynchronously);
        async void Answer(object? sender, IDialog dialog)
        {
            asked.TrySetResult(dialog.Type == "confirm" ? dialog.Message : $"(a {dialog.Type} dialog, not a confirmation: {dialog.Message})");
            try
            {
                if (accept) await dialog.AcceptAsync();
                else await dialog.DismissAsync();
            }
            catch (PlaywrightException)
            {
                // The page went away with its dialog (a navigation after accepting): nothing is left to answer.
            }
        }
        page.Dialog += Answer;
        try
        {
            await action();
            return await asked.Task.WaitAsync(TimeSpan.FromSeconds(15));
        }
        finally
        {
            page.Dialog -= Answer;
        }
    }
}
