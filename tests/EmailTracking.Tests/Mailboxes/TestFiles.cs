using System.Text;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>Files to attach in tests: real headers (so that the type is told from the bytes) over bytes that do not compress.</summary>
public static class TestFiles
{
    /// <summary>A PDF header and then <paramref name="size"/> bytes in all, the same for the same seed.</summary>
    public static byte[] Pdf(int size, int seed = 1)
    {
        var bytes = new byte[size];
        new Random(seed).NextBytes(bytes);
        "%PDF-1.7\n"u8.CopyTo(bytes);
        return bytes;
    }

    public static byte[] Text(string text) => Encoding.UTF8.GetBytes(text);

    /// <summary>What the send API takes for one file.</summary>
    public static object Attachment(string fileName, byte[] content, string? contentType = null) =>
        new { fileName, content = Convert.ToBase64String(content), contentType };
}
