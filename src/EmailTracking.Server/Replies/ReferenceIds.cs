using System.Buffers;
using System.Text;
using MimeKit;

namespace EmailTracking.Server.Replies;

/// <summary>
/// The Message-IDs a reply's References and In-Reply-To headers name. MimeKit's <see cref="MimeMessage.References"/>
/// and <see cref="MimeMessage.InReplyTo"/> parse every id as an RFC 5322 msg-id, about a microsecond each, after
/// unfolding and decoding the header: for a batch of replies deep in threads that was a fifth of the time spent
/// matching them. A header that is nothing but ASCII ids in angle brackets separated by white space, which is what
/// mail clients write, is split at its brackets instead, straight from its raw bytes; anything else (comments, quoted
/// strings, ids without brackets or without <c>@</c>, other than ASCII, the header more than once) goes to MimeKit's
/// parser. For the ids it takes, the split gives what MimeKit gives (a test compares them over real and generated
/// headers).
/// </summary>
internal static class ReferenceIds
{
    /// <summary>Bytes that only comments, quoted strings and escapes bring: MimeKit's parser decides then.</summary>
    static readonly SearchValues<byte> NeedsParser = SearchValues.Create("\"()\\"u8);

    /// <summary>What may stand inside the brackets: printable ASCII but white space and angle brackets.</summary>
    static readonly SearchValues<byte> IdBytes = SearchValues.Create(
        [.. Enumerable.Range(0x21, 0x7e - 0x21 + 1).Select(b => (byte)b).Where(b => b is not (byte)'<' and not (byte)'>')]);

    /// <summary>At most <paramref name="max"/> References ids, the newest (the last in the header) first.</summary>
    public static List<string> NewestFirst(MimeMessage message, int max)
    {
        if (Single(message, HeaderId.References) is not { } header || !TrySplit(header.RawValue, out var ids))
            return [.. message.References.Reverse().Take(max)];
        ids.Reverse();
        if (ids.Count > max) ids.RemoveRange(max, ids.Count - max);
        return ids;
    }

    /// <summary>The id In-Reply-To names (its first), as <see cref="MimeMessage.InReplyTo"/> gives it.</summary>
    public static string? InReplyTo(MimeMessage message) =>
        Single(message, HeaderId.InReplyTo) is { } header && TrySplit(header.RawValue, out var ids) && ids.Count > 0 ? ids[0] : message.InReplyTo;

    /// <summary>The header when the message has it exactly once.</summary>
    static Header? Single(MimeMessage message, HeaderId id)
    {
        Header? found = null;
        foreach (var header in message.Headers)
        {
            if (header.Id != id) continue;
            if (found is not null) return null;
            found = header;
        }
        return found;
    }

    /// <summary>The ids of a raw header value made only of <c>&lt;id&gt;</c> tokens and white space, in header order; false for anything else.</summary>
    internal static bool TrySplit(ReadOnlySpan<byte> value, out List<string> ids)
    {
        ids = [];
        if (value.ContainsAny(NeedsParser)) return false;
        while (true)
        {
            value = value.TrimStart(" \t\r\n"u8);
            if (value.IsEmpty) return true;
            if (value[0] != '<') return false;
            var end = value.IndexOf((byte)'>');
            if (end < 0) return false;
            var id = value[1..end].Trim(" \t"u8);
            if (id.IsEmpty || id.ContainsAnyExcept(IdBytes) || id.IndexOf((byte)'@') <= 0) return false;
            ids.Add(Encoding.ASCII.GetString(id));
            value = value[(end + 1)..];
        }
    }
}
