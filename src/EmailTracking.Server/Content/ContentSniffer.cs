using System.Buffers.Binary;
using System.IO.Compression;
using System.Text;
using EmailTracking.Data;

namespace EmailTracking.Server.Content;

/// <summary>
/// Tells what a file is from its bytes, never from its name: PDF by its header, Word and PowerPoint 2007+ by the
/// parts inside the zip, Word 97 and PowerPoint 97 by the streams of the OLE compound file. Zip files are unpacked
/// once (to nowhere) with limits on entries, total size and compression ratio, so a zip bomb is refused here rather
/// than handed to LibreOffice. That unpacking takes a core for as long as the zip takes to unpack: the upload does it
/// in a conversion slot (<see cref="ConversionSlots"/>), as it converts, when <see cref="IsZip"/> says the file is one.
/// </summary>
public static class ContentSniffer
{
    public sealed record Result(ContentFileType? Type, string? Error)
    {
        public static Result Fail(string error) => new(null, error);
    }

    static readonly byte[] Cfb = [0xD0, 0xCF, 0x11, 0xE0, 0xA1, 0xB1, 0x1A, 0xE1];

    /// <summary>Whether the file starts as a zip does: <see cref="Sniff"/> then unpacks it, which takes a while.</summary>
    public static bool IsZip(string path)
    {
        Span<byte> head = stackalloc byte[4];
        using var f = File.OpenRead(path);
        return f.Length >= 4 && f.Read(head) == 4 && head.SequenceEqual("PK\x03\x04"u8);
    }

    /// <param name="ct">Stops the unpacking of a zip (the upload's request was cancelled): throws <see cref="OperationCanceledException"/>.</param>
    public static Result Sniff(string path, ContentOptions options, CancellationToken ct = default)
    {
        var length = new FileInfo(path).Length;
        if (length == 0) return Result.Fail("The file is empty.");
        var head = new byte[Math.Min(4096, length)];
        using (var f = File.OpenRead(path)) f.ReadExactly(head);

        // PDF readers accept the header anywhere in the first kilobyte.
        if (IndexOf(head.AsSpan(0, Math.Min(1024, head.Length)), "%PDF-"u8) >= 0) return new(ContentFileType.Pdf, null);
        if (head.AsSpan().StartsWith("PK\x03\x04"u8)) return SniffZip(path, length, options, ct);
        if (head.AsSpan().StartsWith(Cfb)) return SniffCompoundFile(path);

        return Result.Fail(Describe(head) + " Upload a PDF, Word (.doc, .docx) or PowerPoint (.ppt, .pptx) file.");
    }

