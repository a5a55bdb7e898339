using EmailTracking.Tests.Infrastructure;
using Microsoft.Playwright;

namespace EmailTracking.Tests.Browser;

/// <summary>Debian's Chromium driven by Playwright, as every browser test starts it, and where their screenshots go.</summary>
/// <remarks>
/// One Playwright driver and one Chromium serve the whole run: starting both for each test cost about a second of
/// the two cores each time, over a hundred times. Each test still gets a browser of its own in every way that
/// matters: its pages live in contexts it creates (own cookies, storage and cache), and <see cref="ReleaseAsync"/>
/// closes every context the test left open. Browser tests run one after another (the real server collection), so no
/// two tests share the browser at once.
/// </remarks>
static class Chromium
{
    static readonly SemaphoreSlim Gate = new(1, 1);
    static IPlaywright? playwright;
    static IBrowser? shared;

    /// <summary>The run's Chromium, started on first use and again if it went away (a crash a test caused).</summary>
    public static async Task<IBrowser> SharedAsync()
    {
        await Gate.WaitAsync();
        try
        {
            if (shared is { IsConnected: true }) return shared;
            if (shared is not null)
            {
                try { await shared.DisposeAsync(); } catch (PlaywrightException) { }
            }
            if (playwright is null)
            {
                playwright = await Playwright.CreateAsync();
                // The driver (and the Chromium it started) ends with this process either way; disposing it says so.
                AppDomain.CurrentDomain.ProcessExit += (_, _) => playwright.Dispose();
            }
            shared = await LaunchAsync(playwright);
            return shared;
        }
        finally
        {
            Gate.Release();
        }
    }

    /// <summary>Closes the contexts (and so the pages) a test opened: the next test finds the browser as it started.</summary>
    public static async Task ReleaseAsync(IBrowser? browser)
    {
        if (browser is not { IsConnected: true }) return;
        foreach (var context in browser.Contexts.ToList())
        {
            try { await context.CloseAsync(); } catch (PlaywrightException) { }
        }
    }

    static Task<IBrowser> LaunchAsync(IPlaywright playwright) =>
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
