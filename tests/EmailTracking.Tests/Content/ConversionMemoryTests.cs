using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Content;

/// <summary>
/// A server whose "LibreOffice" writes down the address-space limit it was started under, then aborts as LibreOffice
/// does when an allocation or a thread is refused under that limit (a real one at 256 MB: "osl::Thread::create failed",
/// SIGABRT; how little it takes depends on the machine, so the test does not use the real one).
/// </summary>
public sealed class LimitedConverterApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public string LimitFile => Path.Combine(ContentDir, "soffice-limit.txt");

    protected override void Configure(IWebHostBuilder builder)
    {
        var script = Path.Combine(ContentDir, "aborting-soffice.sh");
        File.WriteAllText(script, $"#!/bin/sh\nulimit -v > '{LimitFile}'\nkill -s ABRT $$\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        builder.UseSetting("Content:SofficePath", script);
        builder.UseSetting("Content:ConversionNetworkIsolation", "Off");
        builder.UseSetting("Content:ConversionMemoryLimitMegabytes", "1500");
    }
}

/// <summary>
/// LibreOffice converts under a cap on its memory (Content:ConversionMemoryLimitMegabytes): a file that makes it
/// allocate without end stops it rather than taking the machine's memory for the two minutes of its deadline, and the
/// upload is refused saying so.
/// </summary>
public sealed class ConversionMemoryTests(LimitedConverterApp app) : IClassFixture<LimitedConverterApp>
{
    [Fact]
    public async Task LibreOffice_runs_under_the_configured_limit_and_a_conversion_stopped_by_it_is_refused_saying_so()
    {
        var user = await app.NewUserAsync();
        var problem = await (await user.Client.UploadAsync(await Documents.DocxAsync(1), "Proposal.docx")).ProblemAsync();
        // ulimit -v speaks in KiB.
        Assert.Equal((1500 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture), File.ReadAllText(app.LimitFile).Trim());
        Assert.Equal(422, problem.Status);
        Assert.True(problem.Detail.Contains("more than the 1500 MB of memory", StringComparison.Ordinal), problem.Detail);
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));
    }
}