    static string Describe(ReadOnlySpan<byte> head)
    {
        if (head.StartsWith("MZ"u8)) return "This is a Windows program, not a document.";
        if (head.StartsWith((ReadOnlySpan<byte>)[0x7F, (byte)'E', (byte)'L', (byte)'F'])) return "This is a Linux program, not a document.";
        if (head.StartsWith("#!"u8)) return "This is a script, not a document.";
        if (head.StartsWith("\x89PNG"u8) || head.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xD8, 0xFF]) || head.StartsWith("GIF8"u8))
            return "This is an image, not a document.";
        if (head.StartsWith("{\\rtf"u8)) return "RTF documents are not taken.";
        return "This file is not a document we can show.";
    }

    static Result SniffZip(string path, long length, ContentOptions options, CancellationToken ct)
    {
        try
        {
            // ZipArchive reads the whole directory into objects before anyone can count them: a 50 MB upload can hold a
            // million entries and cost hundreds of MB of server memory. Walk the directory's headers first, counting.
            if (CountDirectoryEntries(path, options.MaxZipEntries + 1) is not { } counted)
                return Result.Fail("The file looks like a Word or PowerPoint document but is damaged (its zip structure cannot be read).");
            if (counted > options.MaxZipEntries)
                return Result.Fail($"The file holds more than {options.MaxZipEntries:N0} parts; a document has far fewer. It was refused as a likely zip bomb.");
            using var zip = ZipFile.OpenRead(path);
            if (zip.Entries.Count > options.MaxZipEntries)
                return Result.Fail($"The file holds {zip.Entries.Count} parts; a document has far fewer. It was refused as a likely zip bomb.");
            var names = new HashSet<string>(StringComparer.Ordinal);
            long total = 0;
            var buffer = new byte[81920];
            foreach (var entry in zip.Entries)
            {
                names.Add(entry.FullName);
                // The sizes in the zip's directory can lie: count what really comes out.
                long produced = 0;
                using var s = entry.Open();
                int n;
                while ((n = s.Read(buffer)) > 0)
                {
                    ct.ThrowIfCancellationRequested();
                    produced += n;
                    total += n;
                    if (total > options.MaxUnpackedBytes)
                        return Result.Fail($"The file unpacks to more than {options.MaxUnpackedBytes / (1024 * 1024)} MB. It was refused as a likely zip bomb.");
                    if (produced > 1024 * 1024 && produced > (long)options.MaxCompressionRatio * Math.Max(1, entry.CompressedLength))
                        return Result.Fail("A part of the file is compressed far more than any document is. It was refused as a likely zip bomb.");
                }
            }
            if (!names.Contains("[Content_Types].xml"))
                return Result.Fail("This is a zip archive, not a Word or PowerPoint document.");
            if (names.Contains("word/document.xml")) return new(ContentFileType.Docx, null);
            if (names.Contains("ppt/presentation.xml")) return new(ContentFileType.Pptx, null);
            if (names.Contains("xl/workbook.xml")) return Result.Fail("Excel workbooks are not taken. Upload a PDF, Word or PowerPoint file.");
            return Result.Fail("This Office file is neither a Word document nor a PowerPoint presentation.");
        }
        catch (Exception e) when (e is InvalidDataException or IOException or NotSupportedException)
        {
            return Result.Fail("The file looks like a Word or PowerPoint document but is damaged (its zip structure cannot be read).");
        }
    }

    const uint EndOfDirectory = 0x06054b50, Zip64Locator = 0x07064b50, Zip64EndOfDirectory = 0x06064b50, DirectoryHeader = 0x02014b50;

    /// <summary>
    /// How many headers the zip's central directory holds, counted up to <paramref name="stop"/>, reading them one by
    /// one without keeping any; null when the end-of-directory record is missing or points outside the file. The start is
    /// found as ZipArchive finds it (the end record, or its Zip64 form when the record says so), and the headers are
    /// walked while they carry their signature, as ZipArchive walks them whatever count the end record declares.
    /// </summary>
    internal static long? CountDirectoryEntries(string path, long stop)
    {
        using var f = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read, 1, FileOptions.SequentialScan);
        // The end record is 22 bytes and may be followed by a comment of up to 65,535.
        var tailLength = (int)Math.Min(f.Length, 22 + 65_535);
        var tail = new byte[tailLength];
        f.Position = f.Length - tailLength;
        f.ReadExactly(tail);
        var end = -1;
        for (var i = tailLength - 22; i >= 0; i--)
        {
            if (BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(i)) == EndOfDirectory)
            {
                end = i;
                break;
            }
        }
        if (end < 0) return null;
        long start = BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end + 16));
        var endAt = f.Length - tailLength + end;
        if (start == uint.MaxValue && end >= 20 && BinaryPrimitives.ReadUInt32LittleEndian(tail.AsSpan(end - 20)) == Zip64Locator)
        {
            var zip64At = (long)BinaryPrimitives.ReadUInt64LittleEndian(tail.AsSpan(end - 20 + 8));
            if (zip64At < 0 || zip64At + 56 > endAt) return null;
            Span<byte> record = stackalloc byte[56];
            f.Position = zip64At;
            f.ReadExactly(record);
            if (BinaryPrimitives.ReadUInt32LittleEndian(record) != Zip64EndOfDirectory) return null;
            start = (long)BinaryPrimitives.ReadUInt64LittleEndian(record[48..]);
        }
        if (start < 0 || start > endAt) return null;

        Span<byte> header = stackalloc byte[46];
        long count = 0;
        var at = start;
        while (count < stop && at + 46 <= f.Length)
        {
            f.Position = at;
            f.ReadExactly(header);
            if (BinaryPrimitives.ReadUInt32LittleEndian(header) != DirectoryHeader) break;
            count++;
            at += 46L + BinaryPrimitives.ReadUInt16LittleEndian(header[28..]) + BinaryPrimitives.ReadUInt16LittleEndian(header[30..])
                  + BinaryPrimitives.ReadUInt16LittleEndian(header[32..]);
        }
        return count;
    }

    /// <summary>
    /// An OLE compound file names its streams in UTF-16 in its directory sectors. A password-protected .docx or .pptx
    /// is such a file too, holding "EncryptedPackage".
    /// </summary>
    static Result SniffCompoundFile(string path)
    {
        var bytes = File.ReadAllBytes(path);
        bool Has(string stream) => IndexOf(bytes, Encoding.Unicode.GetBytes(stream)) >= 0;
        if (Has("EncryptedPackage"))
            return Result.Fail("The document is password-protected. Remove the password (or save an unprotected copy) and upload it again.");
        if (Has("WordDocument")) return new(ContentFileType.Doc, null);
        if (Has("PowerPoint Document")) return new(ContentFileType.Ppt, null);
        if (Has("Workbook") || Has("Book")) return Result.Fail("Excel workbooks are not taken. Upload a PDF, Word or PowerPoint file.");
        return Result.Fail("This is an old-style Office file, but neither a Word document nor a PowerPoint presentation.");
    }

    static int IndexOf(ReadOnlySpan<byte> haystack, ReadOnlySpan<byte> needle) => haystack.IndexOf(needle);

    public static string Extension(ContentFileType type) => type switch
    {
        ContentFileType.Pdf => ".pdf",
        ContentFileType.Doc => ".doc",
        ContentFileType.Docx => ".docx",
        ContentFileType.Ppt => ".ppt",
        ContentFileType.Pptx => ".pptx",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };

    public static string MediaType(ContentFileType type) => type switch
    {
        ContentFileType.Pdf => "application/pdf",
        ContentFileType.Doc => "application/msword",
        ContentFileType.Docx => "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
        ContentFileType.Ppt => "application/vnd.ms-powerpoint",
        ContentFileType.Pptx => "application/vnd.openxmlformats-officedocument.presentationml.presentation",
        _ => throw new ArgumentOutOfRangeException(nameof(type)),
    };
}
