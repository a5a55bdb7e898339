using System.Buffers;
using System.Text.RegularExpressions;
using EmailTracking.Server.Web;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Help desks: their acknowledgements of a new request are robots, their agents' answers are people.
/// </summary>
/// <remarks>
/// <para>Mail sent to a company's support or info address is often answered first by its help desk's acknowledgement
/// ("Your request (48213) has been received and is being reviewed by our support staff", Zendesk's; "We would like to
/// acknowledge that we have received your request and a ticket has been created", Freshdesk's; "Your request
/// (Ticket#…) has been received", Zammad's). Many carry no auto-reply header and never say they are automatic, so the
/// out-of-office rules took them for a person, and a sequence stopped. <see cref="Verdict"/> calls such a message an
/// auto-reply when its own words acknowledge a request <i>and</i> it shows something only a ticket system writes
/// ("reply above this line", "do not reply to this email", "view the status of your ticket", a block of the ticket's
/// fields, a help desk's headers) with one more cue beside it (another such mark, a ticket number, "one of our agents
/// will get back to you within 24 hours", a support address), and when its own text shows no person (the first
/// person, "he" or "she", a question): "we received your request and I logged it, ticket 4711" is a colleague.</para>
/// <para>Some help desks put <c>Auto-Submitted: auto-generated</c> and <c>X-Auto-Response-Suppress: All</c> on every
/// mail they send, their agents' answers too (Zendesk documents both as always present; ServiceNow and GLPI do the
/// same with their notifications, agents' comments among them). On mail that <see cref="StampingSystem"/> recognises,
/// those two headers do not decide: an acknowledgement is still an auto-reply by its words, and an agent's answer is a
/// person's reply.</para>
/// </remarks>
internal static partial class HelpDeskRules
{
    /// <summary>
    /// The help desk that sent the message when it is one that marks every mail it sends as automatic, agents' answers
    /// included; null otherwise.
    /// </summary>
    public static string? StampingSystem(MessageView v)
    {
        if (v.HasHeader("X-Zendesk-From-Account-Id") || v.HasHeader("X-Zendesk-Email-Id")
            || (v.Header("X-Mailer") is { } mailer && mailer.Contains("Zendesk", StringComparison.OrdinalIgnoreCase)))
            return "Zendesk";
        if (v.HasHeader("X-ServiceNow-Generated") || v.HasHeader("X-ServiceNow-Source"))
            return "ServiceNow";
        if (v.Subject.Contains("[GLPI #", StringComparison.OrdinalIgnoreCase))
            return "GLPI";
        return null;
    }

