using System.Buffers.Binary;
using System.Globalization;
using System.Net;
using System.Net.Sockets;

namespace EmailTracking.Server.Tracking.Classification;

/// <summary>
/// An immutable set of IPv4 and IPv6 ranges with O(log n) lookups. Built from CIDR lines ("17.0.0.0/8",
/// "2a02:26f7::/36"), bare addresses (meaning /32 or /128) or Apple's egress CSV ("cidr,country,region,city,"; only
/// the first column is read). Blank lines and '#' comments are ignored; malformed lines are skipped and counted.
/// Overlapping and adjacent ranges are merged internally, so lookups cost a binary search over sorted, disjoint
/// intervals whatever the input order.
/// </summary>
public sealed class IpRangeSet
{
    private readonly uint[] _v4Start;
    private readonly uint[] _v4End;
    private readonly UInt128[] _v6Start;
    private readonly UInt128[] _v6End;

    /// <summary>A set that contains nothing.</summary>
    public static IpRangeSet Empty { get; } = new([], [], 0, 0, 0);

    private IpRangeSet(List<(uint Start, uint End)> v4, List<(UInt128 Start, UInt128 End)> v6, int v4Count, int v6Count, int rejected)
    {
        (_v4Start, _v4End) = Merge(v4);
        (_v6Start, _v6End) = Merge(v6);
        IPv4Count = v4Count;
        IPv6Count = v6Count;
        Rejected = rejected;
    }

    /// <summary>Number of ranges read (each accepted line counts once, before merging).</summary>
    public int Count => IPv4Count + IPv6Count;

    /// <summary>Number of IPv4 ranges read.</summary>
    public int IPv4Count { get; }

    /// <summary>Number of IPv6 ranges read.</summary>
    public int IPv6Count { get; }

    /// <summary>Number of non-blank, non-comment lines that could not be parsed and were skipped.</summary>
    public int Rejected { get; }

    /// <summary>Parses CIDR lines; never throws on bad input (see <see cref="Rejected"/>).</summary>
    public static IpRangeSet Parse(IEnumerable<string> lines)
    {
        ArgumentNullException.ThrowIfNull(lines);
        var v4 = new List<(uint, uint)>();
        var v6 = new List<(UInt128, UInt128)>();
        var rejected = 0;
        foreach (var raw in lines)
        {
            if (raw is null)
                continue;
            var line = raw.AsSpan();
            var hash = line.IndexOf('#');
            if (hash >= 0)
                line = line[..hash];
            var comma = line.IndexOf(',');
            if (comma >= 0)
                line = line[..comma];
            line = line.Trim();
            if (line.IsEmpty)
                continue;

            if (!TryParseRange(line, out var family, out var start, out var end))
            {
                rejected++;
                continue;
            }
            if (family == AddressFamily.InterNetwork)
                v4.Add(((uint)start, (uint)end));
            else
                v6.Add((start, end));
        }
        return new IpRangeSet(v4, v6, v4.Count, v6.Count, rejected);
    }

