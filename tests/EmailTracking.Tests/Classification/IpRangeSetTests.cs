using System.Net;
using EmailTracking.Server.Tracking.Classification;

namespace EmailTracking.Tests.Classification;

public sealed class IpRangeSetTests
{
    private static readonly Lazy<IpRangeSet> AppleV4 = new(() => IpRangeSet.Parse(File.ReadLines(SharedData.Path("apple-relay", "ipv4-ranges.txt"))));
    private static readonly Lazy<IpRangeSet> AppleV6 = new(() => IpRangeSet.Parse(File.ReadLines(SharedData.Path("apple-relay", "ipv6-ranges.txt"))));

    private static IPAddress Ip(string text) => IPAddress.Parse(text);

    [Fact]
    public void Apple_shared_files_load_completely()
    {
        Assert.True(AppleV4.Value.IPv4Count > 3000, $"only {AppleV4.Value.IPv4Count} IPv4 ranges");
        Assert.Equal(0, AppleV4.Value.IPv6Count);
        Assert.Equal(0, AppleV4.Value.Rejected);

        Assert.True(AppleV6.Value.IPv6Count > 10000, $"only {AppleV6.Value.IPv6Count} IPv6 ranges");
        Assert.Equal(0, AppleV6.Value.Rejected);
    }

    [Theory]
    [InlineData("104.28.28.0", true)]      // first address of the first range (104.28.28.0/26)
    [InlineData("104.28.28.63", true)]     // last address of that range
    [InlineData("104.28.28.76", true)]     // a bare address line
    [InlineData("104.28.28.77", false)]    // the gap between 104.28.28.76 and 104.28.28.79
    [InlineData("140.248.0.0", true)]      // first address of 140.248.0.0/23
    [InlineData("140.248.1.255", true)]    // last address of 140.248.0.0/23
    [InlineData("140.247.255.255", false)] // just before it
    [InlineData("140.248.2.0", false)]     // just after it
    [InlineData("8.8.8.8", false)]
    [InlineData("17.0.0.1", false)]        // Apple's own network, but not a relay egress address
    public void Known_IPv4_addresses(string address, bool expected)
    {
        Assert.Equal(expected, AppleV4.Value.Contains(Ip(address)));
    }

    [Theory]
    [InlineData("2606:54c0::", true)]                                  // first address of 2606:54c0::/35
    [InlineData("2606:54c0:1fff:ffff:ffff:ffff:ffff:ffff", true)]      // its last address
    [InlineData("2606:54bf:ffff:ffff:ffff:ffff:ffff:ffff", false)]     // just before it
    [InlineData("2001:4860:4860::8888", false)]
    public void Known_IPv6_addresses(string address, bool expected)
    {
        Assert.Equal(expected, AppleV6.Value.Contains(Ip(address)));
    }

    [Fact]
    public void Every_line_of_the_Apple_files_is_contained_at_both_ends()
    {
        foreach (var (file, set) in new[] { ("ipv4-ranges.txt", AppleV4.Value), ("ipv6-ranges.txt", AppleV6.Value) })
        {
            foreach (var line in File.ReadLines(SharedData.Path("apple-relay", file)).Where(l => l.Trim().Length > 0))
            {
                var network = line.Contains('/') ? IPNetwork.Parse(line.Trim()) : new IPNetwork(Ip(line.Trim()), line.Contains(':') ? 128 : 32);
                Assert.True(set.Contains(network.BaseAddress), $"{line}: first address missing");
                Assert.True(set.Contains(LastAddress(network)), $"{line}: last address missing");
            }
        }
    }

