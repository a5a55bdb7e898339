using System.Diagnostics;
using EmailTracking.Data;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;

namespace EmailTracking.Tests.Content;

/// <summary>A server with a small upload limit, a short conversion deadline and a "LibreOffice" that never finishes.</summary>
public sealed class ContentLimitsApp() : AppFactory(DatabaseProvider.Sqlite)
{
    /// <summary>Marks the hanging converter's processes, so the test can tell whether any survived.</summary>
    public readonly string Marker = "3600." + Random.Shared.NextInt64(100_000_000, 999_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);

    string? script;

    protected override void Configure(IWebHostBuilder builder)
    {
        script = Path.Combine(ContentDir, "hanging-soffice.sh");
        // A converter that starts a child and waits forever, as a LibreOffice stuck on a hostile file does.
        // (The sleep's odd length is the marker: GNU sleep takes fractions.)
        File.WriteAllText(script, $"#!/bin/sh\nsleep {Marker} &\nwait\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        builder.UseSetting("Content:SofficePath", script);
        builder.UseSetting("Content:ConversionTimeout", "00:00:02");
        builder.UseSetting("Content:MaxUploadBytes", (2 * 1024 * 1024).ToString(System.Globalization.CultureInfo.InvariantCulture));
    }
}

/// <summary>A server that converts one document at a time, with a "LibreOffice" that hangs until its 4-second deadline.</summary>
public sealed class OneConversionApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public readonly string Marker = "3600." + Random.Shared.NextInt64(100_000_000, 999_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);

    protected override void Configure(IWebHostBuilder builder)
    {
        var script = Path.Combine(ContentDir, "hanging-soffice.sh");
        File.WriteAllText(script, $"#!/bin/sh\nsleep {Marker} &\nwait\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        builder.UseSetting("Content:SofficePath", script);
        builder.UseSetting("Content:ConversionTimeout", "00:00:04");
        builder.UseSetting("Content:MaxConcurrentConversions", "1");
    }
}

public sealed class ConversionSlotTests(OneConversionApp app) : IClassFixture<OneConversionApp>
{
    [Fact]
    public async Task A_docx_with_an_oversized_relationships_part_waits_for_a_conversion_slot_and_is_refused_saying_why()
    {
        // Reading a package takes memory and a core as converting it does, so it waits for the same slot: uploads at
        // once cannot read any number of packages side by side.
        var user = await app.NewUserAsync();
        var first = user.Client.UploadAsync(await Documents.DocxAsync(1), "First.docx");
        var waited = Stopwatch.StartNew();
        while (ContentLimitsTests.Processes(app.Marker).Count == 0 && waited.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(50);
        Assert.NotEmpty(ContentLimitsTests.Processes(app.Marker));
        var held = Stopwatch.StartNew();

        // The first conversion holds the slot until its deadline, 4 seconds after it started.
        var problem = await (await user.Client.UploadAsync(Documents.HugeRelationshipsDocx(8L * 1024 * 1024), "Huge.docx")).ProblemAsync();
        Assert.True(held.Elapsed > TimeSpan.FromSeconds(2), $"refused {held.Elapsed.TotalSeconds:0.0} s after the other conversion started, while it held the only slot");
        Assert.Equal(422, problem.Status);
        Assert.True(problem.Detail.Contains("word/_rels/document.xml.rels", StringComparison.Ordinal) && problem.Detail.Contains("4 MB", StringComparison.Ordinal),
            problem.Detail);
        Assert.Equal(422, (await (await first).ProblemAsync()).Status);
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
    }
}

public sealed class ContentLimitsTests(ContentLimitsApp app) : IClassFixture<ContentLimitsApp>
{
    [Fact]
    public async Task A_file_over_the_limit_is_413_with_the_limit_named()
    {
        var user = await app.NewUserAsync();
        var pdf = await Documents.PdfAsync(2);
        var big = new byte[3 * 1024 * 1024];
        pdf.CopyTo(big, 0);
        var problem = await (await user.Client.UploadAsync(big, "big.pdf")).ProblemAsync();
        Assert.Equal(413, problem.Status);
        Assert.Contains("2 MB", problem.Detail);
        // Far over the limit: refused while the body arrives, still a problem (not a broken connection or a 500).
        var huge = new byte[12 * 1024 * 1024];
        var second = await user.Client.UploadAsync(huge, "huge.pdf");
        Assert.Equal(413, (int)second.StatusCode);
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));
    }

