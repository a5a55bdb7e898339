using System.Buffers;
using System.Text;
using System.Text.Unicode;

namespace EmailTracking.Server.Sequences;

/// <summary>
/// The text of an uploaded CSV file. Excel saves "CSV" in the computer's ANSI code page — Windows-1252 in western
/// Europe and the Americas — unless "CSV UTF-8" is chosen, and reading every file as UTF-8 stored "Jérôme" as
/// "J\uFFFDr\uFFFDme". A byte order mark says UTF-8, UTF-16 or UTF-32; without one, the bytes are read as UTF-8 when
/// they are valid UTF-8 (text in Windows-1252 with any accented letter practically never is), else as Windows-1252.
/// </summary>
public static class CsvText
{
    /// <summary>What is read, as the Sequence page says it.</summary>
    public const string Encodings = "UTF-8 (with a byte order mark or without), UTF-16 or UTF-32 with a byte order mark, or else Windows-1252, which Excel's plain “CSV” is in western languages";

    // In the framework: no package, and no process-wide Encoding.RegisterProvider needed.
    static readonly Encoding Windows1252 = CodePagesEncodingProvider.Instance.GetEncoding(1252)!;

    /// <summary>The file's text, or why it cannot be read.</summary>
    public static async Task<(string? Text, string? Error)> ReadAsync(Stream stream, CancellationToken ct)
    {
        using var buffer = new MemoryStream();
        await stream.CopyToAsync(buffer, ct);
        return Decode(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
    }

    /// <summary>The text of the bytes, or why it cannot be read.</summary>
    public static (string? Text, string? Error) Decode(ReadOnlySpan<byte> bytes)
    {
        // UTF-32 LE's mark begins with UTF-16 LE's: looked for first.
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE, 0x00, 0x00])) return (new UTF32Encoding(bigEndian: false, byteOrderMark: true).GetString(bytes[4..]), null);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0x00, 0x00, 0xFE, 0xFF])) return (new UTF32Encoding(bigEndian: true, byteOrderMark: true).GetString(bytes[4..]), null);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xFF, 0xFE])) return (Encoding.Unicode.GetString(bytes[2..]), null);
        if (bytes.StartsWith((ReadOnlySpan<byte>)[0xFE, 0xFF])) return (Encoding.BigEndianUnicode.GetString(bytes[2..]), null);
        var marked = bytes.StartsWith((ReadOnlySpan<byte>)[0xEF, 0xBB, 0xBF]);
        var body = marked ? bytes[3..] : bytes;
        var chars = new char[body.Length]; // never more UTF-16 characters than UTF-8 bytes
        if (Utf8.ToUtf16(body, chars, out var read, out var written, replaceInvalidSequences: false) == OperationStatus.Done)
            return (new string(chars, 0, written), null);
        // A file that says it is UTF-8 and is not was broken somewhere: a guess would store wrong names.
        if (marked) return (null, $"The file is marked as UTF-8, but byte {read + 4:N0} is not UTF-8. Save the sheet again as CSV UTF-8 and upload that.");
        return (Windows1252.GetString(bytes), null);
    }
}
