using System.Buffers;
using System.Text.RegularExpressions;

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
/// auto-reply when its own words acknowledge a request <i>and</i> it shows a ticket system's marks (a ticket number,
/// "reply above this line", "do not reply to this email", a help desk's headers) with one more cue beside them (another
/// mark, "one of our agents will get back to you within 24 hours", a support address), and when the text up to the
/// acknowledgement speaks for no one in the first person: "we received your request and I logged it, ticket 4711" is
/// a person.</para>
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
    /// Keep it in step with the pattern.
    /// </summary>
    private static readonly SearchValues<string> AcknowledgementWords = SearchValues.Create(
        ["received", "created", "logged", "opened", "registered", "submitted", "recorded", "raised", "receipt",
         "erhalten", "eingegangen", "erfasst", "angelegt", "erstellt", "eröffnet", "eroffnet", "registriert", "eingangsbest",
         "reçu", "recu", "créé", "crée", "creé", "cree", "ouvert", "enregistr", "réception", "reception",
         "recibid", "cread", "registrad", "abierto", "recebemos", "recebid", "criad", "abert",
         "ricevut", "registrat", "creato", "aperto", "carico",
         "ontvangen", "aangemaakt", "geregistreerd"], StringComparison.OrdinalIgnoreCase);

    /// <summary>
    /// Whether the message is a help desk's acknowledgement of a request; the reason when it is, null otherwise.
    /// </summary>
    /// <param name="top">The text above any quoted original.</param>
    /// <param name="system">The help desk <see cref="StampingSystem"/> recognised, or null.</param>
    public static string? Verdict(MessageView v, string top, string? system)
    {
        if (!top.AsSpan(0, Math.Min(top.Length, 4000)).ContainsAny(AcknowledgementWords))
            return null;
        var head = TextTools.Squeeze(top, 2500, lower: true).Replace('\u2019', '\'');
        var acknowledgement = Acknowledgement().Match(head);
        // A help desk acknowledges at once, near the top (after a greeting or its "reply above this line" marker); a
        // text that gets to it only after a long while is a person's.
        if (!acknowledgement.Success || acknowledgement.Index > 600)
            return null;
        // A person writes "I": whatever comes before the acknowledgement, and its own paragraph, must not. What follows
        // later can be anyone's: Zendesk's acknowledgement goes on with the request it acknowledges, our own mail.
        if (FirstPerson().IsMatch(UpToParagraphEnd(top, acknowledgement.Value)))
            return null;

        var cues = new List<string>();
        var marks = 0;
        var points = 0;
        if (system is not null)
        {
            cues.Add($"sent by {system}");
            marks++;
            points += 2;
        }
        if (TicketReference().IsMatch(v.Subject) || TicketReference().IsMatch(head))
        {
            cues.Add("a ticket number");
            marks++;
            points++;
        }
        if (SystemMarker().Match(head) is { Success: true } marker)
        {
            cues.Add($"\"{marker.Value}\"");
            marks++;
            points++;
        }
        if (TeamPromise().IsMatch(head))
        {
            cues.Add("a promise of an answer from the team");
            points++;
        }
        if (RoleAddress().IsMatch(v.FromLocalPart))
        {
            cues.Add($"a team's address ({v.FromLocalPart}@…)");
            points++;
        }
        if (marks == 0 || points < 2)
            return null;
        var headers = system is null ? "without an auto-reply header" : $"(its Auto-Submitted header is on all mail {system} sends, so its words decide)";
        return $"help desk acknowledgement {headers}: \"{Clip(acknowledgement.Value)}\", {string.Join(", ", cues)}";
    }

    private static string Clip(string s) => s.Length <= 80 ? s : s[..80] + "…";

    /// <summary>
    /// The text from its start to the end of the paragraph (up to the next blank line) where the acknowledgement is,
    /// squeezed and lower-cased. The acknowledgement is found again in each paragraph as the paragraphs are squeezed,
    /// so that the positions need no mapping between the raw and the squeezed text.
    /// </summary>
    private static string UpToParagraphEnd(string top, string acknowledgement)
    {
        var text = top.Length > 4000 ? top[..4000] : top;
        var sb = new System.Text.StringBuilder();
        foreach (var paragraph in BlankLine().Split(text))
        {
            var squeezed = TextTools.Squeeze(paragraph, 2500, lower: true).Replace('\u2019', '\'');
            if (squeezed.Length == 0)
                continue;
            sb.Append(squeezed).Append(" \n ");
            if (sb.ToString().Contains(acknowledgement, StringComparison.Ordinal) || sb.Length > 2500)
                break;
        }
        return sb.ToString();
    }

    [GeneratedRegex(@"\r?\n[ \t]*\r?\n")]
    private static partial Regex BlankLine();

    // "Your request (48213) has been received", "We have received your request", "A new ticket has been created", in the
    // seven languages. A ticket number may stand after the noun: "(48213)", "(Ticket#2026…)", "#48213".
    [GeneratedRegex(@"\byour (?:support )?(?:request|ticket|case|incident|enquiry|inquiry|query|message|e-?mail|issue|submission)(?: \(?(?:ticket ?|case ?)?#?[a-z]{0,8}[-#]?\d[\w-]*\)?)? (?:has been|have been|was|is) (?:successfully )?(?:received|created|logged|opened|registered|submitted|recorded)|" +
        @"\bwe(?: have|'ve)? (?:successfully |just )?received your (?:support )?(?:request|message|e-?mail|enquiry|inquiry|query|ticket|submission)|" +
        @"\ba (?:new )?(?:support )?(?:ticket|case|request for support|support request|request|incident) (?:has been|was) (?:created|opened|logged|raised|submitted)|" +
        @"\b(?:acknowledge|confirm(?:ing|s)?) (?:the )?receipt of your|\b(?:this|the) (?:e-?mail|message) (?:is to )?confirms? (?:that )?we(?: have|'ve)? received|" +
        @"\bihre (?:support)?(?:anfrage|nachricht|e-mail|mail)(?: \S+){0,3} (?:ist|wurde) (?:bei uns |erfolgreich )?(?:eingegangen|erfasst|angelegt|registriert)|\bwir haben ihre (?:anfrage|nachricht|e-mail) (?:\S+ )?erhalten|" +
        @"\bein (?:neues )?(?:ticket|vorgang) (?:wurde|ist) (?:\S+ )?(?:erstellt|angelegt|er[öo]ffnet)|eingangsbest[äa]tigung|" +
        @"\bnous avons (?:bien )?re[çc]u votre (?:demande|message|e-?mail|courriel|requ[êe]te)|\bvotre (?:demande|requ[êe]te|ticket|message)(?: \S+){0,3} a (?:bien )?[ée]t[ée] (?:re[çc]ue?|cr[ée]{2}e?|enregistr[ée]e?)|" +
        @"\bun (?:nouveau )?ticket a [ée]t[ée] (?:cr[ée]{2}|ouvert)|accus[ée] de r[ée]ception|" +
        @"\bhemos recibido (?:correctamente )?(?:su|tu) (?:solicitud|mensaje|correo|consulta|petici[óo]n)|\b(?:su|tu) (?:solicitud|consulta|ticket|caso|petici[óo]n)(?: \S+){0,3} (?:ha sido|fue) (?:recibid[oa]|cread[oa]|registrad[oa])|" +
        @"\bse ha (?:creado|abierto) (?:un|el) (?:ticket|caso)|" +
        @"\brecebemos (?:a )?(?:sua|tua) (?:solicita[çc][ãa]o|mensagem|pedido|e-?mail)|\b(?:sua|seu|tua|teu) (?:solicita[çc][ãa]o|pedido|chamado|ticket)(?: \S+){0,3} foi (?:recebid[oa]|criad[oa]|registrad[oa]|abert[oa])|" +
        @"\babbiamo ricevuto la (?:sua|tua) (?:richiesta|e-?mail|mail|segnalazione)|\bla (?:sua|tua) (?:richiesta|segnalazione)(?: \S+){0,3} [èe] stata (?:ricevuta|registrata|presa in carico)|[èe] stato (?:creato|aperto) (?:un|il) ticket|" +
        @"\b(?:we|wij) hebben uw (?:verzoek|bericht|e-?mail|aanvraag|vraag) (?:in goede orde )?ontvangen|\buw (?:verzoek|aanvraag|vraag|ticket|bericht)(?: \S+){0,3} is (?:in goede orde )?(?:ontvangen|aangemaakt|geregistreerd)|\ber is een ticket aangemaakt")]
    private static partial Regex Acknowledgement();

    // A person speaking: "I", "ich", "je"/"j'", "ik", "yo", "eu", "io", and the first person of the verbs people use
    // to say what they did with a request in the languages that leave the pronoun out ("he reenviado", "ho inoltrato",
    // "encaminhei").
    [GeneratedRegex(@"(?<![\w.'-])i(?:'(?:m|ve|ll|d)\b| [a-z])|\b(?:ich|ik|yo|eu|io|moi|je)\b|\bj'|" +
        @"\bhe (?:reenviado|enviado|pasado|hablado|registrado|recibido|revisado|visto)\b|\bho (?:inoltrato|girato|passato|registrato|inviato|ricevuto|visto|letto)\b|" +
        @"\b(?:encaminhei|enviei|passei|registrei|recebi|falei)\b")]
    private static partial Regex FirstPerson();

    // A ticket's number: "ticket #48213", "request (48213)", "case 00012345", "Ticket#2026120110000012", "[rtname #123]",
    // "[#48213]", "##48213##", ServiceNow's INC0012345, in the seven languages' words.
    [GeneratedRegex(@"(?:\b(?:ticket|case|request|incident|reference|ref|anfrage|vorgang|demande|dossier|caso|solicitud|chamado|protocolo|richiesta|pratica|aanvraag|melding|verzoek)" +
        @"(?:[ -]?(?:number|no\.?|nr\.?|n[°º]\.?|id|nummer|num[ée]ro|n[úu]mero))?(?: is)?\s?[:#(]?\s?#?\s?(?:[a-z]{1,8}[-#]?)?\d{3,}|" +
        @"\[[^\]\n]{0,30}#\s?\d{3,}\]|##\d{3,}##|\b(?:inc|req|ritm)\d{5,}\b)", RegexOptions.IgnoreCase)]
    private static partial Regex TicketReference();

    // What only a ticket system writes: where to write the answer, how to add to the request, not to answer at all.
    [GeneratedRegex(@"##-[^#\n]{0,80}-##|(?:reply|respond|write|type your reply) above this line|" +
        @"to add (?:additional |further )?(?:comments|information)|(?:view|track|check|review|follow) (?:the status of |the progress of |the progress on )?(?:your|the|this) (?:ticket|request|case)(?:'s progress)?|" +
        @"(?:keep|include|leave) the (?:ticket|reference|case|request) (?:number|id|string)|in the subject line of all future|" +
        @"(?:please )?do not (?:reply|respond) to this (?:e-?mail|message)|this (?:mailbox|inbox|address) is not monitored|there is no need to reply|" +
        @"oberhalb dieser zeile|antworten sie nicht auf diese|au-dessus de cette ligne|merci de ne pas r[ée]pondre|ne (?:pas )?r[ée]pondez pas [àa] ce|" +
        @"por encima de esta l[íi]nea|no responda a este|acima desta linha|n[ãa]o responda a este|sopra questa riga|non rispondere a quest|" +
        @"boven deze regel|(?:gelieve|graag) niet (?:te )?(?:beantwoorden|reageren)")]
    private static partial Regex SystemMarker();

    // The team, not a person, will answer later.
    [GeneratedRegex(@"\b(?:one of our|a member of our|a|an|our) (?:support |customer |service |help ?desk |technical )?(?:team|agents?|staff|representatives?|specialists?|advisors?|engineers?|consultants?|experts?)(?: members?)? (?:will|shall)\b|" +
        @"\bwe(?: will|'ll| aim to| try to| strive to)? (?:get back to you|respond|reply|answer|be in touch|contact you)[^.!\n]{0,60}(?:shortly|as soon as (?:possible|we can)|soon|within|in the order)|" +
        @"\b(?:usually|typically|normally|generally) (?:respond|reply|answer)s? within|\bwithin (?:\d+|one|two|three|a few) (?:business |working )?(?:hours?|days?)\b|by a human as soon as possible|" +
        @"\bwir (?:werden uns|melden uns)[^.!\n]{0,40}(?:so schnell wie m[öo]glich|schnellstm[öo]glich|in k[üu]rze|umgehend|innerhalb)|\binnerhalb (?:von )?\d+ (?:stunden|werktagen|arbeitstagen)|" +
        @"\bnous (?:reviendrons vers vous|vous r[ée]pondrons|vous recontacterons)|dans les (?:plus brefs|meilleurs) d[ée]lais|\bsous \d+ ?(?:h|heures|jours)\b|\bun de nos (?:conseillers|agents|experts)|" +
        @"\b(?:nos pondremos en contacto|le responderemos|te responderemos)|lo antes posible|en un plazo de|\buno de nuestros (?:agentes|asesores)|" +
        @"\b(?:entraremos em contato|responderemos)|o mais (?:breve|r[áa]pido) poss[íi]vel|\bem at[ée] \d+ (?:horas|dias)|\bum de nossos (?:agentes|atendentes)|" +
        @"\b(?:la ricontatteremo|ti ricontatteremo|le risponderemo|ti risponderemo)|il prima possibile|\bentro \d+ (?:ore|giorni)|\buno dei nostri (?:operatori|agenti)|" +
        @"\b(?:we|wij) nemen[^.!\n]{0,40}contact|zo (?:snel|spoedig) mogelijk|\bbinnen \d+ (?:uur|werkdagen|dagen)|\been van onze (?:medewerkers|collega's)")]
    private static partial Regex TeamPromise();

    // A team's address rather than a person's: support@, helpdesk@, customer-service@, service@, info@, kundenservice@.
    [GeneratedRegex(@"^(?:support|help|helpdesk|help-desk|servicedesk|service-desk|service|customerservice|customer-service|customer\.service|customercare|customer-care|care|" +
        @"info|contact|hello|enquiries|inquiries|tickets?|kundenservice|kundendienst|service-client|serviceclient|soporte|atencion|suporte|atendimento|assistenza|klantenservice)(?:[-_.+][\w.-]*)?$")]
    private static partial Regex RoleAddress();
}
