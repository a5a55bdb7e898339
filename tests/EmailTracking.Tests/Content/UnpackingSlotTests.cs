using System.Diagnostics;
using System.Diagnostics.Metrics;
using System.IO.Compression;
using EmailTracking.Data;
using EmailTracking.Server.Content;
using EmailTracking.Tests.Infrastructure;
using Microsoft.AspNetCore.Hosting;
using Microsoft.Extensions.DependencyInjection;

namespace EmailTracking.Tests.Content;

/// <summary>A server that works on one Word or PowerPoint upload at a time.</summary>
public sealed class OneUnpackingApp() : AppFactory(DatabaseProvider.Sqlite)
{
    protected override void Configure(IWebHostBuilder builder) => builder.UseSetting("Content:MaxConcurrentConversions", "1");
}

/// <summary>
/// One conversion at a time, a "LibreOffice" that hangs until its 6-second deadline, and uploads that wait at most a
/// second for a conversion slot.
/// </summary>
public sealed class BusyConversionApp() : AppFactory(DatabaseProvider.Sqlite)
{
    public readonly string Marker = "3600." + Random.Shared.NextInt64(100_000_000, 999_999_999).ToString(System.Globalization.CultureInfo.InvariantCulture);

    protected override void Configure(IWebHostBuilder builder)
    {
        var script = Path.Combine(ContentDir, "hanging-soffice.sh");
        File.WriteAllText(script, $"#!/bin/sh\nsleep {Marker} &\nwait\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(script, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
        builder.UseSetting("Content:SofficePath", script);
        builder.UseSetting("Content:ConversionTimeout", "00:00:06");
        builder.UseSetting("Content:MaxConcurrentConversions", "1");
        builder.UseSetting("Content:ConversionQueueTimeout", "00:00:01");
    }
}

/// <summary>Counts the server's unpackings in progress (<see cref="ContentMetrics"/>) through its own meter, and the most at once.</summary>
sealed class UnpackingCounter : IDisposable
{
    readonly MeterListener listener = new();
    readonly Lock gate = new();
    int now;

    public int Most { get; private set; }
    public int Seen { get; private set; }

    public UnpackingCounter(AppFactory app)
    {
        // Only this server's meter: other tests' servers, running beside this one, have their own.
        var factory = app.Services.GetRequiredService<IMeterFactory>();
        listener.InstrumentPublished = (instrument, l) =>
        {
            if (instrument.Meter.Scope == factory && instrument.Meter.Name == ContentMetrics.MeterName && instrument.Name == ContentMetrics.UnpackingsName)
                l.EnableMeasurementEvents(instrument);
        };
        listener.SetMeasurementEventCallback<int>((_, value, _, _) =>
        {
            lock (gate)
            {
                now += value;
                if (value > 0) Seen++;
                Most = Math.Max(Most, now);
            }
        });
        listener.Start();
    }

    public void Dispose() => listener.Dispose();
}

public sealed class UnpackingSlotTests(OneUnpackingApp app) : IClassFixture<OneUnpackingApp>
{
    /// <summary>
    /// A zip that is no Office document (no [Content_Types].xml), whose parts unpack to some 300 MB within the limits
    /// (512 MB, each part compressed far less than 200 times): the sniffer unpacks all of it before it can say so.
    /// </summary>
    static readonly Lazy<byte[]> HeavyZip = new(() =>
    {
        var line = new byte[4096];
        var random = new Random(7);
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            for (var part = 0; part < 3; part++)
            {
                using var s = zip.CreateEntry($"data/part{part}.xml", CompressionLevel.Fastest).Open();
                for (var i = 0; i < 100 * 1024 * 1024 / line.Length; i++)
                {
                    // Mostly the same text with a few random bytes: compressed some tens of times, as real XML is.
                    Array.Fill(line, (byte)'a');
                    for (var k = 0; k < 64; k++) line[random.Next(line.Length)] = (byte)random.Next(256);
                    s.Write(line);
                }
            }
        }
        return output.ToArray();
    });

    [Fact]
    public async Task Zips_uploaded_together_are_unpacked_one_at_a_time_in_the_conversion_slot()
    {
        var user = await app.NewUserAsync();
        var zip = HeavyZip.Value;
        using var counter = new UnpackingCounter(app);

        var uploads = Enumerable.Range(0, 3).Select(i => user.Client.UploadAsync(zip, $"Heavy{i}.docx")).ToList();
        foreach (var upload in uploads)
        {
            var problem = await (await upload).ProblemAsync();
            Assert.Equal(415, problem.Status);
            Assert.Contains("zip archive, not a Word or PowerPoint document", problem.Detail);
        }
        Assert.Equal(3, counter.Seen);
        Assert.True(counter.Most == 1, $"{counter.Most} zips were unpacked at once with one conversion slot");
        Assert.Equal(0, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
    }
}

public sealed class BusyConversionTests(BusyConversionApp app) : IClassFixture<BusyConversionApp>
{
    [Fact]
    public async Task A_zip_that_finds_no_conversion_slot_in_time_is_refused_as_the_server_being_busy_and_leaves_nothing()
    {
        var user = await app.NewUserAsync();
        // The first upload's conversion holds the only slot until its 6-second deadline.
        var first = user.Client.UploadAsync(await Documents.DocxAsync(1), "First.docx");
        var waited = Stopwatch.StartNew();
        while (ContentLimitsTests.Processes(app.Marker).Count == 0 && waited.Elapsed < TimeSpan.FromSeconds(30)) await Task.Delay(50);
        Assert.NotEmpty(ContentLimitsTests.Processes(app.Marker));

        // Checking the next one's zip waits for the slot, for a second, and gives up saying so (it would be refused
        // as no Office document once unpacked).
        var started = Stopwatch.StartNew();
        var problem = await (await user.Client.UploadAsync(PlainZip(), "Second.docx")).ProblemAsync();
        Assert.Equal(503, problem.Status);
        Assert.Equal(ContentLibrary.BusyTitle, problem.Title);
        Assert.Contains("within a second", problem.Detail);
        Assert.Contains("upload it again", problem.Detail);
        Assert.InRange(started.Elapsed, TimeSpan.FromSeconds(0.9), TimeSpan.FromSeconds(5));

        // A PDF needs no slot and goes meanwhile.
        var pdf = await user.Client.UploadAsync(await Documents.PdfAsync(1), "Terms.pdf");
        Assert.True(pdf.IsSuccessStatusCode, await pdf.Content.ReadAsStringAsync());

        Assert.Equal(422, (await (await first).ProblemAsync()).Status);
        Assert.Equal(1, app.WithDb(db => db.Contents.Count(c => c.TeamId == user.TeamId)));
    }

    static byte[] PlainZip()
    {
        using var output = new MemoryStream();
        using (var zip = new ZipArchive(output, ZipArchiveMode.Create, leaveOpen: true))
        {
            using var s = zip.CreateEntry("notes.txt").Open();
            s.Write("Not a document."u8);
        }
        return output.ToArray();
    }
}
