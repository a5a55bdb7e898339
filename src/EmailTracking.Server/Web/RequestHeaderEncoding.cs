using System.Text;
using System.Text.Unicode;

namespace EmailTracking.Server.Web;

/// <summary>
/// How Kestrel reads request header values (<c>KestrelServerOptions.RequestHeaderEncodingSelector</c>): as UTF-8, and a
/// value that is not valid UTF-8 byte for byte as Latin-1, as HTTP/1.0 clients meant it. Kestrel's own reading takes
/// UTF-8 only and answers anything else with a 400 before any endpoint runs: an old mail client whose user agent says
/// <c>caf\xE9</c> in Latin-1 got no pixel and no redirect, and its open was never recorded. Kestrel picks an encoding by
/// header name, not by value, so this one decides per value. A NUL byte is still refused, as Kestrel's reading does
/// (PostgreSQL takes no NUL in text). Pure ASCII, what nearly every request carries, is one vectorised check and a widening.
/// </summary>
public sealed class RequestHeaderEncoding : Encoding
{
    public static readonly RequestHeaderEncoding Instance = new();

    RequestHeaderEncoding() { }

    enum Form { Ascii, Utf8, Latin1 }

    static Form Read(ReadOnlySpan<byte> bytes)
    {
        var at = bytes.IndexOfAnyExceptInRange((byte)1, (byte)0x7F);
        if (at < 0) return Form.Ascii;
        var rest = bytes[at..];
        if (rest.Contains((byte)0)) throw new DecoderFallbackException("Request header values hold no NUL byte.");
        return Utf8.IsValid(rest) ? Form.Utf8 : Form.Latin1;
    }

    public override int GetCharCount(ReadOnlySpan<byte> bytes) => Read(bytes) switch
    {
        Form.Utf8 => UTF8.GetCharCount(bytes),
        _ => bytes.Length,
    };

    public override int GetChars(ReadOnlySpan<byte> bytes, Span<char> chars)
    {
        switch (Read(bytes))
        {
            case Form.Ascii:
                if (System.Text.Ascii.ToUtf16(bytes, chars, out var written) != System.Buffers.OperationStatus.Done)
                    throw new ArgumentException("The destination is too small.", nameof(chars));
                return written;
            case Form.Utf8:
                return UTF8.GetChars(bytes, chars);
            default:
                return Latin1.GetChars(bytes, chars);
        }
    }

    // string.CreateStringFromEncoding, behind GetString(ReadOnlySpan<byte>) that Kestrel calls, counts and decodes through
    // the pointer overloads; the base ones copy the bytes to an array first.
    public override unsafe int GetCharCount(byte* bytes, int count) => GetCharCount(new ReadOnlySpan<byte>(bytes, count));

    public override unsafe int GetChars(byte* bytes, int byteCount, char* chars, int charCount) =>
        GetChars(new ReadOnlySpan<byte>(bytes, byteCount), new Span<char>(chars, charCount));

    public override int GetCharCount(byte[] bytes, int index, int count) => GetCharCount(bytes.AsSpan(index, count));

    public override int GetChars(byte[] bytes, int byteIndex, int byteCount, char[] chars, int charIndex) =>
        GetChars(bytes.AsSpan(byteIndex, byteCount), chars.AsSpan(charIndex));

    public override int GetMaxCharCount(int byteCount)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(byteCount);
        return byteCount;
    }

    // Encoding (never asked of a request header) is UTF-8's.
    public override int GetByteCount(char[] chars, int index, int count) => UTF8.GetByteCount(chars, index, count);

    public override int GetBytes(char[] chars, int charIndex, int charCount, byte[] bytes, int byteIndex) =>
        UTF8.GetBytes(chars, charIndex, charCount, bytes, byteIndex);

    public override int GetMaxByteCount(int charCount) => UTF8.GetMaxByteCount(charCount);

    public override string WebName => "utf-8";
}
