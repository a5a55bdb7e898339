using UglyToad.PdfPig;
using UglyToad.PdfPig.Exceptions;

namespace EmailTracking.Server.Content;

/// <summary>Checks that a PDF is whole and readable without a password, and counts its pages (PdfPig).</summary>
public static class PdfInspector
{
    public sealed record Result(int PageCount, string? Error);

    public static Result Inspect(string path)
    {
        // Readers look for the end-of-file marker in the last kilobyte; a file cut short in transfer lacks it.
        using (var f = File.OpenRead(path))
        {
            var tail = new byte[Math.Min(1024, f.Length)];
            f.Seek(-tail.Length, SeekOrigin.End);
            f.ReadExactly(tail);
            if (tail.AsSpan().IndexOf("%%EOF"u8) < 0)
                return new(0, "The PDF is incomplete (it was cut short, perhaps in a download). Upload the whole file.");
        }
        try
        {
            using var doc = PdfDocument.Open(path, new ParsingOptions { UseLenientParsing = false, SkipMissingFonts = true });
            var pages = doc.NumberOfPages;
            if (pages < 1) return new(0, "The PDF has no pages.");
            // Reading the first page proves the page tree is sound, not just the trailer.
            _ = doc.GetPage(1).Width;
            return new(pages, null);
        }
        catch (PdfDocumentEncryptedException)
        {
            return new(0, "The PDF is password-protected. Upload a copy without a password.");
        }
        catch (Exception e) when (e is not OutOfMemoryException)
        {
            // A parser fed hostile input may fail in any way; each means the same thing to the user.
            _ = e;

            return new(0, "The PDF is damaged and cannot be read. Re-export it from the program that made it and upload it again.");
        }
    }
}