    [Fact]
    public void IPv4_mapped_IPv6_addresses_are_tested_as_IPv4()
    {
        Assert.True(AppleV4.Value.Contains(Ip("::ffff:104.28.28.1")));
        Assert.True(AppleV4.Value.Contains(Ip("104.28.28.1").MapToIPv6()));
        Assert.False(AppleV4.Value.Contains(Ip("::ffff:8.8.8.8")));

        var onlyV6 = IpRangeSet.Parse(["::ffff:0:0/96"]);
        Assert.Equal(1, onlyV6.IPv6Count);
        // A mapped address is treated as the IPv4 address it carries, so an IPv6 range over ::ffff:0:0/96 does not match it.
        Assert.False(onlyV6.Contains(Ip("::ffff:1.2.3.4")));
    }

    [Fact]
    public void Malformed_lines_are_skipped_and_counted()
    {
        var set = IpRangeSet.Parse(
        [
            "# Apple egress ranges",
            "",
            "   ",
            "10.0.0.0/8",
            "not an address",
            "10.0.0.0/33",
            "300.1.1.1",
            "10.1",
            "1.2.3.4/",
            "/24",
            "1.2.3.4/abc",
            "1.2.3.4/-1",
            "2001:db8::/129",
            "fe80::1%eth0",
            "2001:db8::/32 # documentation prefix",
        ]);

        Assert.Equal(10, set.Rejected);
        Assert.Equal(2, set.Count);
        Assert.True(set.Contains(Ip("10.200.1.1")));
        Assert.True(set.Contains(Ip("2001:db8:ffff::1")));
    }

    [Fact]
    public void Apple_csv_lines_use_the_first_column()
    {
        var set = IpRangeSet.Parse(
        [
            "172.224.226.0/27,GB,GB-EN,London,",
            "172.224.226.32/27,GB,GB-EN,London,",
            "2a02:26f7:b3c0:4000::/64,GB,GB-EN,London,",
            "104.28.0.64,US,US-CA,Los Angeles,",
            "garbage,US,US-CA,Los Angeles,",
        ]);

        Assert.Equal(3, set.IPv4Count);
        Assert.Equal(1, set.IPv6Count);
        Assert.Equal(1, set.Rejected);
        Assert.True(set.Contains(Ip("172.224.226.0")));
        Assert.True(set.Contains(Ip("172.224.226.63")));
        Assert.False(set.Contains(Ip("172.224.226.64")));
        Assert.True(set.Contains(Ip("2a02:26f7:b3c0:4000:1:2:3:4")));
        Assert.False(set.Contains(Ip("2a02:26f7:b3c0:4001::")));
        Assert.True(set.Contains(Ip("104.28.0.64")));
        Assert.False(set.Contains(Ip("104.28.0.65")));
    }

    [Fact]
    public void Bare_addresses_are_single_hosts()
    {
        var set = IpRangeSet.Parse(["192.0.2.7", "2001:db8::7"]);
        Assert.True(set.Contains(Ip("192.0.2.7")));
        Assert.False(set.Contains(Ip("192.0.2.6")));
        Assert.False(set.Contains(Ip("192.0.2.8")));
        Assert.True(set.Contains(Ip("2001:db8::7")));
        Assert.False(set.Contains(Ip("2001:db8::8")));
    }

    [Fact]
    public void Unsorted_overlapping_and_adjacent_ranges_merge()
    {
        var set = IpRangeSet.Parse(["10.0.2.0/24", "10.0.0.0/23", "10.0.1.128/25", "10.0.4.0/24", "0.0.0.0/32"]);
        Assert.Equal(5, set.Count);
        Assert.True(set.Contains(Ip("10.0.0.0")));
        Assert.True(set.Contains(Ip("10.0.2.255")));
        Assert.False(set.Contains(Ip("10.0.3.0")));
        Assert.True(set.Contains(Ip("10.0.4.128")));
        Assert.True(set.Contains(Ip("0.0.0.0")));
        Assert.False(set.Contains(Ip("0.0.0.1")));
    }