    /// <summary>True when the address lies in one of the ranges. IPv4-mapped IPv6 addresses are tested as IPv4.</summary>
    public bool Contains(IPAddress ip)
    {
        ArgumentNullException.ThrowIfNull(ip);
        if (ip.IsIPv4MappedToIPv6)
            ip = ip.MapToIPv4();

        Span<byte> bytes = stackalloc byte[16];
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            if (_v4Start.Length == 0 || !ip.TryWriteBytes(bytes, out _))
                return false;
            return Find(_v4Start, _v4End, BinaryPrimitives.ReadUInt32BigEndian(bytes));
        }
        if (ip.AddressFamily == AddressFamily.InterNetworkV6)
        {
            if (_v6Start.Length == 0 || !ip.TryWriteBytes(bytes, out _))
                return false;
            return Find(_v6Start, _v6End, BinaryPrimitives.ReadUInt128BigEndian(bytes));
        }
        return false;
    }

    private static bool Find<T>(T[] starts, T[] ends, T value) where T : IComparable<T>
    {
        // Index of the last range starting at or before the value; the ranges are disjoint and sorted.
        var index = Array.BinarySearch(starts, value);
        if (index < 0)
            index = ~index - 1;
        return index >= 0 && ends[index].CompareTo(value) >= 0;
    }

    private static (T[] Starts, T[] Ends) Merge<T>(List<(T Start, T End)> ranges)
        where T : struct, IComparable<T>, IEquatable<T>, System.Numerics.IIncrementOperators<T>, System.Numerics.IMinMaxValue<T>
    {
        if (ranges.Count == 0)
            return ([], []);
        ranges.Sort((a, b) => a.Start.CompareTo(b.Start));
        var starts = new List<T>(ranges.Count);
        var ends = new List<T>(ranges.Count);
        var (curStart, curEnd) = ranges[0];
        for (var i = 1; i < ranges.Count; i++)
        {
            var (start, end) = ranges[i];
            // Overlapping or directly adjacent (curEnd + 1 == start): extend the current interval.
            var touches = start.CompareTo(curEnd) <= 0 || (!curEnd.Equals(T.MaxValue) && start.Equals(Next(curEnd)));
            if (touches)
            {
                if (end.CompareTo(curEnd) > 0)
                    curEnd = end;
                continue;
            }
            starts.Add(curStart);
            ends.Add(curEnd);
            (curStart, curEnd) = (start, end);
        }
        starts.Add(curStart);
        ends.Add(curEnd);
        return (starts.ToArray(), ends.ToArray());

        static T Next(T value) => ++value;
    }

    private static bool TryParseRange(ReadOnlySpan<char> text, out AddressFamily family, out UInt128 start, out UInt128 end)
    {
        family = AddressFamily.Unknown;
        start = end = UInt128.Zero;

        var slash = text.IndexOf('/');
        var addressText = slash >= 0 ? text[..slash] : text;
        var isV4 = addressText.IndexOf(':') < 0;
        // IPAddress.TryParse also accepts shorthand such as "10" or "10.1"; a range list should spell out four parts.
        if (isV4 && !IsDottedQuad(addressText))
            return false;
        if (!IPAddress.TryParse(addressText, out var address))
            return false;
        // A zone ("fe80::1%eth0") names a local interface, not a public range.
        if (address.AddressFamily == AddressFamily.InterNetworkV6 && address.ScopeId != 0)
            return false;

        var bits = address.AddressFamily == AddressFamily.InterNetwork ? 32 : 128;
        var prefix = bits;
        if (slash >= 0)
        {
            var prefixText = text[(slash + 1)..];
            if (prefixText.IsEmpty || prefixText.Length > 3 ||
                !int.TryParse(prefixText, NumberStyles.None, CultureInfo.InvariantCulture, out prefix) ||
                prefix > bits)
                return false;
        }

        Span<byte> bytes = stackalloc byte[16];
        if (!address.TryWriteBytes(bytes, out _))
            return false;
        UInt128 value = bits == 32 ? BinaryPrimitives.ReadUInt32BigEndian(bytes) : BinaryPrimitives.ReadUInt128BigEndian(bytes);
        UInt128 allOnes = bits == 32 ? uint.MaxValue : UInt128.MaxValue;
        // Host bits: the low (bits - prefix) bits. Shifting by the full width is not defined, so /0 is special.
        var hostMask = prefix == 0 ? allOnes : ((UInt128.One << (bits - prefix)) - UInt128.One);

        family = address.AddressFamily;
        start = value & ~hostMask & allOnes;
        end = start | hostMask;
        return true;
    }

    private static bool IsDottedQuad(ReadOnlySpan<char> text)
    {
        var dots = 0;
        foreach (var c in text)
        {
            if (c == '.')
                dots++;
            else if (!char.IsAsciiDigit(c))
                return false;
        }
        return dots == 3;
    }
}
