using System.Buffers;

namespace EmailTracking.Server.Messages;

/// <summary>
/// The Message-IDs we give our copies: 32 lowercase hexadecimal digits (a random Guid), <c>@</c>, the configured domain.
/// This is the only place that makes them, so every stored <c>Copies.MessageIdHeader</c> has that shape, whatever the
/// domain was when it was made. Inbound mail names many ids that are not ours (a thread's earlier messages, the ids of
/// the recipients' own clients); <see cref="MayBeOurs"/> lets the lookup leave those out of the probe of the big index
/// of our ids, which holds every copy ever sent. The ids a provider kept instead of ours can have any shape and are
/// looked up separately.
/// </summary>
public static class OurMessageIds
{
    const int LocalLength = 32;

    static readonly SearchValues<char> LowerHex = SearchValues.Create("0123456789abcdef");

    public static string New(string domain) => $"{Guid.NewGuid():N}@{domain}";

    /// <summary>Whether <paramref name="id"/> (without angle brackets) has the shape <see cref="New"/> gives.</summary>
    public static bool MayBeOurs(string id) =>
        id.Length > LocalLength + 1 && id[LocalLength] == '@' && !id.AsSpan(0, LocalLength).ContainsAnyExcept(LowerHex);
}
