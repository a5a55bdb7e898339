using System.Text;
using EmailTracking.Server.Mailboxes;

namespace EmailTracking.Tests.Mailboxes;

/// <summary>
/// The response code of a refused IMAP command, read from the tail of what the server sent (MailKit does not give it):
/// <c>[UNAVAILABLE]</c> and its kind mean "not now", no code means "never", and nothing else the server sent (a
/// fetched message, untagged data, a line cut in two) may be taken for the refusal.
/// </summary>
public sealed class ImapResponseTailTests
{
    /// <summary>The server's bytes as MailKit reads them: in pieces of <paramref name="chunk"/> bytes, from offset 3 of a larger buffer.</summary>
    static ImapResponseTail Heard(byte[] bytes, int chunk = 4096)
    {
        var tail = new ImapResponseTail();
        tail.LogConnect(new Uri("imap://imap.example.test:143"));
        for (var at = 0; at < bytes.Length; at += chunk)
        {
            var n = Math.Min(chunk, bytes.Length - at);
            var buffer = new byte[n + 5];
            buffer.AsSpan(0, 3).Fill((byte)'#');
            buffer.AsSpan(n + 3).Fill((byte)'#');
            bytes.AsSpan(at, n).CopyTo(buffer.AsSpan(3));
            tail.LogServer(buffer, 3, n);
        }
        return tail;
    }

    static string? CodeOf(string server, int chunk = 4096) => Heard(Encoding.Latin1.GetBytes(server), chunk).LastTaggedCode();

    [Theory]
    [InlineData("A00000012 NO [UNAVAILABLE] Backend down, try later\r\n", "UNAVAILABLE")]
    [InlineData("A00000012 NO [inuse] Mailbox locked\r\n", "INUSE")]
    [InlineData("A00000012 no [ServerBug] Internal error\r\n", "SERVERBUG")]
    [InlineData("A00000012 NO [LIMIT] Too many fetches\r\n", "LIMIT")]
    [InlineData("A00000012 NO [BADCHARSET (UTF-8 US-ASCII)] Unknown charset\r\n", "BADCHARSET")]
    [InlineData("A00000012 OK [READ-ONLY] Examine completed\r\n", "READ-ONLY")]
    [InlineData("A00000012 BAD [CLIENTBUG] Bad syntax\r\n", "CLIENTBUG")]
    [InlineData("A00000012 NO [UNAVAILABLE]\r\n", "UNAVAILABLE")]
    [InlineData("A00000012 NO [LIMIT]\n", "LIMIT")]
    public void The_code_of_the_last_tagged_line_is_given_upper_cased(string server, string code)
    {
        Assert.Equal(code, CodeOf(server));
        Assert.Equal(code, CodeOf(server, chunk: 1));
    }

    [Theory]
    // Exchange's lasting refusal has no code.
    [InlineData("A00000012 NO The requested message could not be converted to an RFC-822 compatible format.\r\n")]
    [InlineData("A00000012 NO\r\n")]
    [InlineData("A00000012 NO Try later [UNAVAILABLE]\r\n")]
    // Not a code: unclosed, empty, cut, or not an atom.
    [InlineData("A00000012 NO [UNAVAILABLE\r\n")]
    [InlineData("A00000012 NO []\r\n")]
    [InlineData("A00000012 NO [\r\n")]
    [InlineData("A00000012 NO [UN(AVAILABLE] x\r\n")]
    [InlineData("A00000012 NO [\"UNAVAILABLE\"] x\r\n")]
    // Not a tagged status line: untagged, continuation, no status, no tag.
    [InlineData("* NO [UNAVAILABLE] Backend down\r\n")]
    [InlineData("+ [UNAVAILABLE] x\r\n")]
    [InlineData("A00000012 MAYBE [UNAVAILABLE] x\r\n")]
    [InlineData(" NO [UNAVAILABLE] x\r\n")]
    [InlineData("A+1 NO [UNAVAILABLE] x\r\n")]
    [InlineData("[UNAVAILABLE]\r\n")]
    // Nothing, or no whole line.
    [InlineData("")]
    [InlineData("\r\n")]
    [InlineData("A00000012 NO [UNAVAILABLE] not yet ended")]
    public void Anything_else_has_no_code(string server) => Assert.Null(CodeOf(server));

    [Fact]
    public void Bytes_that_are_not_ascii_are_no_code_and_no_tag_but_may_be_in_the_text()
    {
        Assert.Null(Heard([.. "A1 NO [UNAVAIL"u8, 0xC3, 0xA9, .. "] x\r\n"u8]).LastTaggedCode());
        Assert.Null(Heard([.. "A"u8, 0xFF, .. " NO [UNAVAILABLE] x\r\n"u8]).LastTaggedCode());
        Assert.Null(Heard([0x00, .. " NO [UNAVAILABLE] x\r\n"u8]).LastTaggedCode());
        Assert.Equal("INUSE", Heard([.. "A1 NO [INUSE] Postfach gesperrt "u8, 0xC3, 0xBC, 0xFF, 0x00, .. "\r\n"u8]).LastTaggedCode());
    }