    /// <summary>
    /// Words one of which every match of <see cref="Acknowledgement"/> contains, whatever their case: a person's reply
    /// that has none of them costs one vectorised search of its text as it is, before anything is squeezed or lowered.
    /// All ASCII, so that the search stays on its fast path: an alternative whose own verb has an accent ("reçu",
    /// "eröffnet") is found by another of its words ("avons", "votre", "ticket", "vorgang"). Keep it in step with the
    /// pattern.
    /// </summary>
    private static readonly SearchValues<string> AcknowledgementWords = SearchValues.Create(
        ["received", "created", "logged", "opened", "registered", "submitted", "recorded", "raised", "receipt", "got your", "typically replies",
         "erhalten", "eingegangen", "erfasst", "angelegt", "erstellt", "registriert", "eingang", "ticket", "vorgang",
         "confirm", "avons", "votre", "accus", "recu", "enregistr",
         "recibid", "cread", "registrad", "abierto", "recebemos", "recebid", "criad", "abert",
         "ricevut", "registrat", "creato", "aperto", "carico",
         "ontvangen", "aangemaakt", "geregistreerd"], StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether the message is a help desk's acknowledgement of a request; the reason when it is, null otherwise.
    /// </summary>
    /// <remarks>
    /// People write acknowledgements too: a purchasing assistant ("Ihre Anfrage ist bei uns eingegangen, Anfrage-Nr.
    /// 2025-1187, Herr Schulz meldet sich"), a shared inbox ("we received your message, ticket 88213"), a colleague who
    /// logged it. So a ticket number, a promise of an answer and a team's address only add to the evidence; it takes a
    /// help desk's headers or something only a ticket system writes ("reply above this line", "to add additional
    /// comments", "view the status of your ticket", "please do not reply to this email", "has been received and is being
    /// reviewed by our support staff"), and any sign of a person in the help desk's own text (the first person, "he" or
    /// "she", a question) keeps it a person's reply. A wrong "person" stops a sequence early; a wrong "robot" would keep
    /// mailing someone who answered.
    /// </remarks>
    /// <param name="top">The text above any quoted original.</param>
    /// <param name="system">The help desk <see cref="StampingSystem"/> recognised, or null.</param>
    public static string? Verdict(MessageView v, string top, string? system)
    {
        if (!top.AsSpan(0, Math.Min(top.Length, 4000)).ContainsAny(AcknowledgementWords))
            return null;
        // The help desk's own words: a Zendesk acknowledgement goes on with the request it acknowledges (our own mail,
        // under its author's name and a date), OTRS's after "You wrote:"; an agent's comment in a Zendesk mail starts
        // the same way, so an acknowledgement inside it is the agent's.
        var ownText = OwnText(top);
        var own = TextTools.Squeeze(ownText, 2500, lower: true).Replace('\u2019', '\'');
        var acknowledgement = Acknowledgement().Match(own);
        // A help desk acknowledges at once, near the top (after a greeting or its "reply above this line" marker); a
        // text that gets to it only after a long while is a person's.
        if (!acknowledgement.Success || acknowledgement.Index > 600)
            return null;
        // Links and addresses are not words: "https://my.example/view.php?id=1" says neither "my" nor asks anything.
        if (Person().IsMatch(Link().Replace(own, " ")))
            return null;

        var cues = new List<string>();
        var strong = 0;
        var points = 0;
        if (system is not null)
        {
            cues.Add($"sent by {system}");
            strong++;
            points += 2;
        }
        // Each mark once, however often the text repeats it.
        foreach (var marker in SystemMarker().Matches(own).Select(m => m.Value).Distinct(StringComparer.Ordinal))
        {
            cues.Add($"\"{marker}\"");
            strong++;
            points++;
        }
        // A ticket's fields, each on its own line: "Ticket ID: 61542", "Subject: …", "Status: Open", "Priority: Medium".
        if (TicketField().Count(ownText) >= 2)
        {
            cues.Add("a ticket's fields");
            strong++;
            points++;
        }
        if (TicketReference().IsMatch(v.Subject) || TicketReference().IsMatch(own))
        {
            cues.Add("a ticket number");
            points++;
        }
        if (TeamPromise().IsMatch(own))
        {
            cues.Add("a promise of an answer from the team");
            points++;
        }
        if (RoleAddress().IsMatch(v.FromLocalPart))
        {
            cues.Add($"a team's address ({v.FromLocalPart}@…)");
            points++;
        }
        if (strong == 0 || points < 2)
            return null;
        var headers = system is not null && (v.HasHeader("Auto-Submitted") || v.HasHeader("X-Auto-Response-Suppress"))
            ? $"(its Auto-Submitted header is on all mail {system} sends, so its words decide)"
            : "without an auto-reply header";
        return $"help desk acknowledgement {headers}: \"{TextClip.Shorten(acknowledgement.Value, 81)}\", {string.Join(", ", cues)}";
    }

    /// <summary>
    /// The text up to where a help desk's mail quotes the request or a comment: a line with a date and a time that is
    /// nothing much else (Zendesk's "Dec 1, 2026, 09:14 UTC" under the commenter's name), or "You wrote:" in the seven
    /// languages.
    /// </summary>
    private static string OwnText(string top)
    {
        var text = top.Length > 4000 ? top[..4000] : top;
        var cut = CommentStart().Match(text);
        return cut.Success ? text[..cut.Index] : text;
    }

    [GeneratedRegex(@"^[ \t]*(?:(?=[^\n]{0,60}\b(?:19|20)\d\d\b)(?=[^\n]{0,60}\b\d{1,2}:\d\d\b)[^\n]{0,60}|(?:you wrote|sie schrieben|vous avez [ée]crit|usted escribi[óo]|voc[êe] escreveu|lei ha scritto|u schreef)[^\n]{0,40})$",
        RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex CommentStart();

    [GeneratedRegex(@"^[ \t]*(?:ticket ?(?:id|#|number|no\.?)|case (?:id|number)|request (?:id|number)|subject|department|status|priority|category|requester|assigned to|queue|" +
        @"betreff|abteilung|priorit[äa]t|kategorie|sujet|statut|priorit[ée]|cat[ée]gorie|asunto|estado|prioridad|departamento|assunto|prioridade|oggetto|stato|priorit[àa]|reparto|" +
        @"onderwerp|prioriteit|afdeling)[ \t]*:[ \t]*\S", RegexOptions.IgnoreCase | RegexOptions.Multiline)]
    private static partial Regex TicketField();

    // "Your request (48213) has been received", "We have received your request", "A new ticket has been created", in the
    // seven languages. A ticket number may stand after the noun: "(48213)", "(Ticket#2026…)", "#48213".
    [GeneratedRegex(@"\byour (?:support )?(?:request|ticket|case|incident|enquiry|inquiry|query|message|e-?mail|issue|submission)(?: \(?(?:ticket ?|case ?)?#?[a-z]{0,8}[-#]?\d[\w-]*\)?)? (?:has been|have been|was|is) (?:successfully |now )?(?:received|created|logged|opened|registered|submitted|recorded)|" +
        @"\bwe(?: have|'ve)? (?:successfully |just )?(?:received|got) your (?:support )?(?:request|message|e-?mail|enquiry|inquiry|query|ticket|case|submission)|" +
        @"\ba (?:new )?(?:support )?(?:ticket|case|request for support|support request|request|incident)(?: \(?#?\d[\w-]*\)?)? (?:has|was)(?: now| just)? (?:been )?(?:created|opened|logged|raised|submitted)|" +
        @"\b(?:acknowledge|confirm(?:ing|s)?) (?:the )?receipt of your|\b(?:this|the) (?:e-?mail|message) (?:is to )?confirms? (?:that )?we(?: have|'ve)? received|\bthis is to confirm (?:that )?we(?: have|'ve)? received|" +
        @"\braised this request\b|\bthe team typically replies in\b|" +
        @"\bihre (?:support)?(?:anfrage|nachricht|e-mail|mail)(?: \S+){0,3} (?:ist|wurde) (?:bei uns |erfolgreich |unter (?:der|dem) \S+ \S+ )?(?:eingegangen|erfasst|angelegt|registriert)|\bwir haben ihre (?:anfrage|nachricht|e-mail) (?:\S+ )?erhalten|" +
        @"\bwir ihre (?:anfrage|nachricht|e-mail) erhalten haben|\bbest[äa]tigen (?:wir )?(?:ihnen )?den eingang ihrer|" +
        @"\bein (?:neues )?(?:ticket|vorgang) (?:wurde|ist) (?:\S+ )?(?:erstellt|angelegt|er[öo]ffnet)|eingangsbest[äa]tigung|" +
        @"\b(?:nous vous )?confirm(?:ons|e) la (?:bonne )?r[ée]ception de votre|\bnous avons (?:bien )?re[çc]u votre (?:demande|message|e-?mail|courriel|requ[êe]te)|\bvotre (?:demande|requ[êe]te|ticket|message)(?: \S+){0,3} a (?:bien )?[ée]t[ée] (?:re[çc]ue?|cr[ée]{2}e?|enregistr[ée]e?)|" +
        @"\bun (?:nouveau )?ticket a [ée]t[ée] (?:cr[ée]{2}|ouvert)|accus[ée] de r[ée]ception|\bnous accusons (?:bonne )?r[ée]ception de votre|" +
        @"\bhemos recibido (?:correctamente )?(?:su|tu) (?:solicitud|mensaje|correo|consulta|petici[óo]n)|\b(?:su|tu) (?:solicitud|consulta|ticket|caso|petici[óo]n|mensaje)(?: \S+){0,3} (?:ha sido|fue|ha quedado) (?:recibid[oa]|cread[oa]|registrad[oa])|" +
        @"\bse ha (?:creado|abierto) (?:un|el) (?:ticket|caso)|" +
        @"\brecebemos (?:a )?(?:sua|tua) (?:solicita[çc][ãa]o|mensagem|pedido|e-?mail)|\b(?:sua|seu|tua|teu) (?:solicita[çc][ãa]o|pedido|chamado|ticket|mensagem|e-?mail)(?: \S+){0,3} foi (?:recebid[oa]|criad[oa]|registrad[oa]|abert[oa])|" +
        @"\babbiamo ricevuto (?:la (?:sua|tua) (?:richiesta|e-?mail|mail|segnalazione)|il (?:suo|tuo) messaggio)|\bla (?:sua|tua) (?:richiesta|segnalazione)(?: \S+){0,3} [èe] stata (?:ricevuta|registrata|presa in carico)|[èe] stato (?:creato|aperto) (?:un|il) ticket|" +
        @"\b(?:we|wij) hebben uw (?:verzoek|bericht|e-?mail|aanvraag|vraag|melding) (?:in goede orde )?ontvangen|\buw (?:verzoek|aanvraag|vraag|ticket|bericht|melding)(?: \S+){0,3} is (?:in goede orde )?(?:ontvangen|aangemaakt|geregistreerd)|\ber is een ticket aangemaakt")]
    private static partial Regex Acknowledgement();

    // A person speaking: the first person ("I", "me", "my", "ich", "mir", "je", "m'", "moi", "yo", "mí", "eu", "io",
    // "ik", "mij", …, and the first person of the verbs people use to say what they did with a request where the
    // pronoun is left out: "he reenviado", "ho inoltrato", "encaminhei"), someone named as "he" or "she", or a question.
    // A help desk speaks as "we" and asks nothing.
    [GeneratedRegex(@"(?<![\w.'-])i(?:'(?:m|ve|ll|d)\b| [a-z])|\bme\b(?<!\btake me)|\b(?:my|myself|mine|ich|mir|mich|mein|meine|meinem|meinen|meiner|je|moi|mon|ma|mes|yo|m[íi]|mi|mis|eu|meu|minha|io|mio|mia|ik|mij|mijn)\b|\b[jm]'|" +
        @"\b(?:he|she|him|his|her|er|ihm|él|ella|ele|ela|elle|lui|hij|hem|haar)\b|" +
        @"\bhe (?:reenviado|enviado|pasado|hablado|registrado|recibido|revisado|visto|apuntado)\b|\bho (?:inoltrato|girato|passato|registrato|inviato|ricevuto|visto|letto|aperto)\b|" +
        @"\b(?:encaminhei|enviei|passei|registrei|recebi|falei|abri|fiquei|llevo|apunto)\b|" +
        @"(?<=(?:^|\s)[^\s/]*)\p{L}[)""']?\?(?=\s|$)")]
    private static partial Regex Person();

    [GeneratedRegex(@"\S*(?:://|www\.|@)\S*")]
    private static partial Regex Link();

    // A ticket's number: "ticket #48213", "request (48213)", "Case 00012345", "Ticket#2026120110000012", "Vorgangsnummer:
    // 2025-044718", "[rtname #123]", "[#48213]", "##48213##", ServiceNow's INC0012345, Jira's "[JIRA] (SUP-123)". After a
    // label, a number needs a sign that it is one ("#", "no.", ":", "(") or five digits: "in case 250 seats" is not a case.
    [GeneratedRegex(@"\b(?:ticket|case|request|incident|reference|ref|anfrage|vorgang|vorgangs|demande|dossier|caso|solicitud|expediente|chamado|protocolo|richiesta|pratica|aanvraag|melding|verzoek|zaak)" +
        @"(?:(?:[ -]?(?:number|no\.?|nr\.?|n[°º]\.?|id|nummer|num[ée]ro|n[úu]mero))(?: is| [ée]| ist| est| es)?\s?:?\s?#?\s?(?:[a-z]{1,8}[-#]?)?\d{3,}|\s?[:#(]\s?#?\s?(?:[a-z]{1,8}[-#]?)?\d{3,}|\s?\d{5,}|\s[a-z]{2,8}-\d{3,})|" +
        @"\b(?:con (?:el )?id|avec le num[ée]ro|con (?:el|il) n[úu]mero|com o n[úu]mero|mit der nummer|onder nummer|with (?:the )?(?:number|id)) #?\d{3,}|\bref:[_!][\w.!]+:ref\b|\[[^\]\n]{0,30}#\s?\d{3,}\]|##\d{3,}##|\b(?:inc|req|ritm)\d{5,}\b|\[jira\] \([a-z][a-z0-9]+-\d+\)", RegexOptions.IgnoreCase)]
    private static partial Regex TicketReference();

    // What only a ticket system writes: where to write the answer, how to add to the request, where to follow it, not
    // to answer at all, and its stock sentences. Each counts once.
    [GeneratedRegex(@"##-[^#\n]{0,80}-##|(?:reply|respond|write|type your reply) above this line|to add (?:additional |further )?(?:comments|information)|" +
        @"(?:view|see|track|check|follow) (?:the )?(?:status|progress|details) of (?:your|the|this) (?:ticket|request|case|incident)|view (?:all )?the details of the (?:ticket|request|case|incident)|" +
        @"view this ticket's progress|view the (?:ticket|request|case) at any time|turn off this request's notifications|raised this request via e-?mail|" +
        @"(?:to add|add) (?:more |additional |further )?(?:details|comments|information) to (?:your|the|this) (?:ticket|request|case)|the details of your (?:ticket|request|case) are (?:shown )?below|" +
        @"you will be notified when a response is made|(?:send you |will send you )?a personal (?:response|reply)\b|" +
        @"status ihres (?:tickets|vorgangs|anliegens) (?:einzusehen|einsehen|ansehen|abrufen|verfolgen)|pers[öo]nlich bei ihnen melden|" +
        @"consulter l'[ée]tat de votre (?:ticket|demande)|vous r[ée]pondra personnellement|ver el estado (?:del|de su) (?:ticket|caso|solicitud)|una respuesta personal|" +
        @"(?:ver|acompanhar|consultar) o (?:status|andamento) (?:do|da|de seu|de sua) (?:chamado|ticket|solicita[çc][ãa]o)|uma resposta pessoal|" +
        @"(?:visualizzare|consultare|seguire) lo stato (?:del|della) (?:ticket|richiesta)|una risposta personale|status van (?:uw|je) (?:ticket|melding|aanvraag)|persoonlijk (?:antwoord|reageren)|" +
        @"(?:keep|include|leave) the (?:ticket|reference|case|request) (?:number|id|string) in the subject|(?:ticket|reference|case) (?:number|id) is kept in the subject|in the subject line of all future|" +
        @"do(?: not|n't) (?:reply|respond) to this (?:e-?mail|message)|this (?:mailbox|inbox|address) is not monitored|there is no need to reply to this (?:e-?mail|message)|" +
        @"has been received and (?:is being|will be) (?:reviewed|handled|processed)|we would like to acknowledge|your e-?mail will be answered by a human|you'll get replies here|" +
        @"oberhalb dieser zeile|(?:um )?weitere (?:informationen|kommentare|details) hinzuzuf[üu]gen|antworten sie nicht auf diese|(?:ticketnummer|vorgangsnummer|referenznummer|ticket-id) im betreff|hiermit best[äa]tigen wir den eingang|" +
        @"au-dessus de cette ligne|merci de ne pas r[ée]pondre|ne (?:pas )?r[ée]pondez pas [àa] ce|" +
        @"por encima de esta l[íi]nea|no responda a este|acima desta linha|n[ãa]o responda a este|sopra questa riga|non rispondere a quest|" +
        @"boven deze regel|(?:gelieve|graag|a\.?u\.?b\.?) niet (?:op (?:deze|dit) (?:e-?mail|bericht|mail) )?te (?:beantwoorden|reageren|antwoorden)|reageer niet op (?:deze|dit)")]
    private static partial Regex SystemMarker();

    // The team, not a person, will answer later.
    [GeneratedRegex(@"\bsomeone from our (?:\w+ )?team will\b|\b(?:one of our|a member of our|a|an|our) (?:support |customer |service |help ?desk |technical )?(?:team|agents?|staff|representatives?|specialists?|advisors?|engineers?|consultants?|experts?)(?: members?)? (?:will|shall)\b|" +
        @"\bwe(?: will|'ll| aim to| try to| strive to)? (?:get back to you|respond|reply|answer|be in touch|contact you)[^.!\n]{0,60}(?:shortly|as soon as (?:possible|we can)|soon|within|in the order)|" +
        @"\b(?:usually|typically|normally|generally) (?:respond|reply|answer)s? within|\bwithin (?:\d+|one|two|three|a few) (?:business |working )?(?:hours?|days?)\b|by a human as soon as possible|" +
        @"\bwir (?:werden uns|melden uns)[^.!\n]{0,40}(?:so schnell wie m[öo]glich|schnellstm[öo]glich|in k[üu]rze|umgehend|innerhalb)|\binnerhalb (?:von )?\d+ (?:stunden|werktagen|arbeitstagen)|" +
        @"\bnous (?:reviendrons vers vous|vous r[ée]pondrons|vous recontacterons)|dans les (?:plus brefs|meilleurs) d[ée]lais|\bsous \d+ ?(?:h|heures|jours)\b|\bun de nos (?:conseillers|agents|experts)|" +
        @"\b(?:nos pondremos en contacto|le responderemos|te responderemos)|lo antes posible|en un plazo de|\buno de nuestros (?:agentes|asesores)|" +
        @"\b(?:entraremos em contato|responderemos)|o mais (?:breve|r[áa]pido) poss[íi]vel|\bem at[ée] \d+ (?:horas|dias)|\bum de nossos (?:agentes|atendentes)|" +
        @"\b(?:la ricontatteremo|ti ricontatteremo|le risponderemo|ti risponderemo|la ricontatter[àa]|ti ricontatter[àa])|il prima possibile|al pi[ùu] presto|\bentro \d+ (?:ore|giorni)|\buno dei nostri (?:operatori|agenti)|" +
        @"\b(?:we|wij) nemen[^.!\n]{0,40}contact|zo (?:snel|spoedig) mogelijk|\bbinnen \d+ (?:uur|werkdagen|dagen)|\been van onze (?:medewerkers|collega's)")]
    private static partial Regex TeamPromise();

    // A team's address rather than a person's: support@, helpdesk@, customer-service@, service@, info@, kundenservice@.
    [GeneratedRegex(@"^(?:support|help|helpdesk|help-desk|servicedesk|service-desk|service|customerservice|customer-service|customer\.service|customercare|customer-care|care|" +
        @"info|contact|hello|enquiries|inquiries|tickets?|kundenservice|kundendienst|service-client|serviceclient|soporte|atencion|atencionalcliente|suporte|atendimento|sac|" +
        @"assistenza|servizioclienti|servizio\.clienti|klantenservice)(?:[-_.+][\w.-]*)?$")]
    private static partial Regex RoleAddress();
}
