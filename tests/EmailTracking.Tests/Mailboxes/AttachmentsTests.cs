using EmailTracking.Server.Mailboxes;

namespace EmailTracking.Tests.Mailboxes;

public sealed class AttachmentsTests
{
    [Theory]
    [InlineData("C:\\Users\\me\\Desktop\\report.pdf", "report.pdf")]
    [InlineData("../../etc/passwd", "passwd")]
    [InlineData("a\u0000b\r\nc\u202Efdp.exe", "abcfdp.exe")]
    [InlineData("invoice.pdf.exe. . ", "invoice.pdf.exe")]
    [InlineData("...", "attachment-1")]
    [InlineData(null, "attachment-1")]
    [InlineData("Präsentation \"Q3\".pdf", "Präsentation _Q3_.pdf")]
    public void A_name_loses_its_path_control_characters_and_trailing_dots(string? given, string expected) =>
        Assert.Equal(expected, Attachments.SafeName(given, 0));

    [Fact]
    public void A_long_name_is_cut_keeping_its_extension() =>
        Assert.Equal(new string('a', 196) + ".pdf", Attachments.SafeName(new string('a', 300) + ".pdf", 0));

    [Theory]
    [InlineData("run.bat")]
    [InlineData("SCREEN.SCR")]
    [InlineData("script.js")]
    [InlineData("tool.msi")]
    public void Programs_and_scripts_are_refused_by_extension(string name) =>
        Assert.NotNull(Attachments.Sniff(name, "hello"u8.ToArray()).Danger);

    [Fact]
    public void The_type_comes_from_the_bytes_not_the_name()
    {
        Assert.Equal("application/pdf", Attachments.Sniff("notes.txt", TestFiles.Pdf(100)).MediaType);
        Assert.Equal("text/plain", Attachments.Sniff("image.png", "just text"u8.ToArray()).MediaType);
        Assert.Equal("application/octet-stream", Attachments.Sniff("data.pdf", [0x00, 0x01, 0x02, 0xFF]).MediaType);
        Assert.NotNull(Attachments.Sniff("readme.txt", "#!/bin/sh\nrm -rf ~\n"u8.ToArray()).Danger);
        Assert.NotNull(Attachments.Sniff("photo.jpg", "\u007fELF\u0002\u0001"u8.ToArray()).Danger);
    }
}
