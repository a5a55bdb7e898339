using System.Globalization;
using EmailTracking.Server.Replies.Classification;
using MimeKit;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>The auto-reply header rules, the Precedence: bulk rule, and return dates in the seven languages.</summary>
public sealed class AutoReplyRuleTests
{
    private static readonly InboundClassifier Classifier = new();

    private static MimeMessage Reply(string body, string subject = "Re: Pricing for the Q2 rollout", params (string Name, string Value)[] headers)
    {
        var message = new MimeMessage();
        message.From.Add(new MailboxAddress("Tom Buyer", "tom@buyer.example"));
        message.To.Add(new MailboxAddress("Jane Seller", "jane@sellerco.example"));
        message.Subject = subject;
        message.Date = new DateTimeOffset(2026, 3, 3, 10, 0, 0, TimeSpan.Zero);
        message.InReplyTo = "et-7f3a9c2e@track.sellerco.example";
        foreach (var (name, value) in headers)
            message.Headers.Add(name, value);
        message.Body = new TextPart("plain") { Text = body };
        return message;
    }

    private const string PersonalReply = "Sounds good, let's talk on Thursday.\n\nOn Tue, Mar 3, 2026 at 10:12 AM Jane Seller <jane@sellerco.example> wrote:\n> Here is the pricing.\n";

