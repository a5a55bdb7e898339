using System.Text;
using MailKit;

namespace EmailTracking.Server.Mailboxes;

/// <summary>
/// The last bytes an IMAP server sent on one connection, kept to read the response code of a command it refused.
/// MailKit parses the code but its <see cref="MailKit.Net.Imap.ImapCommandException"/> carries only the text after it,
/// and a refusal "for now" (RFC 5530 <c>[UNAVAILABLE]</c>) must not be taken for a lasting one (Exchange's "could not be
/// converted to RFC-822", without a code). Given to the client as its protocol logger, it sees every byte of every
/// fetched message: it copies only the tail of each read, and looks at it only when a command has failed.
/// One client reads one response at a time, so it needs no lock.
/// </summary>
public sealed class ImapResponseTail : IProtocolLogger
{
    /// <summary>Enough for a tagged status line (servers keep their text short) and the untagged lines after it.</summary>
    public const int Capacity = 2048;

    readonly byte[] tail = new byte[Capacity];
    int length;

    /// <summary>False once bytes were dropped in the middle of a line: the kept tail then begins with the end of it.</summary>
    bool startsLine = true;

    /// <summary>Set by the client; nothing secret is kept here (only what the server sent, and only in memory).</summary>
    public IAuthenticationSecretDetector? AuthenticationSecretDetector { get; set; }

    public void LogConnect(Uri uri)
    {
        length = 0;
        startsLine = true;
    }

    public void LogClient(byte[] buffer, int offset, int count)
    {
    }

    /// <summary>Every byte the server sent on this client's connections: what a message really weighed, whatever it announced.</summary>
    public long Received { get; private set; }

    public void LogServer(byte[] buffer, int offset, int count)
    {
        if (count <= 0) return;
        Received += count;
        var total = length + count;
        if (total <= Capacity)
        {
            buffer.AsSpan(offset, count).CopyTo(tail.AsSpan(length));
            length = total;
            return;
        }
        // The bytes dropped from the front of (tail + buffer); the last of them says whether what is kept starts a line.
        var drop = total - Capacity;
        startsLine = (drop <= length ? tail[drop - 1] : buffer[offset + drop - length - 1]) == (byte)'\n';
        if (drop < length)
        {
            var kept = length - drop;
            tail.AsSpan(drop, kept).CopyTo(tail);
            buffer.AsSpan(offset, count).CopyTo(tail.AsSpan(kept));
        }
        else
        {
            buffer.AsSpan(offset + drop - length, Capacity).CopyTo(tail);
        }
        length = Capacity;
    }

    /// <summary>
    /// The response code of the last tagged status line the server sent (<c>A12 NO [UNAVAILABLE] text</c> gives
    /// <c>UNAVAILABLE</c>), upper-cased; null when that line has no code or no such line is kept whole. Asked after an
    /// <see cref="MailKit.Net.Imap.ImapCommandException"/>, that line is the refused command's answer: only untagged
    /// (<c>* </c>) and continuation (<c>+ </c>) lines may follow it. The search stops at the first other line from
    /// the end, so that a line inside a fetched message that looks like a tagged answer is never taken for one.
    /// </summary>
    public string? LastTaggedCode()
    {
        var text = tail.AsSpan(0, length);
        // Whole lines only: the last one may not have ended yet, and the first may be the end of one cut off.
        var end = text.LastIndexOf((byte)'\n');
        if (end < 0) return null;
        text = text[..end];
        if (!startsLine)
        {
            var first = text.IndexOf((byte)'\n');
            if (first < 0) return null;
            text = text[(first + 1)..];
        }
        while (true)
        {
            var lf = text.LastIndexOf((byte)'\n');
            var line = text[(lf + 1)..];
            if (line.EndsWith("\r"u8)) line = line[..^1];
            if (!line.StartsWith("* "u8) && !line.StartsWith("+ "u8) && !line.SequenceEqual("+"u8)) return StatusCode(line);
            if (lf < 0) return null;
            text = text[..lf];
        }
    }

    /// <summary>CODE of <c>tag SP (OK|NO|BAD) SP "[" CODE (SP ... / "]") ...</c> (RFC 3501 resp-text-code), or null.</summary>
    static string? StatusCode(ReadOnlySpan<byte> line)
    {
        var space = line.IndexOf((byte)' ');
        if (space <= 0) return null;
        foreach (var b in line[..space])
        {
            if (!IsAtomChar(b) || b == (byte)'+') return null;
        }
        var rest = line[(space + 1)..];
        var word = rest.IndexOf((byte)' ');
        if (word <= 0) return null;
        var status = rest[..word];
        if (!Ascii.EqualsIgnoreCase(status, "NO"u8) && !Ascii.EqualsIgnoreCase(status, "BAD"u8) && !Ascii.EqualsIgnoreCase(status, "OK"u8)) return null;
        rest = rest[(word + 1)..];
        if (rest.IsEmpty || rest[0] != (byte)'[') return null;
        rest = rest[1..];
        var atom = 0;
        while (atom < rest.Length && IsAtomChar(rest[atom])) atom++;
        // A code runs up to a space (its arguments) or the closing bracket; anything else is not a code.
        if (atom == 0 || atom == rest.Length || (rest[atom] != (byte)' ' && rest[atom] != (byte)']')) return null;
        return Encoding.ASCII.GetString(rest[..atom]).ToUpperInvariant();
    }

    /// <summary>RFC 3501 ATOM-CHAR: printable ASCII but for atom-specials and "]".</summary>
    static bool IsAtomChar(byte b) => b is > 0x20 and < 0x7f && "(){%*\"\\]"u8.IndexOf(b) < 0;

    public void Dispose() => length = 0;
}
