using System.Net;
using System.Net.Sockets;

namespace EmailTracking.Server.Web;

/// <summary>
/// Whether an address is on the public internet: not loopback, private, link-local, shared (100.64/10), benchmark,
/// multicast, unspecified or broadcast (IPv4-mapped IPv6 read as IPv4). The server sends secrets and people's data
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
        if (ip.IsIPv6LinkLocal || ip.IsIPv6SiteLocal || ip.IsIPv6Multicast || ip.IsIPv6UniqueLocal) return false;
        return true;
    }
}
