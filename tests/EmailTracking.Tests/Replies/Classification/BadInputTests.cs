using System.Diagnostics;
using System.Text;
using EmailTracking.Server.Replies.Classification;
using EmailTracking.Tests.Classification;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// Whatever arrives, <see cref="InboundClassifier.ClassifyStream"/> answers and never throws: empty and binary input,
/// truncated files, broken MIME, header and part bombs, unknown charsets, a 50 MB message, a stream that fails.
/// </summary>
public sealed class BadInputTests(ITestOutputHelper output)
{
    private static readonly InboundClassifier Classifier = new();

    private InboundClassification Classify(byte[] bytes, string label)
    {
        var watch = Stopwatch.StartNew();
        var result = Classifier.ClassifyStream(new MemoryStream(bytes, writable: false));
        output.WriteLine($"{label}: {result.Kind} in {watch.ElapsedMilliseconds} ms — {result.Reason}");
        Assert.False(string.IsNullOrWhiteSpace(result.Reason));
        return result;
    }

    private static byte[] Ascii(string text) => Encoding.ASCII.GetBytes(text.Replace("\r\n", "\n").Replace("\n", "\r\n"));

    private const string ReplyHeaders = """
        From: Tom Buyer <tom@buyer.example>
        To: Jane Seller <jane@sellerco.example>
        Subject: Re: Pricing
        Date: Tue, 3 Mar 2026 10:00:00 +0000
        Message-ID: <reply-1@buyer.example>
        In-Reply-To: <et-7f3a9c2e@track.sellerco.example>
        MIME-Version: 1.0

        """;

    [Fact]
    public void Empty_input_is_unparseable()
    {
        var result = Classify([], "empty");
        Assert.Equal(InboundKind.Unparseable, result.Kind);
    }

    [Fact]
    public void Whitespace_and_text_without_headers_are_unparseable()
    {
        Assert.Equal(InboundKind.Unparseable, Classify(Ascii("\n\n\n   \n"), "blank lines").Kind);
        Assert.Equal(InboundKind.Unparseable, Classify(Ascii("this is not a message at all\n\njust text\n"), "no headers").Kind);
    }

    [Theory]
    [InlineData("")]
    // An owner in UTC+9: the end is moved on by nine hours, past the last instant there is.
    [InlineData("startDate=2026-03-01T15:00:00Z,")]
    public void An_icloud_vacation_header_ending_in_year_9999_gives_no_return_date(string start)
    {
        var result = Classify(Ascii($$"""
            From: Tom Buyer <tom@buyer.example>
            To: Jane Seller <jane@sellerco.example>
            Subject: Auto reply: Pricing
            Date: Tue, 3 Mar 2026 10:00:00 +0000
            Message-ID: <away-1@buyer.example>
            In-Reply-To: <et-7f3a9c2e@track.sellerco.example>
            Auto-Submitted: auto-replied
            X-Apple-Criteria: {kind=VACATION,{{start}}endDate=9999-12-31T23:59:59Z}
            X-Apple-Action: VACATION
            MIME-Version: 1.0
            Content-Type: text/plain

            I'm only sleeping.

            """), "iCloud vacation until 9999");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Null(result.ReturnDate);
    }

    [Fact]
    public void Json_and_yaml_files_are_not_messages_though_their_lines_look_like_header_fields()
    {
        var json = Classify(Ascii("{\"hello\": \"world\", \"n\": [1, 2, 3]}\n"), "json");
        Assert.Equal(InboundKind.Unparseable, json.Kind);
        Assert.Contains("not an email message", json.Reason, StringComparison.Ordinal);
        Assert.Equal(InboundKind.Unparseable, Classify(Ascii("name: test\nitems:\n  - a\n  - b\n"), "yaml").Kind);
        // One real field is enough: a bare "Subject:" note is a (poor) message.
        Assert.Equal(InboundKind.Human, Classify(Ascii("Subject: hello\n\nhi\n"), "subject only").Kind);
    }