    [Theory]
    [InlineData("Auto-Submitted", "auto-replied")]
    [InlineData("Auto-Submitted", "auto-generated")]
    [InlineData("Auto-Submitted", "auto-notified; owner-email=\"x@example.org\"")]
    [InlineData("X-Autoreply", "yes")]
    [InlineData("X-Autorespond", "Out of office")]
    [InlineData("Precedence", "auto_reply")]
    [InlineData("Precedence", "junk")]
    [InlineData("X-Auto-Response-Suppress", "All")]
    public void An_auto_reply_header_decides(string name, string value)
    {
        var result = Classifier.Classify(Reply(PersonalReply, headers: (name, value)));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Contains(name, result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("Auto-Submitted", "no")]
    [InlineData("X-Autoreply", "no")]
    [InlineData("Precedence", "bulk")]
    [InlineData("Precedence", "list")]
    [InlineData("X-Auto-Response-Suppress", "OOF, AutoReply")]
    // What an Exchange inbox rule sent or redirected: a shared inbox passing a person's reply on to the rep, too.
    [InlineData("X-MS-Exchange-Inbox-Rules-Loop", "sales@sellerco.example")]
    public void Headers_that_do_not_prove_a_robot_leave_a_persons_reply_human(string name, string value)
    {
        Assert.Equal(InboundKind.Human, Classifier.Classify(Reply(PersonalReply, headers: (name, value))).Kind);
    }

    [Fact]
    public void Precedence_bulk_with_out_of_office_text_is_an_auto_reply()
    {
        const string body = "I am out of the office until 12 March.";
        // The text alone is too little to call it a robot…
        Assert.Equal(InboundKind.Human, Classifier.Classify(Reply(body)).Kind);
        // …but with Precedence: bulk, which vacation programs set, it is one.
        var result = Classifier.Classify(Reply(body, headers: ("Precedence", "bulk")));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Contains("Precedence: bulk", result.Reason, StringComparison.Ordinal);
        Assert.Equal(new DateOnly(2026, 3, 12), result.ReturnDate);
    }

    [Fact]
    public void The_inbox_rule_loop_header_with_out_of_office_text_is_an_auto_reply()
    {
        var result = Classifier.Classify(Reply("I am out of the office until 12 March.", headers: ("X-MS-Exchange-Inbox-Rules-Loop", "tom@buyer.example")));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Contains("X-MS-Exchange-Inbox-Rules-Loop", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Precedence_list_with_one_absence_sentence_stays_human()
    {
        // A person writing to a list (Google Groups puts Precedence: list on it) who says they are away.
        var result = Classifier.Classify(Reply("Hi Jane, I'm on vacation from tomorrow until Monday, so Raj will take the call on Thursday. Go ahead and send him the contract.",
            "RE: [sales-team] Pricing for the Q2 rollout", ("Precedence", "list"), ("List-Id", "<sales-team.northwind.example>")));
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Contains("not enough for an auto-reply", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void Auto_submitted_no_speaks_for_a_person_against_a_lists_precedence()
    {
        // A list member's reply that a list passed on, saying in a notice's words that they are away, with no quote and no
        // greeting: the list's Precedence tipped it over. Auto-Submitted: no is RFC 3834's word that a person wrote it.
        const string body = "I'm on vacation until January 4 with limited access to email. For urgent matters contact Bob at bob@buyer.example. " +
                            "Otherwise let's pick this up when I'm back.";
        (string, string)[] list = [("Precedence", "list"), ("List-Id", "<buyers.lists.buyer.example>")];
        var declared = Classifier.Classify(Reply(body, "Re: [buyers] Pricing", [.. list, ("Auto-Submitted", "no")]));
        Assert.Equal(InboundKind.Human, declared.Kind);
        Assert.Contains("Auto-Submitted: no", declared.Reason, StringComparison.Ordinal);
        Assert.Null(declared.ReturnDate);
        // The same mail without it still reads as a notice: the header, not the wording, made the difference.
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply(body, "Re: [buyers] Pricing", list)).Kind);
    }

    [Theory]
    [InlineData("Thanks for your email. I'm travelling this week but yes, Thursday 10am works for the demo. If it's urgent, call my mobile.\n\nSent from my iPhone")]
    [InlineData("Danke für Ihre Nachricht. Ich bin diese Woche im Urlaub, aber Donnerstag passt. In dringenden Fällen bitte anrufen.\n\nVon meinem iPhone gesendet")]
    public void A_phones_signature_speaks_for_a_person(string body)
    {
        var result = Classifier.Classify(Reply(body));
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Contains("a phone's signature", result.Reason, StringComparison.Ordinal);
        // Without the signature the same words are an out-of-office notice's.
        var cut = body[..body.LastIndexOf("\n\n", StringComparison.Ordinal)];
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply(cut)).Kind);
    }

    [Theory]
    // An out-of-office notice is the same text for whoever writes: it never names them, nor says it has read their mail.
    [InlineData("Thanks for your email Jane. I'm travelling until Friday but will get back to you properly when I return.")]
    [InlineData("Thanks for your email. I'm out of the office until 4 January with limited access to email. I've read your proposal though, and will discuss it with the team when I'm back.")]
    [InlineData("Danke für Ihre Nachricht. Ich bin bis Freitag im Urlaub. Ich habe Ihr Angebot schon gelesen und melde mich nach meiner Rückkehr.")]
    public void Words_for_this_sender_speak_for_a_person(string body)
    {
        var result = Classifier.Classify(Reply(body));
        Assert.True(result.Kind == InboundKind.Human, result.Reason);
        Assert.Contains("words for this sender", result.Reason, StringComparison.Ordinal);
        // A notice that names someone else (its urgent contact) is still one.
        var notice = Classifier.Classify(Reply("Thank you for your email. I am out of the office until 4 January with limited access to email. For urgent matters please contact Ben Lee."));
        Assert.Equal(InboundKind.AutoReply, notice.Kind);
    }

    [Theory]
    // A notice may name next week or tomorrow as the end of the absence: that is not an absence still to come.
    [InlineData("Thank you for your message. I am out of the office until next week with limited access to email. For urgent matters please contact Bob.")]
    [InlineData("Thank you for your message. I am on holiday this week and next week, back on 14 December. For urgent matters please contact Bob.")]
    [InlineData("Vielen Dank für Ihre Nachricht. Ich bin bis morgen nicht im Büro. In dringenden Fällen wenden Sie sich bitte an Herrn Maier.")]
    [InlineData("Gracias por su mensaje. Estoy de vacaciones hasta la semana que viene. Para asuntos urgentes contacte con Luis.")]
    [InlineData("Grazie per il suo messaggio. Sono in ferie fino alla prossima settimana. Per questioni urgenti contattare Marco.")]
    [InlineData("Vielen Dank für Ihre Nachricht. Ich bin heute nicht im Büro und ab morgen wieder erreichbar. In dringenden Fällen wenden Sie sich bitte an Herrn Maier.")]
    public void A_notice_whose_absence_ends_next_week_is_still_an_auto_reply(string body)
    {
        var result = Classifier.Classify(Reply(body));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
    }

    [Theory]
    // rfc3834-03 of the sisimai set: an owner in UTC+9, whose midnights are at 15:00 UTC.
    [InlineData("2019-11-30T15:00:00Z", "2020-01-10T14:59:59Z", "2020-01-10")]
    // An owner in UTC-8: the same last day, though the end is on 11 January in UTC.
    [InlineData("2019-11-30T08:00:00Z", "2020-01-11T07:59:59Z", "2020-01-10")]
    public void An_icloud_vacation_reply_without_a_date_in_its_text_ends_on_its_headers_last_day(string start, string end, string expected)
    {
        var message = Reply("I'm only sleeping.", "Auto reply: Nyaan",
            ("X-Apple-Criteria", $"{{kind=VACATION,startDate={start},endDate={end}}}"), ("X-Apple-Action", "VACATION"));
        message.Date = new DateTimeOffset(2019, 12, 17, 2, 53, 9, TimeSpan.Zero);
        var result = Classifier.Classify(message);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Fact]
    public void A_person_mentioning_their_own_automatic_reply_is_human()
    {
        Assert.Equal(InboundKind.Human, Classifier.Classify(Reply("Ignore my automatic reply - I'm back early and out of the office only on Friday. Send the contract!")).Kind);
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply("This is an automatic reply. I am out of the office until 12 March.")).Kind);
    }

    [Theory]
    [InlineData("Automatic reply: Pricing for the Q2 rollout")]
    [InlineData("Out of Office: Pricing for the Q2 rollout")]
    [InlineData("Abwesenheitsnotiz: Angebot")]
    [InlineData("Réponse automatique : Proposition")]
    [InlineData("Respuesta automática: Propuesta")]
    [InlineData("Resposta automática: Proposta")]
    [InlineData("Risposta automatica: Proposta")]
    [InlineData("Automatisch antwoord: Voorstel")]
    [InlineData("Out of Office")]
    [InlineData("Fuera de la oficina (Propuesta)")]
    public void An_auto_reply_subject_decides(string subject)
    {
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply("Back soon.", subject)).Kind);
    }

    [Theory]
    [InlineData("Re: Out of office coverage next week")]
    [InlineData("AW: Abwesenheit im März")]
    [InlineData("RE: Automatic reply rules in Outlook")]
    // A person who rewrote the subject: a state, not a robot's name for its message, and no colon after it.
    [InlineData("Out of office next week - can we move our call?")]
    public void A_reply_about_absence_is_human(string subject)
    {
        Assert.Equal(InboundKind.Human, Classifier.Classify(Reply("I'll be out of office next week, can we move the call?\n\n" + PersonalReply, subject)).Kind);
    }

    [Theory]
    [InlineData("Re: Delivery failed", "Sorry, the parcel could not be delivered to our office. Could you send it again?")]
    [InlineData("Re: Error in the invoice", "The invoice was rejected by our system: unable to deliver it to accounting. Permanent error, they say.")]
    [InlineData("Re: Undeliverable items", "Three items were undeliverable. Message not delivered to the warehouse either.")]
    public void A_person_writing_about_failed_deliveries_is_human(string subject, string body)
    {
        var result = Classifier.Classify(Reply(body + "\n\n" + PersonalReply, subject));
        Assert.Equal(InboundKind.Human, result.Kind);
    }

    [Fact]
    public void A_thread_topic_from_exchange_decides()
    {
        var result = Classifier.Classify(Reply("Back on Monday.", "Pricing", ("Thread-Topic", "Automatic reply: Pricing")));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Contains("Thread-Topic", result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    // The conversation's topic, which a person's answer in the thread carries too.
    [InlineData("RE: Out of office coverage for your support team", "Out of office coverage for your support team")]
    [InlineData("AW: Autoresponder für Ihr Team – Demo?", "Autoresponder für Ihr Team – Demo?")]
    [InlineData("RE: Automatic reply: Pricing", "Automatic reply: Pricing")]
    public void A_thread_topic_does_not_make_a_persons_answer_in_the_thread_a_robot(string subject, string topic)
    {
        var result = Classifier.Classify(Reply("Interesting, can you send a quote for 3 agents?\n\n" + PersonalReply, subject, ("Thread-Topic", topic)));
        Assert.Equal(InboundKind.Human, result.Kind);
    }

    [Theory]
    // English
    [InlineData("I will be back on 12 March.", "2026-03-03", "2026-03-12")]
    [InlineData("I'll be back in the office on March 12th.", "2026-03-03", "2026-03-12")]
    [InlineData("Returning on Monday, 9 March 2026.", "2026-03-03", "2026-03-09")]
    [InlineData("I am away until 2 January.", "2026-12-20", "2027-01-02")]
    [InlineData("Back on 2026-04-01.", "2026-03-03", "2026-04-01")]
    [InlineData("I will be back on Monday.", "2026-03-04", "2026-03-09")]
    // German
    [InlineData("Ich bin ab dem 3.4. wieder im Büro.", "2026-03-16", "2026-04-03")]
    [InlineData("Ich bin ab dem 16.03.2026 nicht im Büro und zurück am 3.4.2026.", "2026-03-16", "2026-04-03")]
    [InlineData("Ich bin bis einschließlich 20. März im Urlaub.", "2026-03-03", "2026-03-20")]
    [InlineData("Vom 1. bis 5. März bin ich nicht erreichbar.", "2026-02-20", "2026-03-05")]
    // French
    [InlineData("Je serai de retour le 5 janvier.", "2025-12-20", "2026-01-05")]
    [InlineData("Absente du 3 au 7 avril.", "2026-03-30", "2026-04-07")]
    [InlineData("De retour le 1er avril 2026.", "2026-03-03", "2026-04-01")]
    // Spanish
    [InlineData("Regreso el 10 de febrero.", "2026-02-01", "2026-02-10")]
    [InlineData("Estaré fuera hasta el 15/04.", "2026-03-03", "2026-04-15")]
    // Portuguese
    [InlineData("Estou de férias e volto dia 2 de maio.", "2026-04-20", "2026-05-02")]
    [InlineData("Estarei ausente até 30/04/2026.", "2026-04-20", "2026-04-30")]
    // Italian
    [InlineData("Sono fuori ufficio, rientro il 7 aprile.", "2026-03-30", "2026-04-07")]
    [InlineData("Sarò in ferie fino al 20 marzo.", "2026-03-03", "2026-03-20")]
    // Dutch
    [InlineData("Ik ben afwezig en terug op 14 juni.", "2026-06-01", "2026-06-14")]
    [InlineData("Ik ben tot en met 12-03 afwezig, vanaf 13 maart weer aanwezig.", "2026-03-03", "2026-03-13")]
    // Nothing stated
    [InlineData("I am out of the office with limited access to email.", "2026-03-03", null)]
    [InlineData("Ich bin ab dem 16.03.2026 nicht im Büro.", "2026-03-03", null)]
    public void Return_dates_are_read_and_resolved_against_the_message_date(string text, string sent, string? expected)
    {
        var date = ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirstDefault: false);
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture), date);
    }

    [Theory]
    // Portuguese: "na segunda-feira", "ao escritório no dia", the gerund.
    [InlineData("Estarei de volta na segunda-feira, 7 de dezembro.", "2026-11-30", "2026-12-07")]
    [InlineData("Volto ao escritório no dia 7 de dezembro.", "2026-11-30", "2026-12-07")]
    [InlineData("Estou de férias, retornando no dia 07/12.", "2026-11-30", "2026-12-07")]
    // Italian: "fino a venerdì", the elided article ("all'11", "l'11"), "di nuovo in ufficio dal".
    [InlineData("Sarò fuori ufficio fino a venerdì 4 dicembre.", "2026-11-30", "2026-12-04")]
    [InlineData("Sarò fuori ufficio fino all'11 dicembre.", "2026-11-30", "2026-12-11")]
    [InlineData("Sono in ferie e rientrerò l'11 dicembre.", "2026-11-30", "2026-12-11")]
    [InlineData("Sarò di nuovo in ufficio dal 7 dicembre.", "2026-11-30", "2026-12-07")]
    public void Return_phrasings_of_portuguese_and_italian_notices_are_read(string text, string sent, string expected)
    {
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirstDefault: false));
    }

    [Theory]
    // A weekday after an until word of its own is the last day away (sent on Monday 30 November 2026)…
    [InlineData("I am out of the office until Friday.", "2026-12-04")]
    [InlineData("Ich bin bis Freitag nicht im Büro.", "2026-12-04")]
    [InlineData("Je suis absent jusqu'à vendredi.", "2026-12-04")]
    [InlineData("Estoy fuera hasta el viernes.", "2026-12-04")]
    [InlineData("Estou fora até sexta-feira.", "2026-12-04")]
    [InlineData("Sono fuori ufficio fino a venerdì.", "2026-12-04")]
    [InlineData("Ik ben afwezig tot vrijdag.", "2026-12-04")]
    // …but not in office hours.
    [InlineData("Ich bin im Urlaub. Unsere Bürozeiten: Montag bis Freitag 9-17 Uhr.", null)]
    [InlineData("I am on vacation. Our support team is available Monday to Friday.", null)]
    [InlineData("Ik ben met vakantie. Wij zijn bereikbaar van maandag tot vrijdag.", null)]
    // "tomorrow" is the day after the message.
    [InlineData("I'm out of the office today. Back tomorrow.", "2026-12-01")]
    [InlineData("Ich bin heute nicht im Büro und ab morgen wieder erreichbar.", "2026-12-01")]
    [InlineData("Je suis absent aujourd'hui, de retour demain.", "2026-12-01")]
    [InlineData("Estoy fuera hoy, regreso mañana.", "2026-12-01")]
    [InlineData("Estou fora hoje, volto amanhã.", "2026-12-01")]
    [InlineData("Sono fuori sede oggi, rientro domani.", "2026-12-01")]
    [InlineData("Ik ben vandaag afwezig, terug morgen.", "2026-12-01")]
    public void Weekdays_after_until_and_tomorrow_are_resolved_against_the_message_date(string text, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, new DateOnly(2026, 11, 30), monthFirstDefault: false));
    }

    [Theory]
    // Lotus Notes' French notice: the start after "à partir du" is followed by a return with a date of its own.
    [InlineData("Je serai absent(e) du bureau à partir du  20/12/2026 de retour le 04/01/2027.", "2027-01-04")]
    // Dutch dates with dashes.
    [InlineData("Ik ben vanaf 20-12-2026 afwezig en ben weer terug op 04-01-2027.", "2027-01-04")]
    [InlineData("Ik ben afwezig tot en met 3-1.", "2027-01-03")]
    // "el próximo 7 de enero", "next Monday".
    [InlineData("Estaré de vacaciones hasta el próximo 7 de enero.", "2027-01-07")]
    [InlineData("I will be back next Monday.", "2026-12-28")]
    // Last year's number written out of habit in the last days of the year.
    [InlineData("I am back on 4 January 2026.", "2027-01-04")]
    public void Year_end_notices_are_read_in_their_usual_forms(string text, string expected)
    {
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, new DateOnly(2026, 12, 21), monthFirstDefault: false));
    }

    [Theory]
    // rfc3834-04 of the sisimai set, word for word: the range's last day is when the absence ends.
    [InlineData("I will be traveling for work on July 10-31.  During that time I will have intermittent access to email and phone.", "2013-03-16", true, "2013-07-31")]
    [InlineData("I am out of the office December 20 - January 3 with limited access to email.", "2026-12-18", true, "2027-01-03")]
    [InlineData("Out of the office Dec 20–Jan 3.", "2026-12-18", true, "2027-01-03")]
    [InlineData("I am out of the office 12/20-1/3.", "2026-12-18", true, "2027-01-03")]
    [InlineData("Estarei ausente de 20/12 a 03/01.", "2026-12-18", false, "2027-01-03")]
    [InlineData("Estarei de férias de 20 a 31 de dezembro.", "2026-11-30", false, "2026-12-31")]
    [InlineData("Ich bin vom 20.-31.12. im Urlaub.", "2026-11-30", false, "2026-12-31")]
    // Dashes between numbers that are not dates: office hours, phone numbers.
    [InlineData("I am on leave. Office hours 9-17, phone 0049-30-1234-56 or +0-000-000-0000; 5am - 5:30pm.", "2026-11-30", true, null)]
    public void A_range_written_with_a_dash_ends_the_absence_on_its_last_day(string text, string sent, bool monthFirst, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirst));
    }

    [Theory]
    // English ranges whose end is a bare day, or whose word ("and" after "between") is not an until word of its own.
    [InlineData("I am out of the office from March 1 to 15 with no access to email.", "2027-02-22", "2027-03-15")]
    [InlineData("I am out of the office March 1st through the 15th.", "2027-02-22", "2027-03-15")]
    [InlineData("I am out of the office between 24 December and 6 January.", "2026-12-29", "2027-01-06")]
    [InlineData("I am away between the 24th of December and the 6th of January.", "2026-12-21", "2027-01-06")]
    // Not ranges: office hours.
    [InlineData("I am on leave. Our support line is open 9 to 5, Monday to Friday.", "2026-11-30", null)]
    [InlineData("I am on leave. Please call reception between 9 and 5.", "2026-11-30", null)]
    public void A_range_written_with_words_ends_the_absence_on_its_last_day(string text, string sent, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirstDefault: true));
    }

    [Theory]
    // A day that has passed is no return: the notice was left on, or the text mentions a past day before the return.
    [InlineData("I am out of the office until November 2.", "2026-12-10", null)]
    [InlineData("I will be back on 2 November 2026.", "2026-12-10", null)]
    [InlineData("I was back on 3 November but am now away again until 5 January.", "2026-12-01", "2027-01-05")]
    // Near the year's end a date without a year is next year's, and one a day back (time zones) is still that day.
    [InlineData("Back on 4 January.", "2026-12-28", "2027-01-04")]
    [InlineData("I am out of the office until 30 November.", "2026-12-01", "2026-11-30")]
    public void A_day_already_past_is_not_a_return_date(string text, string sent, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirstDefault: true));
    }

    [Theory]
    [InlineData(true, "2026-04-06")]
    [InlineData(false, "2026-06-04")]
    public void Numeric_dates_follow_the_languages_order(bool monthFirst, string expected)
    {
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find("I will be back on 04/06.", new DateOnly(2026, 3, 3), monthFirst));
        // A first number over 12 cannot be a month, whatever the language.
        Assert.Equal(new DateOnly(2026, 4, 13), ReturnDates.Find("Back on 13/04.", new DateOnly(2026, 3, 3), monthFirst));
        // Dotted dates are day first everywhere.
        Assert.Equal(new DateOnly(2026, 6, 4), ReturnDates.Find("Back on 04.06.", new DateOnly(2026, 3, 3), monthFirst));
    }

    [Theory]
    // A day without a month is the next such day after the message's (sent on Monday 30 November 2026)…
    [InlineData("I am out of the office and back on the 7th.", "2026-11-30", "2026-12-07")]
    [InlineData("I'll be back on Monday the 7th.", "2026-11-30", "2026-12-07")]
    [InlineData("I am out of the office until the 7th.", "2026-11-30", "2026-12-07")]
    [InlineData("Ich bin ab dem 7. wieder im Büro.", "2026-11-30", "2026-12-07")]
    [InlineData("Je suis absent, de retour le 7.", "2026-11-30", "2026-12-07")]
    [InlineData("Estoy de vacaciones, de vuelta el día 7.", "2026-11-30", "2026-12-07")]
    [InlineData("Ik ben afwezig en terug op de 7e.", "2026-11-30", "2026-12-07")]
    [InlineData("Sono in ferie, di ritorno il 7.", "2026-11-30", "2026-12-07")]
    [InlineData("Estou de férias, de volta no dia 7.", "2026-11-30", "2026-12-07")]
    // …that day itself or the day before (time zones: dated in UTC, written the evening before), else in the next month
    // once it has passed this month, past the year's end in December…
    [InlineData("Back on the 7th.", "2026-12-07", "2026-12-07")]
    [InlineData("Back on the 7th.", "2026-12-08", "2026-12-07")]
    [InlineData("Back on the 7th.", "2026-12-09", "2027-01-07")]
    [InlineData("Back on the 7th.", "2026-11-10", "2026-12-07")]
    [InlineData("De retour le 4.", "2026-12-21", "2027-01-04")]
    [InlineData("Back on the 12th.", "2026-11-03", "2026-11-12")]
    // …and in the first month that has it.
    [InlineData("Back on the 31st.", "2026-11-05", "2026-12-31")]
    [InlineData("Back on the 30th.", "2027-02-01", "2027-03-30")]
    // A number that is not a day: a count, a time, a floor.
    [InlineData("I am on leave and back in 2 weeks.", "2026-11-30", null)]
    [InlineData("I am away today, back at 3 pm.", "2026-11-30", null)]
    [InlineData("I am on holiday. Returning 7 days from now.", "2026-11-30", null)]
    public void A_day_without_a_month_is_the_next_such_day(string text, string sent, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, DateOnly.Parse(sent, CultureInfo.InvariantCulture), monthFirstDefault: false));
    }

    [Fact]
    public void A_day_without_a_month_in_a_notice_dated_in_utc_is_the_writers_day_not_next_months()
    {
        // Written in California on the evening of Sunday 6 December ("back tomorrow, the 7th"); the server that sent the
        // notice dated it in UTC, already the 7th. A day's slack for time zones, as for a date with a month.
        var result = NoticeFrom("tom@buyer.com", "I am out of the office and back on the 7th.",
            new DateTimeOffset(2026, 12, 7, 4, 30, 0, TimeSpan.Zero));
        Assert.Equal(new DateOnly(2026, 12, 7), result.ReturnDate);
        // The same with the month named has always been read so.
        Assert.Equal(new DateOnly(2026, 12, 7), NoticeFrom("tom@buyer.com", "I am out of the office and back on 7 December.",
            new DateTimeOffset(2026, 12, 7, 4, 30, 0, TimeSpan.Zero)).ReturnDate);
        // Dated in UTC on the 1st, written on the evening of 30 November: this month's 30th is a month too far.
        Assert.Equal(new DateOnly(2026, 11, 30), ReturnDates.Find("Back on the 30th.", new DateOnly(2026, 12, 1), monthFirstDefault: false));
    }

    [Theory]
    // The names Outlook and other clients give their notices, and bare states before a colon or alone, in Swedish,
    // Danish, Norwegian, Finnish, Polish, Czech, Turkish, Japanese and Chinese: the subject alone decides.
    [InlineData("Automatiskt svar: Offert Q1")]
    [InlineData("Frånvaro")]
    [InlineData("Automatisk svar: Tilbud")]
    [InlineData("Fraværende: Tilbud")]
    [InlineData("Automaattinen vastaus: Tarjous")]
    [InlineData("Poissa")]
    [InlineData("Odpowiedź automatyczna: Oferta")]
    [InlineData("Nieobecność: Oferta")]
    [InlineData("Automatická odpověď: Nabídka")]
    [InlineData("Mimo kancelář")]
    [InlineData("Otomatik yanıt: Teklif")]
    [InlineData("İzindeyim")]
    [InlineData("自動応答: お見積りについて")]
    [InlineData("【自動返信】お見積りについて")]
    [InlineData("不在：お見積りについて")]
    [InlineData("自动回复：报价")]
    public void A_robots_subject_in_the_new_languages_decides(string subject)
    {
        var result = Classifier.Classify(Reply("Hej.", subject));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.StartsWith("subject starts with", result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    // A person's subject that names an absence, or answers a robot's: one cue among others, not a verdict.
    [InlineData("SV: Frånvaro nästa vecka")]
    [InlineData("Poissa ensi viikolla – siirretäänkö palaveri?")]
    [InlineData("Odp: Odpowiedź automatyczna: Oferta")]
    [InlineData("YNT: Otomatik yanıt: Teklif")]
    [InlineData("答复: 自动回复: 报价")]
    public void A_persons_subject_in_the_new_languages_does_not_decide(string subject)
    {
        var result = Classifier.Classify(Reply("Tack, det låter bra. Vi hörs.", subject));
        Assert.Equal(InboundKind.Human, result.Kind);
    }

    [Theory]
    // Written in California on the evening of Sunday 6 December, dated by a server in UTC (Exchange Online writes every
    // Date in UTC): already Monday 7 December there. "Back on Monday" is the next morning, not a week later.
    [InlineData("I am out of the office and back on Monday.", "2026-12-07T04:30:00+00:00", "2026-12-07")]
    [InlineData("I am out of the office until Monday.", "2026-12-07T04:30:00+00:00", "2026-12-07")]
    [InlineData("Ich bin nicht im Büro und ab Montag wieder erreichbar.", "2026-12-07T09:59:00+00:00", "2026-12-07")]
    // The same notice with the writer's own offset: its day is the Date's day.
    [InlineData("I am out of the office and back on Monday.", "2026-12-06T20:30:00-08:00", "2026-12-07")]
    // Monday by the writer's own clock: the Monday after.
    [InlineData("I am out of the office and back on Monday.", "2026-12-07T04:30:00-08:00", "2026-12-14")]
    [InlineData("I am out of the office and back on Monday.", "2026-12-07T08:30:00+01:00", "2026-12-14")]
    // From 10:00 UTC it is Monday everywhere people live in the Americas too (Hawaii, UTC-10, last).
    [InlineData("I am out of the office and back on Monday.", "2026-12-07T10:00:00+00:00", "2026-12-14")]
    // Other weekdays are not touched: Tuesday is ahead on either day.
    [InlineData("I am out of the office and back on Tuesday.", "2026-12-07T04:30:00+00:00", "2026-12-08")]
    public void A_weekday_in_a_notice_dated_in_utc_is_read_from_the_writers_day(string body, string sent, string expected)
    {
        var result = NoticeFrom("tom@buyer.com", body, DateTimeOffset.Parse(sent, CultureInfo.InvariantCulture));
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Theory]
    // "Next week" as the return is the Monday of the week after the message's (sent on Wednesday 2 December 2026)…
    [InlineData("I am out of the office and back next week.", "2026-12-07")]
    [InlineData("I am out of the office until next week.", "2026-12-07")]
    [InlineData("Ich bin im Urlaub und nächste Woche wieder da.", "2026-12-07")]
    [InlineData("Ich bin im Urlaub, ab nächster Woche bin ich wieder im Büro.", "2026-12-07")]
    [InlineData("Ich bin bis nächste Woche im Urlaub.", "2026-12-07")]
    [InlineData("Je suis absent, de retour la semaine prochaine.", "2026-12-07")]
    [InlineData("Estoy de vacaciones, regreso la semana que viene.", "2026-12-07")]
    [InlineData("Estoy fuera hasta la próxima semana.", "2026-12-07")]
    [InlineData("Estou de férias e volto na próxima semana.", "2026-12-07")]
    [InlineData("Estou de férias, de volta na semana que vem.", "2026-12-07")]
    [InlineData("Sono in ferie fino alla prossima settimana.", "2026-12-07")]
    [InlineData("Sono in ferie, rientro la settimana prossima.", "2026-12-07")]
    [InlineData("Ik ben met vakantie en volgende week terug.", "2026-12-07")]
    [InlineData("Ik ben afwezig tot volgende week.", "2026-12-07")]
    // …while a wording that does not say when gives no date, and a date the text names wins.
    [InlineData("I am out of the office and will be back soon.", null)]
    [InlineData("I am out of the office, back later.", null)]
    [InlineData("I am out of the office this week and next week, back on 14 December.", "2026-12-14")]
    [InlineData("Our team will be available to help next week.", null)]
    public void Next_week_as_the_return_is_the_monday_after_the_message(string text, string? expected)
    {
        Assert.Equal(expected is null ? null : DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            ReturnDates.Find(text, new DateOnly(2026, 12, 2), monthFirstDefault: false));
    }

    [Fact]
    public void Next_week_on_a_sunday_is_the_next_day_and_on_a_monday_a_week_later()
    {
        Assert.Equal(new DateOnly(2026, 12, 7), ReturnDates.Find("Back next week.", new DateOnly(2026, 12, 6), monthFirstDefault: false));
        Assert.Equal(new DateOnly(2026, 12, 14), ReturnDates.Find("Back next week.", new DateOnly(2026, 12, 7), monthFirstDefault: false));
        Assert.Equal(new DateOnly(2027, 1, 4), ReturnDates.Find("Back next week.", new DateOnly(2026, 12, 31), monthFirstDefault: false));
    }

    [Theory]
    // Monday 23:30 in California (Tuesday 07:30 UTC): tomorrow is Tuesday there, not Wednesday.
    [InlineData("2026-11-23T23:30:00-08:00", "I am out of the office and back tomorrow.", "2026-11-24", -480)]
    // Tuesday 00:30 in Tokyo (Monday 15:30 UTC): tomorrow is Wednesday there, not Tuesday.
    [InlineData("2026-11-24T00:30:00+09:00", "I am out of the office and back tomorrow.", "2026-11-25", 540)]
    // Sunday 22:00 in New York is Monday 03:00 in UTC: the 30th is tomorrow, by the writer's calendar.
    [InlineData("2026-11-29T22:00:00-05:00", "I am out of the office and back on the 30th.", "2026-11-30", -300)]
    public void Relative_return_dates_are_read_by_the_clock_of_the_notices_own_Date_and_its_offset_is_kept(string sent, string body, string expected, int offsetMinutes)
    {
        var result = NoticeFrom("tom@buyer.com", body, DateTimeOffset.Parse(sent, CultureInfo.InvariantCulture));
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture), result.ReturnDate);
        Assert.Equal(TimeSpan.FromMinutes(offsetMinutes), result.ReturnDateOffset);
        // A notice without a date keeps no offset.
        Assert.Null(NoticeFrom("tom@buyer.com", "I am out of the office.", DateTimeOffset.Parse(sent, CultureInfo.InvariantCulture)).ReturnDateOffset);
    }

    private static InboundClassification NoticeFrom(string from, string body, DateTimeOffset sent, params (string Name, string Value)[] headers)
    {
        var message = Reply(body, "Automatic reply: Pricing for the Q2 rollout", [("Auto-Submitted", "auto-replied"), .. headers]);
        message.From.Clear();
        message.From.Add(new MailboxAddress("Tom Buyer", from));
        message.Date = sent;
        return Classifier.Classify(message);
    }

    private static readonly DateTimeOffset FirstOfMarch = new(2027, 3, 1, 9, 0, 0, TimeSpan.Zero);

    [Theory]
    // The sender's country: day first in Britain, Ireland, Australia, New Zealand, India, South Africa, Germany…
    [InlineData("tom@buyer.co.uk", "2027-04-03")]
    [InlineData("tom@buyer.ie", "2027-04-03")]
    [InlineData("tom@buyer.com.au", "2027-04-03")]
    [InlineData("tom@buyer.co.nz", "2027-04-03")]
    [InlineData("tom@buyer.co.in", "2027-04-03")]
    [InlineData("tom@buyer.co.za", "2027-04-03")]
    [InlineData("tom@buyer.de", "2027-04-03")]
    // …month first in the United States; .com and the like tell nothing, and the English default (month first) holds.
    [InlineData("tom@buyer.us", "2027-03-04")]
    [InlineData("tom@buyer.edu", "2027-03-04")]
    [InlineData("tom@buyer.com", "2027-03-04")]
    [InlineData("tom@buyer.io", "2027-03-04")]
    [InlineData("tom@buyer.co", "2027-03-04")]
    public void A_numeric_return_date_in_english_is_read_in_the_senders_countrys_order(string from, string expected)
    {
        var result = NoticeFrom(from, "I am out of the office and back on 03/04/2027 with limited access to email.", FirstOfMarch);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Theory]
    // Another date in the text that can only be day first (25/12) or only month first (12/25) says how this one is written,
    // whatever the domain says.
    [InlineData("tom@buyer.com", "I am out of the office from 25/02/2027 and back on 03/04/2027.", "2027-04-03")]
    [InlineData("tom@buyer.us", "I am out of the office from 25/02/2027 and back on 03/04/2027.", "2027-04-03")]
    [InlineData("tom@buyer.co.uk", "I am out of the office from 02/25/2027 and back on 03/04/2027.", "2027-03-04")]
    // A phone number with a day-first country's code, or the notice written in another of the seven languages too.
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027. Urgent matters: +44 20 7946 0958.", "2027-04-03")]
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027.\nIch bin bis 02.04.2027 nicht im Büro.", "2027-04-03")]
    // …Sweden, Denmark, Norway, Finland, Poland, the Czech Republic and Turkey among them.
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027. Urgent matters: +46 8 123 456 00.", "2027-04-03")]
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027. Urgent matters: +420 222 333 444.", "2027-04-03")]
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027.\nJestem na urlopie do 2 kwietnia.", "2027-04-03")]
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027.\nKiitos viestistäsi, olen lomalla.", "2027-04-03")]
    // A US cue: a phone number with +1, a US time zone.
    [InlineData("tom@buyer.com", "I am out of the office and back on 03/04/2027. Urgent matters: +1 (212) 555-0100.", "2027-03-04")]
    // Cues that disagree tell nothing: the English default holds.
    [InlineData("tom@buyer.de", "I am out of the office and back on 03/04/2027, 9am Eastern Time. Urgent: +1 (212) 555-0100.", "2027-03-04")]
    public void Other_evidence_in_the_notice_decides_a_numeric_dates_order(string from, string body, string expected)
    {
        var result = NoticeFrom(from, body, FirstOfMarch);
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Theory]
    // The Date header's offset: Europe to India and Australasia write the day first; UTC (servers) and +09:00 (Japan, Korea,
    // month before day) tell nothing.
    [InlineData(10, "2027-04-03")]
    [InlineData(1, "2027-04-03")]
    [InlineData(5.5, "2027-04-03")]
    [InlineData(0, "2027-03-04")]
    [InlineData(9, "2027-03-04")]
    [InlineData(-5, "2027-03-04")]
    public void The_date_headers_offset_is_a_hint_too(double hours, string expected)
    {
        var sent = new DateTimeOffset(2027, 3, 1, 9, 0, 0, TimeSpan.FromHours(hours));
        Assert.Equal(DateOnly.Parse(expected, CultureInfo.InvariantCulture),
            NoticeFrom("tom@buyer.com", "I am out of the office and back on 03/04/2027.", sent).ReturnDate);
    }

    [Fact]
    public void A_content_language_header_still_decides_over_the_domain()
    {
        Assert.Equal(new DateOnly(2027, 3, 4),
            NoticeFrom("tom@buyer.co.uk", "I am out of the office and back on 03/04/2027.", FirstOfMarch, ("Content-Language", "en-US")).ReturnDate);
        Assert.Equal(new DateOnly(2027, 4, 3),
            NoticeFrom("tom@buyer.com", "I am out of the office and back on 03/04/2027.", FirstOfMarch, ("Content-Language", "en-GB")).ReturnDate);
    }

    [Theory]
    // Digits of other scripts (Arabic-Indic, Persian, Devanagari) are digits to a regular expression's \d but not to
    // int.Parse: a notice with such a date is still an auto-reply, with no return date read from them, not an exception.
    [InlineData("أنا خارج المكتب حتى ١٥/١٢/٢٠٢٦")]
    [InlineData("من تا ۱۵/۱۲/۲۰۲۶ در مرخصی هستم")]
    [InlineData("I am out of the office and back on the ٧th.")]
    [InlineData("I am out of the office and back on ٠٣/٠٤/٢٠٢٧ - urgent: +1 (212) 555-0100.")]
    [InlineData("मैं कार्यालय से बाहर हूँ, back on १५-१२-२०२६")]
    public void A_notice_with_digits_of_another_script_is_an_auto_reply_not_an_exception(string body)
    {
        var result = NoticeFrom("tom@buyer.com", body, FirstOfMarch);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Null(result.ReturnDate);
    }

    [Theory]
    [InlineData("Thank you for your email. I no longer work at Encom. For sales questions please contact lora@encom.example.", true)]
    [InlineData("Alan Bradley has left the company. Your message has not been forwarded; please write to info@encom.example.", true)]
    [InlineData("This email address is no longer in use. Please update your records.", true)]
    [InlineData("Vielen Dank für Ihre Nachricht. Ich bin nicht mehr im Unternehmen tätig. Bitte wenden Sie sich an info@encom.example.", true)]
    [InlineData("Merci pour votre message. Je ne travaille plus chez Encom depuis le 1er novembre.", true)]
    [InlineData("Gracias por su mensaje. Ya no trabajo en Encom; escriba a ventas@encom.example.", true)]
    [InlineData("Obrigado pela sua mensagem. Já não trabalho na Encom.", true)]
    [InlineData("Grazie per il messaggio. Non lavoro più in Encom, scriva a info@encom.example.", true)]
    [InlineData("Bedankt voor uw bericht. Ik werk niet meer bij Encom.", true)]
    // Away, not gone.
    [InlineData("Thank you for your email. I am on leave until 12 March with no access to email.", false)]
    [InlineData("I am out of the office and no longer checking email today; back tomorrow.", false)]
    [InlineData("I am travelling and no longer at my desk this week; back on Monday.", false)]
    [InlineData("I'm no longer at Encom. Please write to info@encom.example.", true)]
    public void An_auto_reply_says_whether_its_author_has_left_for_good(string body, bool departed)
    {
        var result = Classifier.Classify(Reply(body, "Automatic reply: Proposal for the Q3 rollout", ("Auto-Submitted", "auto-replied")));
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.True(departed == result.Departed, $"{body}: {result.Reason}");
    }

    [Fact]
    public void A_person_saying_a_colleague_has_left_is_a_reply_and_says_nothing_of_a_departure()
    {
        var result = Classifier.Classify(Reply("Hi Jane, Alan no longer works here and has left the company - I'm taking over his accounts. Can we talk on Tuesday?"));
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.False(result.Departed);
    }

    [Theory]
    [InlineData("noreply", true)]
    [InlineData("no-reply", true)]
    [InlineData("No_Reply", true)]
    [InlineData("do-not-reply", true)]
    [InlineData("donotreply", true)]
    [InlineData("noreply-support", true)]
    [InlineData("no-reply+tickets", true)]
    [InlineData("no.reply", true)]
    [InlineData("nora", false)]
    [InlineData("reply", false)]
    [InlineData("noel.reyes", false)]
    [InlineData("replies", false)]
    [InlineData("", false)]
    public void A_no_reply_address_is_known_by_its_local_part(string localPart, bool noReply)
    {
        Assert.Equal(noReply, AutoReplyRules.IsNoReplyAddress(localPart));
    }

    [Fact]
    public void An_answer_from_a_no_reply_address_is_an_auto_reply_whatever_it_says()
    {
        var message = Reply("Thanks for your email. We will be in touch.");
        message.From.Clear();
        message.From.Add(new MailboxAddress("Buyer Inc.", "no-reply@buyer.example"));
        var result = Classifier.Classify(message);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Contains("no-reply address", result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    // A help desk's acknowledgement that says it is automatic: the acknowledgement's words add to that statement.
    [InlineData("This is an automated response. We have received your request and a member of our team will contact you. Your ticket number is #48213.", InboundKind.AutoReply)]
    [InlineData("Ceci est une réponse automatique. Nous avons bien reçu votre demande et vous répondrons sous 24 heures.", InboundKind.AutoReply)]
    [InlineData("Dies ist eine automatische Antwort. Ihre Anfrage ist bei uns eingegangen, Ticketnummer 4711.", InboundKind.AutoReply)]
    // Without the statement a person wrote it (an agent, a colleague): the acknowledgement alone decides nothing.
    [InlineData("We received your request and I passed it to procurement, ticket number 4711. Please do not reply to this email, use the portal.", InboundKind.Human)]
    // Nor when they say it is not one.
    [InlineData("This is not an automatic reply, promise! We received your request and logged it as ticket number 4711.", InboundKind.Human)]
    [InlineData("Sorry, no auto-reply here: we have received your message and will call you on Thursday.", InboundKind.Human)]
    public void A_help_desks_acknowledgement_counts_beside_an_automatic_statement_and_not_alone(string body, InboundKind kind)
    {
        var result = Classifier.Classify(Reply(body, "Re: Proposal for the Q3 rollout"));
        Assert.True(kind == result.Kind, result.Reason);
    }

    private const string LongOpening = "Hi Jane, thanks a lot for the call on Monday and for the detailed proposal. We went through it with the team " +
        "yesterday afternoon and there are a few points on the rollout plan and the training days that we would like to look at together. The " +
        "second phase looks ambitious given our own migration in September, and finance will want to see the payment schedule split over two " +
        "quarters rather than one. Apart from that the scope matches what we discussed, and the references you sent were helpful. On the legal " +
        "side our counsel is reviewing the data processing terms, which usually takes a week or so, and procurement has its own forms for new " +
        "suppliers that we will send over once the terms are settled. ";

    [Theory]
    // A help desk's acknowledgement in its own words, beside a ticket system's marks: a robot, with no header and no
    // automatic statement.
    [InlineData("support@buyer.example", "Your request (48213) has been received and is being reviewed by our support staff.\n\nTo add additional comments, reply to this email.", InboundKind.AutoReply)]
    [InlineData("tom@buyer.example", "Thanks for your email. A new ticket has been created: Ticket#2026120110000012. Your email will be answered by a human as soon as possible.", InboundKind.AutoReply)]
    [InlineData("info@buyer.example", "Wir haben Ihre Anfrage erhalten. Bitte antworten Sie nicht auf diese E-Mail.", InboundKind.AutoReply)]
    // A ticket number and nothing only a ticket system writes: a person may write that; nor does a mark said twice count twice.
    [InlineData("tom@buyer.example", "We have received your request, ticket 4711.", InboundKind.Human)]
    [InlineData("tom@buyer.example", "We have received your request. Please do not reply to this email.\n\nAgain: please do not reply to this email.", InboundKind.Human)]
    // Cues, but no mark of a ticket system (the team's promise, a team's address): a person at a shared inbox.
    [InlineData("support@buyer.example", "We have received your message and will get back to you within two days.", InboundKind.Human)]
    // A person speaking, before the acknowledgement or in its paragraph.
    [InlineData("support@buyer.example", "Hi Jane, I checked: your request (48213) has been received and our team will reply within 24 hours. Please do not reply to this email.", InboundKind.Human)]
    [InlineData("support@buyer.example", "Your request (48213) has been received, and I will look at it myself tomorrow. Please do not reply to this email.", InboundKind.Human)]
    [InlineData("ondersteuning@koper.example.nl", "Wij hebben uw verzoek in goede orde ontvangen, ik bel u morgen. Uw ticketnummer is 48213, zo snel mogelijk.", InboundKind.Human)]
    // An acknowledgement a long way down: a person's text that gets to it.
    [InlineData("support@buyer.example", LongOpening + "Your request (48213) has been received and is being reviewed by our support staff. To add additional comments, reply to this email.", InboundKind.Human)]
    public void A_help_desks_acknowledgement_is_known_by_its_words_beside_a_ticket_systems_marks(string from, string body, InboundKind kind)
    {
        var message = Reply(body, "Re: Proposal for the Q3 rollout");
        message.From.Clear();
        message.From.Add(new MailboxAddress("Buyer", from));
        var result = Classifier.Classify(message);
        Assert.True(kind == result.Kind, result.Reason);
        if (kind == InboundKind.AutoReply)
            Assert.StartsWith("help desk acknowledgement without an auto-reply header: ", result.Reason, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("X-Zendesk-From-Account-Id", "1a2b3c", "Zendesk")]
    [InlineData("X-Mailer", "Zendesk Mailer", "Zendesk")]
    [InlineData("X-ServiceNow-Generated", "true", "ServiceNow")]
    public void Auto_generated_from_a_help_desk_that_marks_all_its_mail_so_decides_nothing(string name, string value, string system)
    {
        // Zendesk documents Auto-Submitted: auto-generated and X-Auto-Response-Suppress: All as on every mail it sends, its
        // agents' answers too.
        var agent = Classifier.Classify(Reply(PersonalReply, headers: [(name, value), ("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")]));
        Assert.True(agent.Kind == InboundKind.Human, agent.Reason);
        Assert.Contains($"an agent's answer through {system}", agent.Reason, StringComparison.Ordinal);
        // The same headers from anyone else still decide; and auto-replied is a robot's answer, whoever sends it.
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply(PersonalReply, headers: [("Auto-Submitted", "auto-generated"), ("X-Auto-Response-Suppress", "All")])).Kind);
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply(PersonalReply, headers: [(name, value), ("Auto-Submitted", "auto-replied")])).Kind);
        Assert.Equal(InboundKind.AutoReply, Classifier.Classify(Reply(PersonalReply, headers: [(name, value), ("X-Autoreply", "yes")])).Kind);
        // An out-of-office notice sent through it is still one, by its words.
        var away = Classifier.Classify(Reply("I am out of the office until 12 March with no access to email. For urgent matters contact Ben.", "Out of office",
            headers: [(name, value), ("Auto-Submitted", "auto-generated")]));
        Assert.Equal(InboundKind.AutoReply, away.Kind);
    }

    [Theory]
    // A machine saying what it is decides alone, in each language's own words (accents and all).
    [InlineData("Estou protegendo minha caixa de entrada contra spam. Por favor, confirme que é uma pessoa clicando no link abaixo.")]
    [InlineData("Su mensaje a la lista ventas está pendiente de aprobación del moderador.")]
    [InlineData("Votre message à la liste ventes est en attente d'approbation par le modérateur.")]
    [InlineData("Sua mensagem para a lista vendas aguarda aprovação do moderador.")]
    [InlineData("Your mail to 'Sales-team' with the subject Pricing: Post by non-member to a members-only list.")]
    public void A_machine_saying_what_it_is_is_an_auto_reply_in_each_language(string body)
    {
        var result = Classifier.Classify(Reply(body, "Re: Proposal for the Q3 rollout"));
        Assert.True(result.Kind == InboundKind.AutoReply, result.Reason);
        Assert.StartsWith("a machine's own words: ", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_delivery_success_notice_is_a_receipt_neither_a_bounce_nor_an_auto_reply()
    {
        var report = new MultipartReport("delivery-status")
        {
            new TextPart("plain") { Text = "Your message was delivered to the following recipient." },
            new MessageDeliveryStatus(),
        };
        var status = (MessageDeliveryStatus)report[1];
        var perMessage = new HeaderList { { "Reporting-MTA", "dns; mx.buyer.example" } };
        var perRecipient = new HeaderList
        {
            { "Final-Recipient", "rfc822; tom@buyer.example" },
            { "Action", "delivered" },
            { "Status", "2.0.0" },
        };
        status.StatusGroups.Add(perMessage);
        status.StatusGroups.Add(perRecipient);
        var message = new MimeMessage { Subject = "Delivery Status Notification (Success)", Body = report };
        message.From.Add(new MailboxAddress("Mail Delivery System", "MAILER-DAEMON@mx.sellerco.example"));
        message.To.Add(new MailboxAddress("Jane Seller", "jane@sellerco.example"));

        var result = Classifier.Classify(message);
        // Not an auto-reply: that would pause a sequence for a week on a notice that only says the mail arrived.
        Assert.Equal(InboundKind.Receipt, result.Kind);
        Assert.Contains("delivery success", result.Reason, StringComparison.Ordinal);
        Assert.Equal("delivered", result.Disposition);
        Assert.False(result.Opened);
        var recipient = Assert.Single(result.Recipients);
        Assert.Equal(("tom@buyer.example", "2.0.0", BounceCause.Delivered, false), (recipient.Address, recipient.Status, recipient.Cause, recipient.Permanent));
        Assert.Null(result.Status);
        Assert.Null(result.Permanent);
    }
}
