using EmailTracking.Server.Messages;
using EmailTracking.Server.Replies;

namespace EmailTracking.Tests.Replies;

public sealed class HtmlTextAndThreadIndexTests
{
    [Fact]
    public void Plain_text_keeps_paragraphs_and_links_and_leaves_out_hidden_parts()
    {
        var text = HtmlText.ToPlainText("""
            <html><head><style>p{}</style><title>x</title></head><body>
            <p>Hello   Flynn,</p><p>See <a href="https://t.test/c/abc">the deck</a><br>and <a href="mailto:a@b.test">mail</a>.</p>
            <ul><li>one</li><li>two</li></ul>
            <a href="https://t.test/c/trap" style="display: none !important" aria-hidden="true">trap</a>
            <img src="https://t.test/o/x.gif"></body></html>
            """);
        Assert.Equal("Hello Flynn,\n\nSee the deck (https://t.test/c/abc)\nand mail.\n\n- one\n\n- two", text);
        Assert.DoesNotContain("trap", text);
    }

    [Fact]
    public void Thread_index_names_the_conversation_by_its_first_22_bytes()
    {
        var root = Enumerable.Range(0, 22).Select(i => (byte)(i * 7)).ToArray();
        var child = root.Concat(new byte[] { 9, 8, 7, 6, 5 }).ToArray();
        Assert.Equal(Convert.ToBase64String(root), ThreadIndex.Conversation(Convert.ToBase64String(child)));
        Assert.Equal(ThreadIndex.Conversation(Convert.ToBase64String(root)), ThreadIndex.Conversation(Convert.ToBase64String(child)));
        Assert.Null(ThreadIndex.Conversation("not base64!"));
        Assert.Null(ThreadIndex.Conversation(Convert.ToBase64String(new byte[10])));
        Assert.Null(ThreadIndex.Conversation(null));
        Assert.Null(ThreadIndex.Conversation(new string('A', 10_000)));
    }
}
