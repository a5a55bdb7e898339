using System.Buffers;
using MimeKit;

namespace EmailTracking.Server.Replies;

/// <summary>
/// The Message-IDs a References header names, newest first. MimeKit's <see cref="MimeMessage.References"/> parses
/// every id of the header as an RFC 5322 msg-id, about a microsecond each: for a batch of replies deep in threads that
/// was a fifth of the time spent matching them. A header that is nothing but ids in angle brackets separated by white
/// space, which is what mail clients write, is split at its brackets instead; anything else (comments, quoted
/// strings, ids without brackets, more than one References header) goes to MimeKit's parser. For the ids it takes,
/// the split gives what MimeKit gives (a test compares them over real and generated headers).
/// </summary>
internal static class ReferenceIds
{
    /// <summary>Characters that only comments, quoted strings and escapes bring: MimeKit's parser decides then.</summary>
    static readonly SearchValues<char> NeedsParser = SearchValues.Create("\"()\\");

    /// <summary>At most <paramref name="max"/> ids, the newest (the last in the header) first.</summary>
    public static List<string> NewestFirst(MimeMessage message, int max)
    {
        string? value = null;
        var headers = 0;
        foreach (var header in message.Headers)
        {
            if (header.Id != HeaderId.References) continue;
            value = header.Value;
            headers++;
        }
        if (headers == 0) return [];
        if (headers == 1 && TrySplit(value!, out var ids))
        {
            ids.Reverse();
            if (ids.Count > max) ids.RemoveRange(max, ids.Count - max);
            return ids;
        }
        return [.. message.References.Reverse().Take(max)];
    }

    /// <summary>The ids of a header made only of <c>&lt;id&gt;</c> tokens and white space, in header order; false for anything else.</summary>
    internal static bool TrySplit(string value, out List<string> ids)
    {
        ids = [];
        var text = value.AsSpan();
        if (text.ContainsAny(NeedsParser)) return false;
        while (true)
        {
            text = text.TrimStart(" \t\r\n");
            if (text.IsEmpty) return true;
            if (text[0] != '<') return false;
            var end = text.IndexOf('>');
            if (end < 0) return false;
            var id = text[1..end].Trim(" \t\r\n");
            if (id.IsEmpty || id.ContainsAny('<', ' ') || id.ContainsAny('\t', '\r', '\n') || id.IndexOf('@') <= 0) return false;
            ids.Add(id.ToString());
            text = text[(end + 1)..];
        }
    }
}