    [Fact]
    public async Task A_conversion_that_hangs_is_killed_with_its_children_and_leaves_nothing()
    {
        var user = await app.NewUserAsync();
        var started = Stopwatch.StartNew();
        var problem = await (await user.Client.UploadAsync(await Documents.DocxAsync(2), "Proposal.docx")).ProblemAsync();
        Assert.Equal(422, problem.Status);
        Assert.True(problem.Detail.Contains("took longer than 2 seconds", StringComparison.Ordinal), problem.Detail);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(1.5), TimeSpan.FromSeconds(60));
        // A killed child can stay listed in /proc for a moment, until the kernel has reaped it.
        var gone = Stopwatch.StartNew();
        while (Processes(app.Marker).Count > 0 && gone.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        Assert.Empty(Processes(app.Marker));
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
        Assert.Empty(Directory.GetFileSystemEntries(Path.Combine(app.ContentDir, "tmp")));

        // PDFs need no conversion and still work on this server.
        var ok = await user.Client.UploadAsync(await Documents.PdfAsync(2), "Terms.pdf");
        Assert.True(ok.IsSuccessStatusCode, await ok.Content.ReadAsStringAsync());
    }

    /// <summary>Running processes whose command line carries the marker.</summary>
    internal static List<int> Processes(string marker)
    {
        var found = new List<int>();
        foreach (var dir in Directory.EnumerateDirectories("/proc"))
        {
            if (!int.TryParse(Path.GetFileName(dir), out var pid)) continue;
            try
            {
                var cmd = File.ReadAllText(Path.Combine(dir, "cmdline")).Replace('\0', ' ');
                if (cmd.Contains(marker, StringComparison.Ordinal)) found.Add(pid);
            }
            catch (IOException) { }
            catch (UnauthorizedAccessException) { }
        }
        return found;
    }
}

/// <summary>A server started over the work a dead one left behind (killed mid-upload), beside an upload in progress.</summary>
public sealed class LeftoverWorkApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public string Stale => Path.Combine(ContentDir, "tmp", "5ea1e0000000000000000000000000aa");
    public string Fresh => Path.Combine(ContentDir, "tmp", "f4e5b0000000000000000000000000bb");

    protected override void Configure(IWebHostBuilder builder)
    {
        // The upload, LibreOffice's profile and the half-made PDF, last written to two hours ago.
        Directory.CreateDirectory(Path.Combine(Stale, "lo-profile", "user"));
        File.WriteAllBytes(Path.Combine(Stale, "original.docx"), new byte[4096]);
        File.WriteAllBytes(Path.Combine(Stale, "lo-profile", "user", "registrymodifications.xcu"), new byte[16]);
        Directory.SetLastWriteTimeUtc(Path.Combine(Stale, "lo-profile"), DateTime.UtcNow.AddHours(-2));
        Directory.SetLastWriteTimeUtc(Stale, DateTime.UtcNow.AddHours(-2));
        Directory.CreateDirectory(Fresh);
        File.WriteAllBytes(Path.Combine(Fresh, "upload"), new byte[4096]);
    }
}

public sealed class LeftoverWorkTests(LeftoverWorkApp app) : IClassFixture<LeftoverWorkApp>
{
    [Fact]
    public async Task Work_left_by_a_server_that_died_mid_upload_is_removed_when_the_server_starts_and_work_in_progress_is_kept()
    {
        var waited = Stopwatch.StartNew();
        while (Directory.Exists(app.Stale) && waited.Elapsed < TimeSpan.FromSeconds(10)) await Task.Delay(50);
        Assert.False(Directory.Exists(app.Stale), "the dead upload's work directory is still there");
        Assert.True(File.Exists(Path.Combine(app.Fresh, "upload")));
    }
}
