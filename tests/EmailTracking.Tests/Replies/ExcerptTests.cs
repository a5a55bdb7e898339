using EmailTracking.Server.Replies;
using MimeKit;

namespace EmailTracking.Tests.Replies;

/// <summary>
/// What a reply's excerpt (the timeline, the Salesforce task, webhooks) keeps: what the author wrote, not the quoted
/// original, whichever client and language quoted it.
/// </summary>
public sealed class ExcerptTests
{
    static MimeMessage Plain(string text) => new() { Body = new TextPart("plain") { Text = text } };

    public static TheoryData<string, string, string> Replies => new()
    {
        {
            "Gmail, an attribution line it wrapped",
            "Sounds good, Tuesday works.\n\nOn Mon, Nov 30, 2026 at 10:02 AM Kevin Flynn <\nkevin@flynnsarcade.test> wrote:\n\n> Hi Alan,\n> here is the deck.\n",
            "Sounds good, Tuesday works."
        },
        {
            "Outlook in German, its header block",
            "Danke, das passt.\n\nViele Grüße\nAlan\n\nVon: Kevin Flynn <kevin@flynnsarcade.test>\nGesendet: Montag, 30. November 2026 10:02\nAn: Alan Bradley <alan@encom.test>\nBetreff: Angebot\n\nHallo Alan,\nhier ist das Angebot.\n",
            "Danke, das passt. Viele Grüße Alan"
        },
        {
            "Apple Mail in French",
            "Parfait, merci.\n\n> Le 30 nov. 2026 à 10:02, Kevin Flynn <kevin@flynnsarcade.test> a écrit :\n>\n> Bonjour Alan,\n",
            "Parfait, merci."
        },
        {
            "Outlook in Dutch, its separator",
            "Akkoord.\n\n-----Oorspronkelijk bericht-----\nVan: Kevin Flynn\nVerzonden: maandag 30 november 2026 10:02\n\nHoi Alan, hier is de offerte.\n",
            "Akkoord."
        },
        {
            "Thunderbird in Spanish",
            "De acuerdo.\n\nEl 30/11/26 a las 10:02, Kevin Flynn escribió:\n> Hola Alan,\n",
            "De acuerdo."
        },
        {
            "an answer below the quote",
            "On Mon, Nov 30, 2026 at 10:02 AM Kevin Flynn wrote:\n> Can you do Tuesday?\n\nYes, Tuesday at 3.\n",
            "Yes, Tuesday at 3."
        },
        {
            "a signature after its delimiter",
            "OK, send it over.\n-- \nAlan Bradley\nENCOM, Systems\n",
            "OK, send it over."
        },
    };

    [Theory]
    [MemberData(nameof(Replies))]
    public void A_replys_excerpt_is_what_its_author_wrote(string client, string text, string expected)
    {
        Assert.True(expected == InboundPipeline.Excerpt(Plain(text)), $"{client}: {InboundPipeline.Excerpt(Plain(text))}");
    }

    [Fact]
    public void Mail_sent_as_HTML_only_has_an_excerpt_from_its_text_without_the_quote()
    {
        var message = new MimeMessage
        {
            Body = new TextPart("html")
            {
                Text = "<html><body><div dir=\"ltr\">Great, <b>Tuesday</b> works.</div><br><div class=\"gmail_quote\">" +
                       "<div class=\"gmail_attr\">On Mon, Nov 30, 2026 at 10:02 AM Kevin Flynn &lt;kevin@flynnsarcade.test&gt; wrote:<br></div>" +
                       "<blockquote class=\"gmail_quote\">Hi Alan, here is the deck.</blockquote></div></body></html>",
            },
        };
        Assert.Equal("Great, Tuesday works.", InboundPipeline.Excerpt(message));
    }

    [Fact]
    public void A_body_with_nothing_but_a_quote_or_nothing_at_all_has_no_excerpt()
    {
        Assert.Equal("", InboundPipeline.Excerpt(Plain("> only the original\n> quoted\n")));
        Assert.Null(InboundPipeline.Excerpt(Plain("  \n")));
        Assert.Null(InboundPipeline.Excerpt(new MimeMessage { Body = new TextPart("plain") }));
    }
}