    [Fact]
    public void Binary_garbage_is_unparseable()
    {
        var random = new Random(20260303);
        foreach (var size in (int[])[1, 17, 4096, 1 << 20])
        {
            var bytes = new byte[size];
            random.NextBytes(bytes);
            // A first byte that cannot start a header name, so the sample is garbage from its first byte on.
            bytes[0] = 0x00;
            Assert.Equal(InboundKind.Unparseable, Classify(bytes, $"garbage {size} bytes").Kind);
        }
    }

    [Fact]
    public void A_truncated_bounce_is_classified_at_every_cut()
    {
        var bytes = File.ReadAllBytes(SharedData.Path("sisimai", "bsd", "lhost-postfix-01.eml"));
        var full = Classify(bytes, "whole");
        Assert.Equal(InboundKind.Bounce, full.Kind);
        for (var cut = 1; cut < bytes.Length; cut += Math.Max(1, bytes.Length / 40))
        {
            var result = Classify(bytes[..cut], $"cut at {cut}/{bytes.Length}");
            Assert.NotNull(result.Reason);
        }
        // Cut inside the attached original: the report itself is whole, so the answer does not change.
        var late = Classify(bytes[..(bytes.Length * 9 / 10)], "cut at 90 %");
        Assert.Equal(InboundKind.Bounce, late.Kind);
        Assert.Equal(full.Recipients.Select(r => r.Address), late.Recipients.Select(r => r.Address));
    }

