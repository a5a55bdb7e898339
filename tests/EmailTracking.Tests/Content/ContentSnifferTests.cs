using System.Buffers.Binary;
using System.IO.Compression;
using EmailTracking.Server.Content;

namespace EmailTracking.Tests.Content;

/// <summary>
/// A zip with far more parts than a document has is refused before its directory is read into memory: ZipArchive
/// builds an object per entry, and a 50 MB upload holds about a million of them.
/// </summary>
public sealed class ContentSnifferTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("et-sniff-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    string ZipWith(int entries, string name)
    {
        var path = Path.Combine(dir, name);
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            zip.CreateEntry("[Content_Types].xml");
            zip.CreateEntry("word/document.xml");
            for (var i = 2; i < entries; i++) zip.CreateEntry("p/" + i.ToString(System.Globalization.CultureInfo.InvariantCulture));
        }
        return path;
    }

    static (ContentSniffer.Result Result, long Allocated) Sniff(string path)
    {
        var options = new ContentOptions();
        ContentSniffer.Sniff(ZipWithFewParts.Value, options); // warm up, so that the measure is of the big zip alone
        var before = GC.GetAllocatedBytesForCurrentThread();
        var result = ContentSniffer.Sniff(path, options);
        return (result, GC.GetAllocatedBytesForCurrentThread() - before);
    }

    static readonly Lazy<string> ZipWithFewParts = new(() =>
    {
        var path = Path.Combine(Path.GetTempPath(), $"et-sniff-small-{Guid.NewGuid():N}.docx");
        using (var zip = ZipFile.Open(path, ZipArchiveMode.Create))
        {
            zip.CreateEntry("[Content_Types].xml");
            zip.CreateEntry("word/document.xml");
        }
        return path;
    });

    [Fact]
    public void A_zip_of_more_parts_than_allowed_is_refused_without_reading_its_directory_into_memory()
    {
        var (result, allocated) = Sniff(ZipWith(12_000, "many.docx"));
        Assert.Null(result.Type);
        Assert.Contains("more than 10,000 parts", result.Error, StringComparison.Ordinal);
        Assert.True(allocated < 512 * 1024, $"{allocated:N0} bytes allocated to refuse it");
    }

    [Fact]
    public void A_zip64_directory_is_counted_too()
    {
        // Over 65,535 entries the archive is written in the Zip64 form, whose end record points elsewhere.
        var (result, allocated) = Sniff(ZipWith(70_000, "zip64.docx"));
        Assert.Contains("more than 10,000 parts", result.Error, StringComparison.Ordinal);
        Assert.True(allocated < 512 * 1024, $"{allocated:N0} bytes allocated to refuse it");
    }

    [Fact]
    public void An_end_record_that_understates_the_parts_does_not_hide_them()
    {
        var path = ZipWith(12_000, "lying.docx");
        var bytes = File.ReadAllBytes(path);
        var end = bytes.AsSpan().LastIndexOf("PK\x05\x06"u8);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(end + 8), 2);
        BinaryPrimitives.WriteUInt16LittleEndian(bytes.AsSpan(end + 10), 2);
        File.WriteAllBytes(path, bytes);
        var (result, allocated) = Sniff(path);
        Assert.Contains("more than 10,000 parts", result.Error, StringComparison.Ordinal);
        Assert.True(allocated < 512 * 1024, $"{allocated:N0} bytes allocated to refuse it");
    }

    [Fact]
    public void A_zip_within_the_limits_is_still_sniffed_and_a_truncated_one_is_damaged()
    {
        var path = ZipWith(500, "fine.docx");
        Assert.Equal(EmailTracking.Data.ContentFileType.Docx, ContentSniffer.Sniff(path, new ContentOptions()).Type);

        var bytes = File.ReadAllBytes(path);
        File.WriteAllBytes(path, bytes[..(bytes.Length / 2)]);
        var cut = ContentSniffer.Sniff(path, new ContentOptions());
        Assert.Null(cut.Type);
        Assert.Contains("damaged", cut.Error, StringComparison.Ordinal);
    }
}
