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
        // Attribution lines that put their verb after the date and the writer: before, each was kept as the author's words.
        {
            "Gmail in Swedish",
            "Tack, det passar bra.\n\nDen mån 30 nov. 2026 kl 10:02 skrev Kevin Flynn <kevin@flynnsarcade.test>:\n\n> Hej Alan,\n> här är offerten.\n",
            "Tack, det passar bra."
        },
        {
            "Gmail in Polish, its attribution wrapped before the verb",
            "Dziękuję, pasuje.\n\npon., 30 lis 2026 o 10:02 Kevin Flynn <kevin@flynnsarcade.test>\nnapisał(a):\n\n> Cześć Alan,\n",
            "Dziękuję, pasuje."
        },
        {
            "Gmail in Finnish",
            "Kiitos, sopii.\n\nKevin Flynn (kevin@flynnsarcade.test) kirjoitti ma 30.11.2026 klo 10.02:\n\n> Hei Alan,\n",
            "Kiitos, sopii."
        },
        {
            "Gmail in Turkish",
            "Teşekkürler, uygun.\n\nKevin Flynn <kevin@flynnsarcade.test>, 30 Kas 2026 Pzt, 10:02 tarihinde şunu yazdı:\n\n> Merhaba Alan,\n",
            "Teşekkürler, uygun."
        },
        {
            "Gmail in Chinese",
            "好的，周二可以。\n\nKevin Flynn <kevin@flynnsarcade.test> 于2026年11月30日周一 10:02写道：\n\n> 你好 Alan，\n",
            "好的，周二可以。"
        },
        {
            "Gmail in Japanese, whose attribution has no verb",
            "承知しました。火曜日で大丈夫です。\n\n2026年11月30日(月) 10:02 Kevin Flynn <kevin@flynnsarcade.test>:\n\n> Alan様\n",
            "承知しました。火曜日で大丈夫です。"
        },
        {
            "Outlook for Mac in Danish, its header block dated \"Dato\"",
            "Tak, det lyder godt.\n\nFra: Kevin Flynn <kevin@flynnsarcade.test>\nDato: mandag, 30. november 2026 kl. 10.02\nTil: Alan Bradley <alan@encom.test>\nEmne: Tilbud\n\nHej Alan,\nher er tilbuddet.\n",
            "Tak, det lyder godt."
        },
        {
            "a Swedish sentence ending in a colon is the author's, not an attribution",
            "Som jag skrev i förra veckan:\nvi behöver 40 licenser.\n",
            "Som jag skrev i förra veckan: vi behöver 40 licenser."
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
