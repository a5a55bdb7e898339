using EmailTracking.Server.Content;

namespace EmailTracking.Tests.Content;

public sealed class ExternalToolTests
{
    [Fact]
    public async Task A_memory_limit_caps_the_programs_address_space_and_a_missing_program_is_not_started()
    {
        // The program itself reports the limit it runs under (ulimit -v, in KB).
        var outcome = await ExternalTool.RunAsync("sh", ["-c", "ulimit -v"], TimeSpan.FromSeconds(30), null, null, CancellationToken.None,
            memoryLimitBytes: 300L * 1024 * 1024);
        Assert.True(outcome.Started);
        Assert.Equal(0, outcome.ExitCode);
        Assert.Equal((300 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), outcome.StandardOutput.Trim());

        var missing = await ExternalTool.RunAsync("no-such-tool-here", [], TimeSpan.FromSeconds(30), null, null, CancellationToken.None,
            memoryLimitBytes: 300L * 1024 * 1024);
        Assert.False(missing.Started);
    }
}
