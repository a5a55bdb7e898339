using EmailTracking.Server.Messages;

namespace EmailTracking.Tests.Replies;

/// <summary>The shape of our Message-IDs, which decides which ids a reply names are looked for among ours.</summary>
public sealed class OurMessageIdsTests
{
    [Fact]
    public void Every_id_we_make_has_our_shape_whatever_the_domain()
    {
        foreach (var domain in new[] { "t.sender.test", "mail.example.com", "x" })
        {
            for (var i = 0; i < 200; i++) Assert.True(OurMessageIds.MayBeOurs(OurMessageIds.New(domain)));
        }
    }

    [Theory]
    [InlineData("CAOd=kx7Q9+Yb3dN2PqL1@mail.gmail.com")] // Gmail
    [InlineData("DM6PR12MB4321A1B2C3D4E5F6A7B8C9D0E1F2A@DM6PR12MB4321.namprd12.prod.outlook.com")] // Outlook
    [InlineData("6F1C2A3B-9D8E-4F70-8A1B-2C3D4E5F6A7B@customer.test")] // Apple Mail
    [InlineData("6f1c2a3b-9d8e-4f70-8a1b-2c3d4e5f6a7b@customer.test")] // Thunderbird
    [InlineData("20261128101500.1A2B3C4D5E@mx.customer.test")] // an MTA
    [InlineData("6F1C2A3B9D8E4F708A1B2C3D4E5F6A7B@customer.test")] // upper-case hexadecimal: not what we write
    [InlineData("6f1c2a3b9d8e4f708a1b2c3d4e5f6a7@t.sender.test")] // 31 digits
    [InlineData("6f1c2a3b9d8e4f708a1b2c3d4e5f6a7b0@t.sender.test")] // 33 digits
    [InlineData("6f1c2a3b9d8e4f708a1b2c3d4e5f6a7b@")] // no domain
    [InlineData("6f1c2a3b9d8e4f708a1b2c3d4e5f6a7g@t.sender.test")] // not hexadecimal
    [InlineData("")]
    public void Ids_of_other_shapes_are_not_ours(string id) => Assert.False(OurMessageIds.MayBeOurs(id));
}
