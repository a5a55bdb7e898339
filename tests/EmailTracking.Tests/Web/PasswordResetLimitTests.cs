using System.Net;
using EmailTracking.Server.Accounts;
using Microsoft.Extensions.Logging.Abstractions;
using Microsoft.Extensions.Time.Testing;

namespace EmailTracking.Tests.Web;

/// <summary>The reset request limits' own memory: bounded however many addresses and clients a flood brings.</summary>
public sealed class PasswordResetLimitTests
{
    [Fact]
    public void A_flood_of_new_addresses_from_new_clients_is_refused_once_the_limits_count_their_most_and_eases_a_day_later()
    {
        var clock = new FakeTimeProvider(new DateTimeOffset(2026, 11, 30, 12, 0, 0, TimeSpan.Zero));
        var limits = new PasswordResetLimits(clock, NullLogger<PasswordResetLimits>.Instance) { MaxTracked = 10 };
        static IPAddress Client(int i) => IPAddress.Parse($"2001:db8:{i:x}::1");

        // Each request from a new client for a new address counts two more: five fit in ten.
        for (var i = 0; i < 5; i++) Assert.Null(limits.Take($"person{i}@example.com", Client(i)));
        Assert.Equal(PasswordResetLimits.FloodWait, limits.Take("person5@example.com", Client(5)));
        // What is counted already is still answered by its own limits: a second request for the first address.
        Assert.Null(limits.Take("person0@example.com", Client(0)));

        // A day later the old counts are dropped, and new addresses are taken again.
        clock.Advance(TimeSpan.FromDays(1) + TimeSpan.FromMinutes(1));
        Assert.Null(limits.Take("person5@example.com", Client(5)));
    }
}