    [Fact]
    public void Untagged_and_continuation_lines_after_the_tagged_one_are_passed_and_a_line_not_yet_ended_is_ignored()
    {
        Assert.Equal("INUSE", CodeOf("A00000012 NO [INUSE] Mailbox locked\r\n* 4 EXISTS\r\n* 1 RECENT\r\n+ go ahead\r\n+\r\n* 5 EXPUN"));
        Assert.Null(CodeOf("* 4 EXISTS\r\n* OK [UNAVAILABLE] still there\r\n"));
    }

    [Fact]
    public void A_tagged_line_inside_a_fetched_message_before_the_real_answer_is_not_taken_for_it()
    {
        // The message fetched just before carries, in its body (an IMAP literal), lines that look like a tagged
        // refusal for now; the command that failed after it was refused for good, without a code.
        var body = "From: mallory@example.test\r\nSubject: hi\r\n\r\nQuoted from a protocol log:\r\nA00000013 NO [UNAVAILABLE] Backend down\r\n* NO [UNAVAILABLE] x\r\n";
        var server = $"* 11 FETCH (UID 41 BODY[] {{{Encoding.ASCII.GetByteCount(body)}}}\r\n{body})\r\nA00000012 OK Fetch completed.\r\n"
            + "A00000013 NO The requested message could not be converted to an RFC-822 compatible format.\r\n";
        Assert.Null(CodeOf(server));
        Assert.Null(CodeOf(server, chunk: 7));
        // And the other way round: the real answer's own code is given, not the forged one.
        Assert.Equal("SERVERBUG", CodeOf(server.Replace("A00000013 NO The requested", "A00000013 NO [SERVERBUG] The requested")));
    }

    [Fact]
    public void After_a_large_message_only_the_tail_is_kept_and_the_answer_after_it_is_found()
    {
        var big = new StringBuilder("* 11 FETCH (UID 41 BODY[] {300000}\r\n");
        while (big.Length < 300_000) big.Append("A00000099 NO [UNAVAILABLE] line of a message body, not an answer\r\n");
        big.Append(")\r\nA00000012 OK Fetch completed.\r\nA00000013 NO [LIMIT] Too many downloads today\r\n");
        foreach (var chunk in new[] { 1, 13, 4096, 65536, 1_000_000 }) Assert.Equal("LIMIT", CodeOf(big.ToString(), chunk));
    }

    [Fact]
    public void A_tagged_line_whose_start_was_dropped_is_not_read()
    {
        // Longer than what is kept: its start (tag and code) is gone, and the rest must not be read as a line.
        var longLine = "A00000013 NO [UNAVAILABLE] " + new string('x', ImapResponseTail.Capacity) + " A00000014 NO [INUSE] x\r\n";
        Assert.Null(CodeOf(longLine));
        Assert.Null(CodeOf(longLine, chunk: 100));
        // Cut exactly where a line starts, that line is whole.
        var exact = "A00000013 NO [INUSE] " + new string('y', ImapResponseTail.Capacity - 23) + "\r\n";
        Assert.Equal(ImapResponseTail.Capacity, exact.Length);
        Assert.Equal("INUSE", CodeOf("A00000012 OK Fetch completed.\r\n" + exact));
        Assert.Equal("INUSE", CodeOf("A00000012 OK Fetch completed.\r\n" + exact, chunk: 31));
        // One byte more, and what is kept is the end of a line whose start was dropped.
        Assert.Null(CodeOf("A00000012 OK Fetch completed.\r\nz" + exact));
        Assert.Null(CodeOf("A00000012 OK Fetch completed.\r\nz" + exact, chunk: 31));
    }

    [Fact]
    public void A_new_connection_starts_a_new_tail()
    {
        static void Say(ImapResponseTail tail, string text)
        {
            var bytes = Encoding.ASCII.GetBytes(text);
            tail.LogServer(bytes, 0, bytes.Length);
        }
        var tail = Heard("A00000013 NO [UNAVAILABLE] x\r\n"u8.ToArray());
        tail.LogConnect(new Uri("imap://imap.example.test:143"));
        Assert.Null(tail.LastTaggedCode());
        Say(tail, "* OK IMAP4rev1 ready\r\n");
        Assert.Null(tail.LastTaggedCode());
        var login = "A00000001 LOGIN x y\r\n"u8.ToArray();
        tail.LogClient(login, 0, login.Length);
        Say(tail, "A00000001 NO [AUTHENTICATIONFAILED] Invalid credentials\r\n");
        Assert.Equal("AUTHENTICATIONFAILED", tail.LastTaggedCode());
    }
}
