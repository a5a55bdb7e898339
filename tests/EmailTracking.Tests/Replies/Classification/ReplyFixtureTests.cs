using EmailTracking.Server.Replies.Classification;
using Xunit.Abstractions;

namespace EmailTracking.Tests.Replies.Classification;

/// <summary>
/// Our own fixtures: people's replies from the common clients in seven languages, several of which mention being out of
/// the office in passing (none may be called a robot), and out-of-office notices, most of them without any auto-reply
/// header, whose stated return date must be read.
/// </summary>
public sealed class ReplyFixtureTests(ITestOutputHelper output)
{
    private static readonly InboundClassifier Classifier = new();

    private static string FixturePath(string relative) =>
        Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", relative.Replace('/', Path.DirectorySeparatorChar));

    private static InboundClassification Classify(string relative)
    {
        using var stream = File.OpenRead(FixturePath(relative));
        return Classifier.ClassifyStream(stream);
    }

    private static List<string> HumanFiles() =>
        Directory.GetFiles(Path.Combine(AppContext.BaseDirectory, "Replies", "Fixtures", "human"), "*.eml")
            .Select(p => "human/" + Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();

    public static TheoryData<string> HumanReplies() => new(HumanFiles());

    [Theory]
    [MemberData(nameof(HumanReplies))]
    public void A_persons_reply_is_human_even_when_it_mentions_being_away(string file)
    {
        var result = Classify(file);
        output.WriteLine($"{file}: {result.Kind} — {result.Reason}");
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Empty(result.Recipients);
        Assert.Null(result.ReturnDate);
    }

    [Fact]
    public void The_human_fixtures_cover_the_clients_and_languages()
    {
        var names = HumanFiles();
        Assert.True(names.Count >= 10, string.Join(", ", names));
        foreach (var client in (string[])["gmail", "outlook", "applemail", "thunderbird", "iphone", "android"])
            Assert.Contains(names, n => n.Contains(client, StringComparison.Ordinal));
        foreach (var language in (string[])["-en-", "-de-", "-fr-", "-es-", "-pt-", "-it-", "-nl-", "-sv-", "-da-", "-no-", "-fi-", "-pl-", "-cs-", "-tr-", "-ja-", "-zh-"])
            Assert.Contains(names, n => n.Contains(language, StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("auto/en-back-on.eml", "2026-03-12")]
    [InlineData("auto/de-zurueck-am.eml", "2026-04-03")]
    [InlineData("auto/fr-de-retour-le.eml", "2026-01-05")]
    [InlineData("auto/es-regreso-el.eml", "2026-02-10")]
    [InlineData("auto/pt-volto-dia.eml", "2026-05-02")]
    [InlineData("auto/it-rientro-il.eml", "2026-04-07")]
    [InlineData("auto/nl-terug-op.eml", "2026-06-14")]
    [InlineData("auto/en-us-numeric.eml", "2026-04-06")]
    [InlineData("auto/en-gb-numeric.eml", "2026-06-04")]
    [InlineData("auto/en-iso-date.eml", "2026-03-23")]
    [InlineData("auto/en-weekday.eml", "2026-03-09")]
    [InlineData("auto/en-no-date.eml", null)]
    [InlineData("auto/exchange-oof-en.eml", "2026-03-09")]
    [InlineData("auto/gmail-vacation-es.eml", "2026-04-15")]
    [InlineData("auto/es-vuelvo-el.eml", "2024-12-09")]
    [InlineData("auto/it-rientro-in-ufficio-il.eml", "2024-12-09")]
    [InlineData("auto/fr-minimal-des-mon-retour.eml", "2024-12-09")]
    // A date that neither this year nor the next has is the notice's mistake: no date, rather than a pause of years.
    [InlineData("auto/en-29-february-not-a-leap-year.eml", null)]
    // Swedish, Danish, Norwegian, Finnish, Polish, Czech, Turkish, Japanese and Chinese: Exchange's notices (headers and
    // Outlook's subject), a Gmail vacation reply, and notices of clients that set no header.
    [InlineData("auto/sv-exchange-till-och-med.eml", "2027-01-06")]
    [InlineData("auto/sv-noheader-ater.eml", "2027-01-11")]
    [InlineData("auto/da-exchange-tilbage.eml", "2027-01-04")]
    [InlineData("auto/da-noheader-indtil-fredag.eml", "2026-12-04")]
    [InlineData("auto/no-gmail-til-og-med.eml", "2027-01-03")]
    [InlineData("auto/no-noheader-tilbake.eml", "2026-12-17")]
    [InlineData("auto/fi-exchange-palaan.eml", "2027-01-11")]
    [InlineData("auto/fi-noheader-range.eml", "2026-12-18")]
    [InlineData("auto/pl-exchange-do.eml", "2027-01-08")]
    [InlineData("auto/pl-noheader-wracam.eml", "2027-01-04")]
    [InlineData("auto/cs-exchange-do.eml", "2027-01-08")]
    [InlineData("auto/cs-noheader-vratim-se.eml", "2026-12-21")]
    [InlineData("auto/tr-exchange-tarihine-kadar.eml", "2027-01-04")]
    [InlineData("auto/tr-noheader-donecegim.eml", "2026-12-07")]
    [InlineData("auto/ja-exchange-made.eml", "2027-01-05")]
    [InlineData("auto/ja-noheader-modorimasu.eml", "2027-01-06")]
    [InlineData("auto/zh-exchange-jiangyu.eml", "2027-01-04")]
    [InlineData("auto/zh-noheader-huilai.eml", "2027-01-04")]
    // Not out-of-office notices, but robots all the same: a help desk's acknowledgement without any auto-reply header,
    // and an answer from a no-reply address.
    [InlineData("auto/en-helpdesk-ticket-acknowledgement.eml", null)]
    [InlineData("auto/en-noreply-not-monitored.eml", null)]
    [InlineData("auto/zendesk-en-request-received.eml", null)]
    [InlineData("auto/freshdesk-en-ticket-received.eml", null)]
    [InlineData("auto/servicenow-en-incident-opened.eml", null)]
    [InlineData("auto/helpdesk-de-anfrage-eingegangen.eml", null)]
    [InlineData("auto/helpdesk-fr-demande-recue.eml", null)]
    [InlineData("auto/helpdesk-es-solicitud-recibida.eml", null)]
    [InlineData("auto/helpdesk-pt-chamado-aberto.eml", null)]
    [InlineData("auto/helpdesk-it-richiesta-ricevuta.eml", null)]
    [InlineData("auto/helpdesk-nl-verzoek-ontvangen.eml", null)]
    public void An_out_of_office_notice_is_an_auto_reply_with_its_return_date(string file, string? returnDate)
    {
        var result = Classify(file);
        output.WriteLine($"{file}: {result.Kind} {result.ReturnDate} — {result.Reason}");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(returnDate is null ? null : DateOnly.Parse(returnDate, System.Globalization.CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Theory]
    [InlineData("auto/de-zurueck-am.eml")]
    [InlineData("auto/fr-de-retour-le.eml")]
    [InlineData("auto/es-regreso-el.eml")]
    [InlineData("auto/pt-volto-dia.eml")]
    [InlineData("auto/it-rientro-il.eml")]
    [InlineData("auto/nl-terug-op.eml")]
    [InlineData("auto/en-back-on.eml")]
    [InlineData("auto/fr-minimal-des-mon-retour.eml")]
    [InlineData("auto/sv-noheader-ater.eml")]
    [InlineData("auto/da-noheader-indtil-fredag.eml")]
    [InlineData("auto/no-noheader-tilbake.eml")]
    [InlineData("auto/fi-noheader-range.eml")]
    [InlineData("auto/pl-noheader-wracam.eml")]
    [InlineData("auto/cs-noheader-vratim-se.eml")]
    [InlineData("auto/tr-noheader-donecegim.eml")]
    [InlineData("auto/ja-noheader-modorimasu.eml")]
    [InlineData("auto/zh-noheader-huilai.eml")]
    public void Header_less_notices_are_recognised_by_their_text(string file)
    {
        var result = Classify(file);
        Assert.StartsWith("out-of-office text without an auto-reply header", result.Reason, StringComparison.Ordinal);
    }

    // Help desks' acknowledgements of a request that say neither that they are automatic nor that anyone is away, most
    // without any auto-reply header: their words acknowledge the request, beside a ticket system's marks.
    [Theory]
    [InlineData("auto/zendesk-en-request-received.eml", "sent by Zendesk")]
    [InlineData("auto/freshdesk-en-ticket-received.eml", "view the status of the ticket")]
    [InlineData("auto/servicenow-en-incident-opened.eml", "sent by ServiceNow")]
    [InlineData("auto/helpdesk-de-anfrage-eingegangen.eml", "a ticket number")]
    [InlineData("auto/helpdesk-fr-demande-recue.eml", "merci de ne pas répondre")]
    [InlineData("auto/helpdesk-es-solicitud-recibida.eml", "a promise of an answer from the team")]
    [InlineData("auto/helpdesk-pt-chamado-aberto.eml", "não responda a este")]
    [InlineData("auto/helpdesk-it-richiesta-ricevuta.eml", "a ticket number")]
    [InlineData("auto/helpdesk-nl-verzoek-ontvangen.eml", "a team's address (klantenservice@…)")]
    public void A_help_desks_acknowledgement_is_recognised_by_its_words_and_marks(string file, string cue)
    {
        var result = Classify(file);
        output.WriteLine($"{file}: {result.Kind} — {result.Reason}");
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.StartsWith("help desk acknowledgement ", result.Reason, StringComparison.Ordinal);
        Assert.Contains(cue, result.Reason, StringComparison.Ordinal);
        Assert.Null(result.ReturnDate);
    }

    // Zendesk and ServiceNow put Auto-Submitted: auto-generated (Zendesk X-Auto-Response-Suppress: All too) on every mail
    // they send: an agent's answer through them is a person's reply all the same.
    [Theory]
    [InlineData("human/zendesk-en-agent-answer.eml", "Zendesk")]
    [InlineData("human/servicenow-en-agent-comment.eml", "ServiceNow")]
    public void An_agents_answer_through_a_help_desk_that_marks_all_its_mail_automatic_is_a_person(string file, string system)
    {
        var result = Classify(file);
        output.WriteLine($"{file}: {result.Kind} — {result.Reason}");
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.StartsWith($"a person's reply: an agent's answer through {system}, whose Auto-Submitted header is on every mail it sends", result.Reason, StringComparison.Ordinal);
    }

    private static List<string> Files(string folder) =>
        Directory.GetFiles(FixturePath(folder), "*.eml").Select(p => folder + "/" + Path.GetFileName(p)).Order(StringComparer.Ordinal).ToList();

    private InboundClassification ClassifyAndSay(string file)
    {
        var result = Classify(file);
        output.WriteLine($"{file}: {result.Kind} {result.ReturnDate} — {result.Reason}");
        return result;
    }

    /// <summary>
    /// For a robot the rules leave human on purpose (it is on <paramref name="leftHuman"/>): asserts it still is, so that
    /// the list and the README's count stay true, and answers true; false for any other file.
    /// </summary>
    private static bool LeftHumanAsListed(string file, InboundClassification result, HashSet<string> leftHuman)
    {
        if (!leftHuman.Contains(Path.GetFileName(file)))
            return false;
        Assert.True(result.Kind == InboundKind.Human, $"recognised now ({result.Reason}): take it off the list of those left human, and the README's count");
        return true;
    }

    // People writing close to a help desk's wording: purchasing, receptionists, shared inboxes staffed by a person, agents
    // answering through Zendesk, colleagues who logged the request as a ticket, in the seven languages. A first version
    // of the help desk rule called 31 of the first 50 robots; the 60 named blind-… were written afterwards without sight
    // of the rule.
    public static TheoryData<string> HelpDeskLookalikes() => new(Files("helpdesk/people"));

    [Theory]
    [MemberData(nameof(HelpDeskLookalikes))]
    public void A_person_writing_like_a_help_desk_is_a_person(string file) => Assert.Equal(InboundKind.Human, ClassifyAndSay(file).Kind);

    // Help desks' acknowledgements without any auto-reply header and without saying they are automatic: the default
    // templates of Zendesk (seven languages), Freshdesk, Zammad, OTRS, osTicket, Kayako, WHMCS, Freshservice, ServiceNow,
    // public bodies and utilities. These show nothing only a ticket system writes, so they are left to be a person's
    // reply on purpose (people write the same words, see above): a missed robot stops a sequence early, a wrong one keeps
    // mailing someone who answered.
    private static readonly HashSet<string> LeftHuman = new(StringComparer.Ordinal)
    {
        "en04-helpscout-autoreply.eml", "en06-hubspot-inbox-no-number.eml", "en08-jsm-request-created.eml", "en10-kayako-new.eml",
        "en12-otrs-default.eml", "en15-salesforce-case-number.eml", "en16-salesforce-received-case.eml", "en17-front-shared-inbox.eml",
        "en18-gorgias.eml", "en20-gmail-canned-smallbiz.eml", "en21-outlook-rule-smallbiz.eml", "en23-county-council.eml",
        "es03-ayuntamiento.eml", "it03-utility.eml", "nl02-topdesk-melding.eml", "nl03-gemeente.eml", "pt02-zoho-pt.eml", "pt03-sac-operadora.eml",
    };

    public static TheoryData<string> HelpDeskAcknowledgements() => new(Files("helpdesk/robots"));

    [Theory]
    [MemberData(nameof(HelpDeskAcknowledgements))]
    public void A_help_desks_acknowledgement_with_a_ticket_systems_mark_is_an_auto_reply(string file)
    {
        var result = ClassifyAndSay(file);
        if (LeftHumanAsListed(file, result, LeftHuman))
            return;
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.StartsWith("help desk acknowledgement ", result.Reason, StringComparison.Ordinal);
        Assert.Null(result.ReturnDate);
    }

    // Written blind to the rules (session 31): 60 people's replies that mention being away, travelling, on leave, a
    // colleague who left; none may be called a robot. Two of them were before a notice's not knowing whom it answers
    // counted ("Thanks for your email Tom", "I've read your proposal"). The 70 named b2-… were written afterwards, blind
    // to the new closure, departure and greeting cues and aimed at them (impersonal greetings, closed offices, people
    // who left or redirect, one-line "OOO till Monday" answers).
    public static TheoryData<string> AwayPeople() => new(Files("away/people"));

    [Theory]
    [MemberData(nameof(AwayPeople))]
    public void A_person_who_mentions_being_away_is_a_person(string file) => Assert.Equal(InboundKind.Human, ClassifyAndSay(file).Kind);

    // People's replies as their companies' mail leaves them (session 32, written blind to the rules): legal disclaimers,
    // "[EXTERNAL]" banners, working-hours notes, planned leave in the signature, assistants, one-line answers, role
    // addresses, in ten languages and many encodings. Two of them were robots with a made-up return date until a
    // sign-off or a question before the absence counted against a notice, and a surname after a title ("Dear Mr
    // Becker", "Sehr geehrter Herr Richter") as naming this sender: outlook-en-leave-sig-hello-no-name.eml and
    // outlook-en-leave-sig-dear-mr-becker.eml.
    public static TheoryData<string> SignaturePeople() => new(Files("signatures"));

    [Theory]
    [MemberData(nameof(SignaturePeople))]
    public void A_person_whose_signature_tells_of_leave_or_carries_a_disclaimer_is_a_person(string file)
    {
        var result = ClassifyAndSay(file);
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Null(result.ReturnDate);
        Assert.False(result.Departed);
    }

    [Theory]
    [InlineData("outlook-en-leave-sig-hello-no-name.eml", "the absence told below the writer's sign-off, a question before the absence statement")]
    [InlineData("outlook-en-leave-sig-dear-mr-becker.eml", "words for this sender (their name, or having read their mail)")]
    [InlineData("outlook-de-sehr-geehrter-herr-richter.eml", "words for this sender (their name, or having read their mail)")]
    public void A_leave_note_under_a_persons_words_says_what_kept_it_human(string file, string against) =>
        Assert.Contains(against, ClassifyAndSay("signatures/" + file).Reason);

    [Theory]
    [InlineData("Saludos,\nMarta")]
    [InlineData("Un saludo,\nMarta")]
    [InlineData("Kind regards,\nMarta")]
    [InlineData("Met vriendelijke groet,\nMarta")]
    public void A_sign_off_before_a_leave_note_counts_whatever_follows_its_comma(string signOff)
    {
        var eml = "From: Marta Ruiz <marta@cliente.example>\r\nTo: ventas@ledgerly.example\r\nSubject: RE: Propuesta\r\n" +
                  "Date: Wed, 02 Dec 2026 10:00:00 +0100\r\nMessage-ID: <m1@cliente.example>\r\nContent-Type: text/plain; charset=utf-8\r\n\r\n" +
                  "Gracias por la información. Lo reviso con el equipo esta semana.\r\n\r\n" + signOff.Replace("\n", "\r\n") +
                  "\r\n\r\nNota: estaré fuera de la oficina del 21 de diciembre al 6 de enero. Para asuntos urgentes, contacte con compras@cliente.example.\r\n";
        var result = Classifier.ClassifyStream(new MemoryStream(System.Text.Encoding.UTF8.GetBytes(eml)));
        output.WriteLine(result.Reason);
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Contains("the absence told below the writer's sign-off", result.Reason);
    }

    // And 60 out-of-office notices without any auto-reply header, as client rules, small hosts and phones send them,
    // in eleven languages: absences, sick and parental leave, conferences, offices closed for the holidays, people who
    // have left. 17 were recognised before this set was written; 45 now. Those left are short or informal enough for
    // a person to have typed them, or quote the original (a person's habit), and stay human on purpose.
    private static readonly HashSet<string> NoticesLeftHuman = new(StringComparer.Ordinal)
    {
        "de02.eml", "de06.eml", "en02.eml", "en05.eml", "en11.eml", "en18.eml", "en19.eml", "en20.eml", "es02.eml", "es06.eml", "it02.eml",
        "nl02.eml", "nl03.eml", "pl02.eml", "pt02.eml",
    };

    public static TheoryData<string> AwayNotices() => new(Files("away/notices"));

    [Theory]
    [MemberData(nameof(AwayNotices))]
    public void A_header_less_out_of_office_notice_is_an_auto_reply(string file)
    {
        var result = ClassifyAndSay(file);
        if (!LeftHumanAsListed(file, result, NoticesLeftHuman))
            Assert.Equal(InboundKind.AutoReply, result.Kind);
    }

    // Other robots a sales email meets, written blind (session 31), most without any auto-reply header: challenge-response
    // spam filters, mailing lists holding or refusing the mail, calendars declining, applications received, addresses
    // changed, contact, privacy, legal and press offices' acknowledgements, routing notices. 11 of 45 were recognised
    // when the set was written (nearly all by their headers); 25 now. Those left say, in words a person could use, that
    // the mail arrived or where to write instead, and stay human on purpose.
    private static readonly HashSet<string> MachinesLeftHuman = new(StringComparer.Ordinal)
    {
        "r13-recruiting-ack-en.eml", "r15-recruiting-ack-de.eml", "r16-recruiting-ack-pt.eml", "r17-recruiting-ack-en.eml", "r19-address-changed-en.eml",
        "r21-address-changed-fr.eml", "r23-address-changed-es.eml", "r24-contact-ack-en.eml", "r25-contact-ack-en.eml", "r27-contact-ack-en.eml",
        "r28-contact-ack-it.eml", "r29-contact-ack-pt.eml", "r31-privacy-gdpr-en.eml", "r33-privacy-gdpr-de.eml", "r34-privacy-gdpr-fr.eml",
        "r35-legal-en.eml", "r38-press-office-en.eml", "r39-press-office-en.eml", "r40-press-office-nl.eml", "r41-forwarded-notice-en.eml",
    };

    public static TheoryData<string> Machines() => new(Files("machines"));

    [Theory]
    [MemberData(nameof(Machines))]
    public void Another_robot_that_a_sales_email_meets_is_an_auto_reply(string file)
    {
        var result = ClassifyAndSay(file);
        if (LeftHumanAsListed(file, result, MachinesLeftHuman))
            return;
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        // Challenge-response filters and mailing lists' moderation say what they are, whatever their headers.
        var name = Path.GetFileName(file);
        if (name.Contains("challenge", StringComparison.Ordinal) || name.Contains("moderation", StringComparison.Ordinal))
            Assert.True(result.Reason.StartsWith("a machine's own words: ", StringComparison.Ordinal) || result.Reason.Contains("header", StringComparison.Ordinal), result.Reason);
    }

    [Theory]
    // The return date of notices recognised by the new wording: the last day away, as for every notice (a sequence
    // resumes the day after), and none where the text gives no day.
    [InlineData("away/notices/en13.eml", "2027-01-01")] // offices closed "through Friday, January 1, 2027", reopening the 4th
    [InlineData("away/notices/it03.eml", "2027-01-06")] // uffici chiusi "dal 24 dicembre al 6 gennaio"
    [InlineData("away/notices/pt05.eml", "2027-01-04")] // em recesso "de 21/12/2026 a 04/01/2027"
    [InlineData("away/notices/ja01.eml", "2027-01-04")] // 12月26日から1月4日まで年末年始休暇
    [InlineData("away/notices/sv02.eml", "2027-01-11")] // tjänstledig, tillbaka måndag 11 januari 2027
    [InlineData("away/notices/es04.eml", null)]         // de baja médica, no date
    public void Notices_recognised_by_their_new_wording_keep_their_return_date(string file, string? returnDate)
    {
        var result = Classify(file);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(returnDate is null ? null : DateOnly.Parse(returnDate, System.Globalization.CultureInfo.InvariantCulture), result.ReturnDate);
    }

    [Theory]
    [InlineData("away/notices/en16.eml")] // "I have left Litware as of 30 November 2026 … This mailbox is no longer monitored."
    [InlineData("away/notices/es05.eml")] // "Ya no trabajo en Soluciones Marinas."
    [InlineData("away/notices/pt04.eml")] // "não faz mais parte da equipe"
    [InlineData("away/notices/it05.eml")] // "non è più in forza presso la nostra azienda"
    public void A_notice_that_its_author_has_left_is_an_auto_reply_marked_departed(string file)
    {
        var result = Classify(file);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.True(result.Departed, result.Reason);
    }

    [Fact]
    public void A_notice_dated_in_the_year_9999_is_read_against_today()
    {
        var today = new Microsoft.Extensions.Time.Testing.FakeTimeProvider(new DateTimeOffset(2026, 11, 29, 9, 0, 0, TimeSpan.Zero));
        using var stream = File.OpenRead(FixturePath("auto/en-dated-year-9999.eml"));
        var result = new InboundClassifier(time: today).ClassifyStream(stream);
        Assert.Equal(InboundKind.AutoReply, result.Kind);
        Assert.Equal(new DateOnly(2027, 1, 3), result.ReturnDate);
    }

    [Theory]
    [InlineData("human/gmail-en-it-admin-sender.eml")]
    [InlineData("human/outlook-en-product-owner-sender.eml")]
    public void A_person_whose_address_looks_like_a_list_managers_is_not_a_mail_system(string file)
    {
        // it-admin@, product-owner@: the shape of a list manager's address, without a list manager's headers.
        var result = Classify(file);
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.DoesNotContain("delivery failure", result.Reason, StringComparison.Ordinal);
    }

    [Fact]
    public void A_near_miss_says_what_it_found_and_what_kept_it_human()
    {
        var result = Classify("human/googlegroup-en-list-noquote.eml");
        Assert.Equal(InboundKind.Human, result.Kind);
        Assert.Contains("out-of-office wording (an absence statement)", result.Reason, StringComparison.Ordinal);
        Assert.Contains("not enough for an auto-reply", result.Reason, StringComparison.Ordinal);
        // "Hi Jane": a notice does not know whom it answers.
        Assert.Contains("words for this sender (their name", result.Reason, StringComparison.Ordinal);
        var phone = Classify("human/iphone-en-noquote-travelling-urgent.eml");
        Assert.Equal(InboundKind.Human, phone.Kind);
        Assert.Contains("a phone's signature and words for this sender (their name, or having read their mail) outweigh", phone.Reason, StringComparison.Ordinal);
    }
}
