using System.Net;
using System.Net.Sockets;

namespace EmailTracking.Server.Web;

/// <summary>
/// Whether an address is on the public internet: not loopback, private, link-local, shared (100.64/10), benchmark,
/// multicast, unspecified or broadcast (IPv4-mapped IPv6 read as IPv4; other IPv6 only global unicast, with the IPv4
/// address inside NAT64 and 6to4 forms checked). The server sends secrets and people's data
/// only to public addresses unless told otherwise (webhooks, the Salesforce instance).
/// </summary>
public static class PublicAddress
{
    /// <summary>Resolves a host name to its addresses (tests pass their own).</summary>
    public delegate Task<IPAddress[]> Resolver(string host, CancellationToken ct);

    /// <summary>The system's resolver.</summary>
    public static Task<IPAddress[]> Resolve(string host, CancellationToken ct) => Dns.GetHostAddressesAsync(host, ct);

    /// <summary>
    /// The connection step of an HTTP client that may only reach some addresses (<see cref="SocketsHttpHandler.ConnectCallback"/>):
    /// resolves the host, keeps the addresses <paramref name="allowed"/> says yes to, and connects to one of them. A name
    /// that resolves to a refused address (or later resolves differently than when its URL was checked) is refused here,
    /// at the address actually connected to.
    /// </summary>
    public static async ValueTask<Stream> ConnectAsync(SocketsHttpConnectionContext context, Func<IPAddress, bool> allowed, Resolver resolve,
        CancellationToken ct)
    {
        var host = context.DnsEndPoint.Host;
        var addresses = IPAddress.TryParse(host, out var literal) ? [literal] : await resolve(host, ct);
        var usable = addresses.Where(allowed).ToArray();
        if (usable.Length == 0) throw new HttpRequestException($"{host} resolves to no public address ({string.Join(", ", addresses.Select(a => a.ToString()))}); refused.");
        var socket = new Socket(SocketType.Stream, ProtocolType.Tcp) { NoDelay = true };
        try
        {
            await socket.ConnectAsync(usable, context.DnsEndPoint.Port, ct);
            return new NetworkStream(socket, ownsSocket: true);
        }
        catch
        {
            socket.Dispose();
            throw;
        }
    }

    public static bool IsPublic(IPAddress ip)
    {
        if (ip.IsIPv4MappedToIPv6) ip = ip.MapToIPv4();
        if (IPAddress.IsLoopback(ip) || ip.Equals(IPAddress.Any) || ip.Equals(IPAddress.IPv6Any) || ip.Equals(IPAddress.Broadcast)) return false;
        if (ip.AddressFamily == AddressFamily.InterNetwork)
        {
            var b = ip.GetAddressBytes();
            return !(b[0] == 10 || b[0] == 0 || b[0] == 127 || (b[0] == 172 && b[1] >= 16 && b[1] <= 31) || (b[0] == 192 && b[1] == 168)
                     || (b[0] == 169 && b[1] == 254) || (b[0] == 100 && b[1] >= 64 && b[1] <= 127) || b[0] >= 224
                     || (b[0] == 192 && b[1] == 0 && b[2] == 0) || (b[0] == 198 && (b[1] == 18 || b[1] == 19)));
        }
        return IsPublicV6(ip.GetAddressBytes());
    }

    /// <summary>
    /// An IPv6 address is public when it is global unicast (2000::/3) and, where it carries an IPv4 address to reach
    /// (NAT64's 64:ff9b::/96, 6to4's 2002::/16), that IPv4 address is public too. Everything else is refused: the
    /// loopback, unspecified, link-local, unique-local and multicast ranges, and the forms that smuggle an IPv4
    /// address past a check of IPv6 ones (IPv4-compatible ::a.b.c.d, IPv4-translated ::ffff:0:a.b.c.d, local-use
    /// NAT64 64:ff9b:1::/48, Teredo 2001::/32).
    /// </summary>
    static bool IsPublicV6(byte[] b)
    {
        // NAT64, well-known prefix: 64:ff9b::a.b.c.d reaches a.b.c.d.
        if (b[0] == 0x00 && b[1] == 0x64 && b[2] == 0xff && b[3] == 0x9b && b.AsSpan(4, 8).IndexOfAnyExcept((byte)0) < 0)
        {
            return IsPublic(new IPAddress(b.AsSpan(12, 4)));
        }
        if ((b[0] & 0xe0) != 0x20) return false; // not 2000::/3
        if (b[0] == 0x20 && b[1] == 0x01 && b[2] == 0x00 && b[3] == 0x00) return false; // Teredo
        if (b[0] == 0x20 && b[1] == 0x02) return IsPublic(new IPAddress(b.AsSpan(2, 4))); // 6to4: 2002:a.b.c.d::/48
        return true;
    }
}