    [Fact]
    public void Host_bits_are_masked_and_whole_space_ranges_work()
    {
        var set = IpRangeSet.Parse(["192.168.7.9/16"]);
        Assert.True(set.Contains(Ip("192.168.0.0")));
        Assert.True(set.Contains(Ip("192.168.255.255")));
        Assert.False(set.Contains(Ip("192.169.0.0")));

        var everything = IpRangeSet.Parse(["0.0.0.0/0", "::/0"]);
        Assert.True(everything.Contains(Ip("255.255.255.255")));
        Assert.True(everything.Contains(Ip("ffff:ffff:ffff:ffff:ffff:ffff:ffff:ffff")));
        Assert.True(everything.Contains(Ip("::")));
    }

    [Fact]
    public void Empty_set_contains_nothing()
    {
        Assert.Equal(0, IpRangeSet.Empty.Count);
        Assert.False(IpRangeSet.Empty.Contains(Ip("104.28.28.1")));
        Assert.False(IpRangeSet.Empty.Contains(Ip("2606:54c0::1")));
    }

    /// <summary>
    /// Every answer on the full Apple list is the one a plain scan of all its ranges gives, for addresses at the edges
    /// of ranges, just outside them and at random. (How fast lookups are is bench/pixel's business: the verdict runs on
    /// every pixel hit.)
    /// </summary>
    [Fact]
    public void Lookups_on_the_full_Apple_list_agree_with_a_scan_of_every_range()
    {
        var lines = File.ReadLines(SharedData.Path("apple-relay", "ipv4-ranges.txt"))
            .Concat(File.ReadLines(SharedData.Path("apple-relay", "ipv6-ranges.txt"))).ToList();
        var set = IpRangeSet.Parse(lines);
        var networks = lines.Select(l => l.Trim()).Where(l => l.Length > 0 && !l.StartsWith('#')).Select(l => IPNetwork.Parse(l.Contains('/') ? l : l + (l.Contains(':') ? "/128" : "/32"))).ToList();
        Assert.Equal(networks.Count, set.Count);

        var random = new Random(7);
        var probes = new List<IPAddress>();
        foreach (var network in networks.OrderBy(_ => random.Next()).Take(400))
        {
            var last = LastAddress(network);
            probes.Add(network.BaseAddress);
            probes.Add(last);
            probes.Add(Step(network.BaseAddress, -1));
            probes.Add(Step(last, +1));
        }
        for (var i = 0; i < 1000; i++)
        {
            var bytes = new byte[i % 2 == 0 ? 4 : 16];
            random.NextBytes(bytes);
            probes.Add(new IPAddress(bytes));
            // Near Apple's space too, where a random address of the whole range would seldom fall.
            var near = networks[random.Next(networks.Count)].BaseAddress.GetAddressBytes();
            near[^1] = (byte)random.Next(256);
            near[^2] ^= (byte)random.Next(4);
            probes.Add(new IPAddress(near));
        }
        var wrong = probes.Where(ip => set.Contains(ip) != networks.Any(n => n.Contains(ip))).Take(5).ToList();
        Assert.True(wrong.Count == 0, "answers that differ from a scan: " + string.Join(", ", wrong));
        Assert.Contains(probes, set.Contains);
        Assert.Contains(probes, ip => !set.Contains(ip));
    }

    /// <summary>The address one after (or before) this one, wrapping around at the ends of the address space.</summary>
    private static IPAddress Step(IPAddress address, int by)
    {
        var bytes = address.GetAddressBytes();
        for (var i = bytes.Length - 1; i >= 0; i--)
        {
            var v = bytes[i] + by;
            bytes[i] = (byte)v;
            if (v is >= 0 and <= 255) break;
        }
        return new IPAddress(bytes);
    }

    private static IPAddress LastAddress(IPNetwork network)
    {
        var bytes = network.BaseAddress.GetAddressBytes();
        var hostBits = bytes.Length * 8 - network.PrefixLength;
        for (var i = bytes.Length - 1; i >= 0 && hostBits > 0; i--)
        {
            var take = Math.Min(8, hostBits);
            bytes[i] |= (byte)((1 << take) - 1);
            hostBits -= take;
        }
        return new IPAddress(bytes);
    }
}
