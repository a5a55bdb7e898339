using System.Text;
using EmailTracking.Server.Replies;
using EmailTracking.Tests.Classification;
using MimeKit;

namespace EmailTracking.Tests.Replies;

/// <summary>The References ids a reply is matched by: split at their brackets where that is safe, otherwise MimeKit's parse.</summary>
public sealed class ReferenceIdsTests
{
    static MimeMessage WithReferences(params string[] values)
    {
        var text = new StringBuilder("From: a@x.test\r\nTo: b@y.test\r\nSubject: Re: x\r\n");
        foreach (var v in values) text.Append("References: ").Append(v).Append("\r\n");
        text.Append("\r\nhi\r\n");
        return MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes(text.ToString())));
    }

    static byte[] Raw(MimeMessage m) => m.Headers.First(h => h.Id == HeaderId.References).RawValue;

    /// <summary>What MimeKit makes of the header, newest first: the answer the split must give.</summary>
    static List<string> ByMimeKit(MimeMessage m, int max) => [.. m.References.Reverse().Take(max)];

    [Theory]
    [InlineData("<CAOd=kx7Q9+Yb3dN2PqL1@mail.gmail.com>")]
    [InlineData("<a1@x.test> <b2@y.test>\t<c3@z.test>")]
    [InlineData("<DM6PR12MB4321A1B2C3D4E5F6A7B8C9D0E1F2A@DM6PR12MB4321.namprd12.prod.outlook.com>\r\n <6F1C2A3B-9D8E-4F70-8A1B-2C3D4E5F6A7B@customer.test>\r\n\t<20261128101500.1A2B3C4D5E@mx.customer.test>")]
    [InlineData("<6f1c2a3b9d8e4f708a1b2c3d4e5f6a7b@t.sender.test><0a1b@x.test>")]
    [InlineData("< spaced@x.test >")]
    [InlineData("<a@[192.0.2.1]> <b+c=d/e@x.test>")]
    public void Bracketed_ids_are_split_as_mimekit_parses_them(string value)
    {
        var m = WithReferences(value);
        Assert.True(ReferenceIds.TrySplit(Raw(m), out _));
        Assert.Equal(ByMimeKit(m, 100), ReferenceIds.NewestFirst(m, 100));
        Assert.Equal(ByMimeKit(m, 2), ReferenceIds.NewestFirst(m, 2));
    }

    [Theory]
    [InlineData("<a@x.test> (a comment <b@y.test>) <c@z.test>")]
    [InlineData("<\"quoted local\"@x.test>")]
    [InlineData("no-brackets@x.test <b@y.test>")]
    [InlineData("<a@x.test")]
    [InlineData("<no-at-sign> <b@y.test>")]
    [InlineData("<a@x.test><<b@y.test>>")]
    [InlineData("")]
    public void Anything_else_goes_to_mimekit(string value)
    {
        var m = WithReferences(value);
        Assert.False(ReferenceIds.TrySplit(Raw(m), out _) && value.Length > 0);
        Assert.Equal(ByMimeKit(m, 100), ReferenceIds.NewestFirst(m, 100));
    }

    [Theory]
    [InlineData("<a@x.test>")]
    [InlineData("<a@x.test> <b@y.test>")]
    [InlineData(" <CAOd=kx7Q9+Yb3dN2PqL1@mail.gmail.com>\r\n")]
    [InlineData("Your message of Mon, 2 Nov 2026 <a@x.test>")]
    [InlineData("(comment) <a@x.test>")]
    [InlineData("<a@x.test> (comment)")]
    [InlineData("a@x.test")]
    [InlineData("<\"quoted\"@x.test>")]
    [InlineData("")]
    public void In_reply_to_is_the_id_mimekit_finds(string value)
    {
        var m = MimeMessage.Load(new MemoryStream(Encoding.UTF8.GetBytes($"From: a@x.test\r\nIn-Reply-To: {value}\r\n\r\nhi\r\n")));
        Assert.Equal(m.InReplyTo, ReferenceIds.InReplyTo(m));
    }

    [Fact]
    public void Two_references_headers_get_mimekits_answer_and_none_gives_none()
    {
        var two = WithReferences("<a@x.test>", "<b@y.test>");
        Assert.Equal(ByMimeKit(two, 100), ReferenceIds.NewestFirst(two, 100));
        Assert.Empty(ReferenceIds.NewestFirst(MimeMessage.Load(new MemoryStream("From: a@x.test\r\n\r\nhi\r\n"u8.ToArray())), 100));
    }

    [Fact]
    public void Every_references_header_of_the_real_corpus_gets_what_mimekit_gives()
    {
        var files = Directory.GetFiles(SharedData.Path("sisimai"), "*.eml", SearchOption.AllDirectories)
            .Concat(Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures"), "*.eml", SearchOption.AllDirectories));
        var split = 0;
        foreach (var file in files)
        {
            using var m = MimeMessage.Load(file);
            if (m.Headers.Contains(HeaderId.References) && ReferenceIds.TrySplit(Raw(m), out _)) split++;
            Assert.True(m.InReplyTo == ReferenceIds.InReplyTo(m), file);
            Assert.True(ByMimeKit(m, 100).SequenceEqual(ReferenceIds.NewestFirst(m, 100)), file);
        }
        Assert.True(split > 50, $"only {split} headers were split");
    }
}