    [Fact]
    public void Broken_mime_structures_do_not_throw()
    {
        var samples = new Dictionary<string, string>
        {
            ["header line without a colon"] = ReplyHeaders.Replace("MIME-Version: 1.0", "MIME-Version: 1.0\nthis line is no header") + "Thanks, sounds good.\n",
            ["multipart without boundary"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: multipart/mixed\n") + "--x\nContent-Type: text/plain\n\nThanks, sounds good.\n--x--\n",
            ["boundary never closed"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: multipart/alternative; boundary=\"b1\"\n") + "--b1\nContent-Type: text/plain\n\nThanks, sounds good.\n--b1\nContent-Type: text/html\n\n<p>Thanks",
            ["invalid base64"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: text/plain; charset=utf-8\nContent-Transfer-Encoding: base64\n") + "!!!! not base64 @@@@ ====\n",
            ["unknown transfer encoding"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: text/plain\nContent-Transfer-Encoding: x-martian\n") + "Thanks, sounds good.\n",
            ["bad content type"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: ;;;/==; charset\n") + "Thanks, sounds good.\n",
            ["report without parts"] = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=zz\n") + "--zz--\n",
            ["delivery-status that is not fields"] = "From: MAILER-DAEMON@mx.example\nTo: jane@sellerco.example\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: multipart/report; report-type=delivery-status; boundary=zz\n\n--zz\nContent-Type: text/plain\n\nThe message could not be delivered.\n--zz\nContent-Type: message/delivery-status\n\n\u0001\u0002 garbage :: :: \nFinal-Recipient rfc822 nobody\n--zz--\n",
            ["encoded words gone wrong"] = ReplyHeaders.Replace("Subject: Re: Pricing", "Subject: =?utf-8?B?!!!?= =?x-unknown?Q?=FF=FE?= =?utf-8?Q?unterminated") + "Thanks.\n",
        };
        foreach (var (label, text) in samples)
        {
            var result = Classify(Ascii(text), label);
            Assert.NotEqual(InboundKind.Unparseable, result.Kind);
        }
    }

    [Fact]
    public void Deep_nesting_and_part_bombs_are_bounded()
    {
        var deep = new StringBuilder(ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"b0\"\n"));
        for (var i = 0; i < 2000; i++)
            deep.Append($"--b{i}\nContent-Type: multipart/mixed; boundary=\"b{i + 1}\"\n\n");
        deep.Append("--b2000\nContent-Type: text/plain\n\nThanks!\n");
        Assert.NotEqual(InboundKind.Unparseable, Classify(Ascii(deep.ToString()), "2,000 nested multiparts").Kind);

        var wide = new StringBuilder(ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: multipart/mixed; boundary=\"w\"\n"));
        wide.Append("--w\nContent-Type: text/plain\n\nThanks, see the attachments.\n");
        for (var i = 0; i < 20_000; i++)
            wide.Append("--w\nContent-Type: text/plain\n\nx\n");
        wide.Append("--w--\n");
        Assert.Equal(InboundKind.Human, Classify(Ascii(wide.ToString()), "20,000 parts").Kind);
    }

    [Fact]
    public void Html_full_of_unclosed_script_tags_stays_fast()
    {
        var html = new StringBuilder("<html><body><p>Thanks, sounds good.</p>");
        for (var i = 0; i < 20_000; i++)
            html.Append("<script><style x>");
        var text = ReplyHeaders.Replace("MIME-Version: 1.0\n", "MIME-Version: 1.0\nContent-Type: text/html; charset=utf-8\n") + html + "\n";
        var watch = Stopwatch.StartNew();
        var result = Classify(Ascii(text), "20,000 unclosed script tags");
        Assert.Equal(InboundKind.Human, result.Kind);
        // Not a speed test: a quadratic scan would take minutes here, a linear one milliseconds.
        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(30), watch.Elapsed.ToString());
    }

    [Fact]
    public void A_header_bomb_is_classified()
    {
        var text = new StringBuilder("From: Tom Buyer <tom@buyer.example>\nTo: jane@sellerco.example\nSubject: Re: Pricing\n");
        for (var i = 0; i < 100_000; i++)
            text.Append("X-Filler-").Append(i).Append(": value ").Append(i).Append('\n');
        text.Append("Auto-Submitted: auto-replied\n\nI am out of the office until 12 March.\n");
        var result = Classify(Ascii(text.ToString()), "100,000 headers");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
    }

    [Fact]
    public void Unknown_charsets_are_read_as_utf8()
    {
        var body = "Vielen Dank für Ihre Nachricht. Ich bin bis zum 2.4.2026 nicht im Büro und zurück am 3.4.2026. In dringenden Fällen wenden Sie sich bitte an vertrieb@kunde.example.";
        var headers = "From: k.schneider@kunde.example\nTo: jane@sellerco.example\nSubject: Re: Angebot\nDate: Mon, 16 Mar 2026 07:00:00 +0100\nMIME-Version: 1.0\nContent-Type: text/plain; charset=\"x-klingon-2000\"\nContent-Transfer-Encoding: 8bit\n\n";
        var bytes = Encoding.UTF8.GetBytes((headers + body + "\n").Replace("\n", "\r\n"));
        var result = Classify(bytes, "unknown charset");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(new DateOnly(2026, 4, 3), result.ReturnDate);

        var latin1Bounce = "From: MAILER-DAEMON@mx.example\nTo: jane@sellerco.example\nSubject: Undelivered Mail Returned to Sender\nMIME-Version: 1.0\nContent-Type: text/plain; charset=unknown-8bit\n\nThis is the mail system at host mx.example (K\u00e4se & S\u00f6hne).\n\n<nobody@kaese.example>: host mx said: 550 5.1.1 Empf\u00e4nger unbekannt (in reply to RCPT TO command)\n";
        var bounce = Classify(Encoding.Latin1.GetBytes(latin1Bounce.Replace("\n", "\r\n")), "latin-1 bytes under an unknown charset");
        Assert.Equal(InboundKind.Bounce, bounce.Kind);
        Assert.Equal("5.1.1", bounce.Status);
    }

    [Fact]
    public void A_50_MB_message_is_classified_from_a_file()
    {
        var path = Path.Combine(Path.GetTempPath(), $"et-classify-50mb-{Guid.NewGuid():N}.eml");
        try
        {
            using (var file = File.Create(path))
            using (var writer = new StreamWriter(file, new UTF8Encoding(false)) { NewLine = "\r\n" })
            {
                writer.Write(ReplyHeaders.Replace("\n", "\r\n").Replace("MIME-Version: 1.0\r\n", "MIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary=\"big\"\r\n"));
                writer.WriteLine("--big");
                writer.WriteLine("Content-Type: text/plain; charset=utf-8");
                writer.WriteLine();
                writer.WriteLine("Thanks! I'll be out of office next week, the signed contract is attached.");
                writer.WriteLine();
                writer.WriteLine("On Tue, Mar 3, 2026 at 10:12 AM Jane Seller <jane@sellerco.example> wrote:");
                writer.WriteLine("> Here is the contract.");
                writer.WriteLine("--big");
                writer.WriteLine("Content-Type: application/pdf; name=contract.pdf");
                writer.WriteLine("Content-Transfer-Encoding: base64");
                writer.WriteLine("Content-Disposition: attachment; filename=contract.pdf");
                writer.WriteLine();
                var line = new string('Q', 76);
                for (var written = 0L; written < 50L * 1024 * 1024; written += 78)
                    writer.WriteLine(line);
                writer.WriteLine("--big--");
            }
            output.WriteLine($"file size {new FileInfo(path).Length / (1024 * 1024)} MB");
            var watch = Stopwatch.StartNew();
            InboundClassification result;
            using (var stream = File.OpenRead(path))
                result = Classifier.ClassifyStream(stream);
            output.WriteLine($"50 MB attachment: {result.Kind} in {watch.ElapsedMilliseconds} ms — {result.Reason}");
            Assert.Equal(InboundKind.Human, result.Kind);

            // One 50 MB text part: only the first InboundClassifierOptions.MaxBodyChars characters are looked at.
            using (var file = File.Create(path))
            using (var writer = new StreamWriter(file, new UTF8Encoding(false)) { NewLine = "\r\n" })
            {
                writer.Write("From: postmaster@mx.example\r\nTo: jane@sellerco.example\r\nSubject: Undelivered Mail Returned to Sender\r\nMIME-Version: 1.0\r\nContent-Type: text/plain\r\n\r\n");
                writer.WriteLine("This is the mail system at host mx.example.");
                writer.WriteLine();
                writer.WriteLine("<gone@example.org>: host mx.example.org said: 550 5.1.1 <gone@example.org>: Recipient address rejected: User unknown (in reply to RCPT TO command)");
                writer.WriteLine();
                var filler = new string('z', 100);
                for (var written = 0L; written < 50L * 1024 * 1024; written += 102)
                    writer.WriteLine(filler);
            }
            watch.Restart();
            using (var stream = File.OpenRead(path))
                result = Classifier.ClassifyStream(stream);
            output.WriteLine($"50 MB text body: {result.Kind} in {watch.ElapsedMilliseconds} ms — {result.Reason}");
            Assert.Equal(InboundKind.Bounce, result.Kind);
            Assert.Equal("gone@example.org", Assert.Single(result.Recipients).Address);
        }
        finally
        {
            File.Delete(path);
        }
    }

    [Fact]
    public void A_stream_that_fails_midway_is_unparseable_not_an_exception()
    {
        var bytes = File.ReadAllBytes(SharedData.Path("sisimai", "bsd", "lhost-postfix-01.eml"));
        var result = Classifier.ClassifyStream(new FailingStream(bytes, failAfter: bytes.Length / 3));
        output.WriteLine($"failing stream: {result.Kind} — {result.Reason}");
        Assert.Equal(InboundKind.Unparseable, result.Kind);
        Assert.Contains("disk went away", result.Reason);
    }

    /// <summary>A read-only, non-seekable stream that throws an <see cref="IOException"/> after some bytes.</summary>
    private sealed class FailingStream(byte[] data, int failAfter) : Stream
    {
        private int position;

        public override bool CanRead => true;
        public override bool CanSeek => false;
        public override bool CanWrite => false;
        public override long Length => throw new NotSupportedException();
        public override long Position { get => position; set => throw new NotSupportedException(); }

        public override int Read(byte[] buffer, int offset, int count)
        {
            if (position >= failAfter)
                throw new IOException("the disk went away");
            var n = Math.Min(count, Math.Min(data.Length, failAfter) - position);
            Array.Copy(data, position, buffer, offset, n);
            position += n;
            return n;
        }

        public override void Flush() { }
        public override long Seek(long offset, SeekOrigin origin) => throw new NotSupportedException();
        public override void SetLength(long value) => throw new NotSupportedException();
        public override void Write(byte[] buffer, int offset, int count) => throw new NotSupportedException();
    }
}
