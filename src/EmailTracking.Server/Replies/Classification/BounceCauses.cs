using System.Buffers;
using System.Text;
using System.Text.RegularExpressions;

namespace EmailTracking.Server.Replies.Classification;

/// <summary>
/// Decides why a delivery failed from the server's error text and status code, whether that makes the address dead
/// (hard bounce), and the inferred status code when the report states none.
/// </summary>
internal static partial class BounceCauses
{
    /// <summary>
    /// Text rules, most specific first: the first that matches decides. Each rule carries words of which any text it
    /// matches holds at least one (every branch of its pattern has one of them verbatim): a text with none of them is
    /// not tried against the pattern. One vectorised search for the words costs a fraction of the pattern's own scan,
    /// and most texts have the words of only a few rules. Keep the words in step when a pattern changes.
    /// </summary>
    private static readonly (BounceCause Cause, Regex Pattern, Words Words)[] TextRules =
    [
        (BounceCause.MailboxFull, MailboxFull(), new Words("mailbox", "mail box", "mailfolder", "mail folder", "quota", "insufficient", "not enough", "full", "over capacity", "would exceed", "exceeded", "pleine", "postfach", "lleno", "cheia", "piena", "recipient account", "recipient's account", "容量")),
        (BounceCause.MailerError, LocalDelivery(), new Words("procmail", "x-unix", "pipe to ", "command died", "command failed", "command exited", "exited with", "child status", "mailer error", "unknown mailer", "program failed")),
        (BounceCause.MesgTooBig, MesgTooBig(), new Words("too big", "too large", "size", "line limit", "message length", "larger than")),
        (BounceCause.Suspend, Suspend(), new Words("disabled", "suspended", "deactivated", "inactive", "locked", "frozen", "closed", "discontinued", "expired", "no longer", "not an active", "unavailable due to", "this account has been")),
        (BounceCause.HasMoved, HasMoved(), new Words("address has", "moved", "no longer", "changed")),
        (BounceCause.NotAccept, NotAccept(), new Words("null mx", "does not accept", "not accepting", "accepts no mail", "no mail", "domain does not", "domain doesn't", "no mx", "indicated no smtp service")),
        (BounceCause.RequirePtr, RequirePtr(), new Words("reverse ", "ptr", "rdns", "cannot find", "ip name ", "unresolvable ", "hostname does not", "hostname doesn't")),
        (BounceCause.AuthFailure, AuthFailure(), new Words("spf", "dkim", "dmarc", "sender policy framework", "unauthenticated", "authentication", "does not pass")),
        (BounceCause.BadReputation, BadReputation(), new Words("reputation", "sender score")),
        (BounceCause.SpamDetected, SpamContent(), new Words("listed", "uribl", "surbl", "spam")),
        (BounceCause.HostUnknown, NoSuchDomain(), new Words("domain may not exist", "domain name not found", "no such domain", "domain is not reachable", "please check the domain")),
        (BounceCause.Rejected, SenderRejected(), new Words("sender", "from: domain is invalid", "is not allowed", "is not permitted", "is not valid", "isn't allowed", "isn't permitted", "isn't valid", "send mail as", "member", "permission to post", "not allowed to post", "not exist", "メッセージを投稿する権限", "グループ", "googlegroups", "groups.google.com")),
        (BounceCause.Blocked, Blocked(), new Words("blacklist", "black list", "block", "ban", "listed", "denied", "reject", "spamhaus", "rbl", "dnsbl", "sorbs", "spamcop", "barracuda", "refused", "your ip", "your host", "your server", "your network", "invalid ip for sending", "weren't sent", "contact your internet service provider", "dynamic ", "dial", "residential ", "your isp", "not allowed to", "rate limited")),
        (BounceCause.NoRelaying, NoRelaying(), new Words("relay", "not a gateway")),
        (BounceCause.NetworkError, DnsTrouble(), new Words("name service error", "malformed or unexpected name server reply", "dns ", "temporary failure in name resolution")),
        (BounceCause.UserUnknown, UserUnknown(), new Words("unknown", "no such", "exist", "not found", "not known", "not listed", "not local", "not valid", "invalid", "not a ", "recip", "no mailbox", "unavailable", "bad destination mailbox", "this user doesn't have a", "wasn't found", "undeliverable address", "inconnu", "desconocido", "unbekannt", "destinatario", "local user", "local address", "registered user", "registered address", "could not be found", "couldn't be found", "not recognized", "does not have a", "by that name", "not our customer", "please check if")),
        (BounceCause.HostUnknown, HostUnknown(), new Words("unknown", "not found", "exist", "invalid", "no such domain", "lookup failed", "nxdomain", "name or service not known", "unrouteable", "unroutable", "bad destination ", "bad domain", "bad host", "could not resolve", "resolve", "no route for", "mx points to", "mx records point", "dns lookup", "dns error", "is not valid", "name server: ")),
        (BounceCause.VirusDetected, VirusDetected(), new Words("virus", "malware", "infected", "trojan", "worm detected", "malicious")),
        (BounceCause.SpamDetected, SpamDetected(), new Words("spam", "junk mail", "unsolicited", "uce", "bulk ", "content ", "classified as", "looks like ", "suspicious ", "phish")),
        (BounceCause.PolicyViolation, PolicyViolation(), new Words("polic", "violat", "prohibited", "not allowed ", "not permitted ", "restrict", "compliance")),
        (BounceCause.Rejected, Rejected(), new Words("sender", "rejected", "refused", "denied", "invalid", "not allowed", "member", "permission to post", "not exist", "posting ", "メッセージを投稿する権限", "グループ", "from address")),
        (BounceCause.Filtered, Filtered(), new Words("filter", "refused", "rejected", "blocked", "accept", "denied by", "settings", "preferences", "disabled", "cannot receive", "can't receive", "no longer receiv", "access denied", "not authorized", "unauthori")),
        (BounceCause.Expired, Expired(), new Words("expired", "retry", "gave up", "giving up", "give up", "delivered ", "cannot send message for", "maximum time", "timeout ", "queue", "undeliverable", "delayed", "not going to try again", "will not be retried", "unable to deliver", "no further ", "delivery attempt", "deferred", "did not accept our requests to connect", "attempts", "host not reachable", "all hosts have been failing", "aborted after ")),
        (BounceCause.TooManyConn, TooManyConn(), new Words("too many ", "rate limit", "sending rate", "receiving rate", "throttl", "exceeded ", "connection limit", "later", "too fast", "too much mail")),
        (BounceCause.NetworkError, NetworkError(), new Words("connect", "unreachable", "no route to host", "loop", "too many hops", "hop count exceeded", "dns ", "temporary failure in name resolution", "host is down", "no answer", "did not re", "timed out", "timeout", "time-out", "contacted", "was not ", "read error", "broken pipe", "mx ")),
        (BounceCause.SystemFull, SystemFull(), new Words("full", "insufficient system storage", "out of ")),
        (BounceCause.SystemError, SystemError(), new Words("duplicated message-id", "loop alert", "error", "system ", "available", "temporar", "out of memory", "try again later")),
        (BounceCause.FailedStartTls, FailedStartTls(), new Words("starttls", "tls ", "encryption required", "secure connection")),
        (BounceCause.SecurityError, SecurityError(), new Words("authentication ", "mechanism", "not authenticated", "access not allowed", "security ", "certificate", "encryption")),
        (BounceCause.ContentError, ContentError(), new Words("content ", "header ", "illegal ", "invalid ", "error", "not supported", "8bit", "8-bit", "line too long", "malformed", "corrupt")),
        (BounceCause.SyntaxError, SyntaxError(), new Words("malformed ", "syntax error", "command")),
        (BounceCause.MailerError, MailerError(), new Words("mailer error", "x-unix", "procmail", "pipe to", "command ", "program", "unknown mailer", "exited with", "child status", "local delivery failed", "mail delivery agent")),
    ];


    private static BounceCause? FromNormalized(string normalized, BounceCause? skip)
    {
        // A report that names several addresses without a line of their own gives each the same notice: its verdict
        // is remembered (per thread, for the last few texts) rather than worked out again through all the rules.
        var memo = skip is null ? Memo.Current : null;
        if (memo is not null && memo.TryGet(normalized, out var known))
            return known;
        BounceCause? found = null;
        var ascii = Ascii.IsValid(normalized);
        foreach (var (cause, pattern, words) in TextRules)
        {
            if (cause != skip && words.AnyIn(normalized, ascii) && pattern.IsMatch(normalized))
            {
                found = cause;
                break;
            }
        }
        memo?.Add(normalized, found);
        return found;
    }

    /// <summary>The causes of the last few texts looked at on this thread, compared by value.</summary>
    private sealed class Memo
    {
        [ThreadStatic]
        private static Memo? current;

        public static Memo Current => current ??= new Memo();

        private readonly string?[] texts = new string?[4];
        private readonly BounceCause?[] causes = new BounceCause?[4];
        private int next;

        public bool TryGet(string text, out BounceCause? cause)
        {
            for (var i = 0; i < texts.Length; i++)
            {
                if (texts[i] is { } t && (ReferenceEquals(t, text) || string.Equals(t, text, StringComparison.Ordinal)))
                {
                    cause = causes[i];
                    return true;
                }
            }
            cause = null;
            return false;
        }

        public void Add(string text, BounceCause? cause)
        {
            texts[next] = text;
            causes[next] = cause;
            next = (next + 1) % texts.Length;
        }
    }


    /// <summary>The step of the SMTP session the error came at, as far as the text tells.</summary>
    public enum SmtpStep { Unknown, Connect, MailFrom, RcptTo, Data }

    /// <summary>The last SMTP step the text mentions (Exim's "after RCPT TO", Postfix's "in reply to end of DATA command", Sendmail's "&gt;&gt;&gt; DATA"…).</summary>
    public static SmtpStep StepOf(string normalized)
    {
        // The pattern can start at almost any letter, so its scan tries nearly every position; most texts name no step.
        if (!normalized.AsSpan().ContainsAny(StepWords))
            return SmtpStep.Unknown;
        var step = SmtpStep.Unknown;
        var at = -1;
        foreach (Match m in SessionStep().Matches(normalized))
        {
            if (m.Index < at)
                continue;
            at = m.Index;
            step = m.Groups["rcpt"].Success ? SmtpStep.RcptTo
                : m.Groups["data"].Success ? SmtpStep.Data
                : m.Groups["mail"].Success ? SmtpStep.MailFrom
                : SmtpStep.Connect;
        }
        return step;
    }

    /// <summary>
    /// Words one of which every match of <see cref="SessionStep"/> contains (one per branch, as written there). Keep
    /// them in step with the pattern.
    /// </summary>
    private static readonly SearchValues<string> StepWords = SearchValues.Create(
        ["rcpt", "does not like recipient", "data", "body of message generated response", "mail from", "mail_from", "command: mail", "command mail",
         "initial connection", "ehlo", "helo", "my name was rejected", "greeting", "banner"], StringComparison.Ordinal);

    /// <summary>Words one of which every match of <see cref="DirectoryWording"/> contains. Keep them in step with the pattern.</summary>
    private static readonly SearchValues<string> DirectoryWords = SearchValues.Create(
        ["recipient name is not recognized", "not listed", "invalid final delivery userid", "unknown user: ", "unknown recipient", "no such recipient",
         "no valid recipients", "please check if", "resolver.adr.recip", "recipient address rejected: access denied", "address couldn't be found",
         "this user doesn't have a", "the email account that you tried to reach does not exist", "address not found",
         "requested action not taken: mailbox unavailable", "destinataire invalide"], StringComparison.Ordinal);

    /// <summary>Directory wording in a normalized text; the pattern is tried only when one of its words is there (most texts have none).</summary>
    private static bool HasDirectoryWording(string normalized) => normalized.AsSpan().ContainsAny(DirectoryWords) && DirectoryWording().IsMatch(normalized);

    /// <summary>Lower case, one space between words, at most 4,000 characters.</summary>
    public static string Normalize(string text) => TextTools.Squeeze(text, 4000, lower: true);

    /// <summary>The cause a standard status code implies, or null when the code does not say.</summary>
    public static BounceCause? FromStatus(string? status)
    {
        if (status is null || !SmtpCodes.IsValidStatus(status))
            return null;
        var permanent = status[0] == '5';
        var subjectDetail = status[2..];
        return subjectDetail switch
        {
            "1.0" => permanent ? BounceCause.UserUnknown : null,
            "1.1" or "1.3" => BounceCause.UserUnknown,
            "1.2" => BounceCause.HostUnknown,
            "1.4" => BounceCause.Filtered,
            "1.6" => BounceCause.HasMoved,
            "1.7" or "1.8" => BounceCause.Rejected,
            "1.9" => BounceCause.SystemError,
            "1.10" => BounceCause.NotAccept,
            "2.0" => permanent ? BounceCause.Filtered : null,
            "2.1" => permanent ? BounceCause.Filtered : BounceCause.Blocked,
            "2.2" => BounceCause.MailboxFull,
            "2.3" => BounceCause.ExceedLimit,
            "2.4" => BounceCause.Filtered,
            "3.0" => permanent ? BounceCause.SystemError : null,
            "3.1" => BounceCause.SystemFull,
            "3.2" => BounceCause.NotAccept,
            "3.3" or "3.5" => BounceCause.SystemError,
            "3.4" => BounceCause.MesgTooBig,
            "4.0" => permanent ? BounceCause.NetworkError : null,
            "4.1" or "4.7" => permanent ? null : BounceCause.Expired,
            "4.2" or "4.6" or "4.8" => BounceCause.NetworkError,
            "4.3" => BounceCause.SystemError,
            "4.4" => permanent ? BounceCause.HostUnknown : BounceCause.NetworkError,
            "4.5" => BounceCause.SystemFull,
            "5.2" or "5.6" => BounceCause.SyntaxError,
            "5.3" => permanent ? BounceCause.TooManyConn : BounceCause.SystemError,
            "5.4" or "5.5" => BounceCause.SystemError,
            "6.0" or "6.1" or "6.2" or "6.3" or "6.5" or "6.6" or "6.7" or "6.8" or "6.9" => BounceCause.ContentError,
            "7.1" or "7.2" => permanent ? BounceCause.SecurityError : BounceCause.Blocked,
            "7.0" or "7.3" or "7.4" or "7.5" or "7.6" or "7.7" or "7.8" or "7.9" or "7.10" or "7.11" or "7.12" or "7.14"
                or "7.15" or "7.19" => permanent || subjectDetail is "7.5" or "7.6" or "7.7" or "7.12" or "7.15" ? BounceCause.SecurityError : null,
            "7.13" => BounceCause.Suspend,
            "7.16" => BounceCause.MesgTooBig,
            "7.17" or "7.18" => BounceCause.HasMoved,
            "7.20" or "7.21" or "7.22" or "7.23" or "7.24" or "7.26" or "7.29" => BounceCause.AuthFailure,
            "7.25" => BounceCause.RequirePtr,
            "7.27" => BounceCause.NotAccept,
            "7.28" => BounceCause.SpamDetected,
            "7.30" => BounceCause.FailedStartTls,
            _ => null,
        };
    }

    /// <summary>
    /// Combines text and status. The text's cause wins, with one caution taken from sisimai: "user unknown" makes a
    /// hard bounce only when the status code says so (x.1.1, x.1.0, x.1.3), when the server refused the address at
    /// RCPT TO, or in the directory wording of Exchange, Domino and IMail. Said after the message was sent (DATA), or
    /// without telling when, it is a filter's refusal (soft): content filters answer "user unknown" too. At MAIL FROM it
    /// is about the sender; at the greeting it is a block of the sending server. A delayed report without a cause has
    /// expired.
    /// </summary>
    public static BounceCause Decide(string? status, string? text, bool delayed) => Decide(status, text, null, delayed);

    /// <param name="context">Further text of the report (the notice around the address), read only when the address's own lines do not settle it.</param>
    public static BounceCause Decide(string? status, string? text, Func<string?>? context, bool delayed)
    {
        string? contextNormalized = null;
        string NormalizedContext() => contextNormalized ??= context?.Invoke() is { } c && !string.IsNullOrWhiteSpace(c) ? Normalize(c) : "";
        var normalized = string.IsNullOrWhiteSpace(text) ? "" : Normalize(text);
        var fromText = normalized.Length == 0 ? null : FromNormalized(normalized, null);
        if (fromText is null && NormalizedContext().Length > 0)
        {
            normalized = NormalizedContext();
            fromText = FromNormalized(normalized, null);
        }
        var fromStatus = FromStatus(status);
        SmtpStep? known = null;
        SmtpStep Step()
        {
            if (known is { } s)
                return s;
            var step = StepOf(normalized);
            if (step == SmtpStep.Unknown && NormalizedContext().Length > 0)
                step = StepOf(NormalizedContext());
            known = step;
            return step;
        }

        // A specific status code outweighs a generic "user unknown" or "refused" in the text.
        if (fromStatus is BounceCause.HasMoved or BounceCause.MailboxFull or BounceCause.MesgTooBig or BounceCause.ExceedLimit or BounceCause.Suspend
            && fromText is null or BounceCause.UserUnknown or BounceCause.Filtered)
            return fromStatus.Value;

        if (fromText == BounceCause.UserUnknown)
        {
            if (fromStatus == BounceCause.UserUnknown || HasDirectoryWording(normalized)
                || (NormalizedContext().Length > 0 && HasDirectoryWording(NormalizedContext())))
                return BounceCause.UserUnknown;
            return Step() switch
            {
                SmtpStep.RcptTo => BounceCause.UserUnknown,
                SmtpStep.MailFrom => BounceCause.Rejected,
                SmtpStep.Connect => BounceCause.Blocked,
                _ => BounceCause.Filtered,
            };
        }
        if (fromText is null or BounceCause.HostUnknown or BounceCause.Filtered or BounceCause.Rejected or BounceCause.SystemError
            or BounceCause.SecurityError or BounceCause.PolicyViolation)
        {
            var step = Step();
            // Refused at MAIL FROM: the sender was refused, whatever the words ("domain does not exist" is the sender's).
            if (step == SmtpStep.MailFrom && fromText is null or BounceCause.HostUnknown or BounceCause.Filtered)
                return BounceCause.Rejected;
            // Refused at the greeting: the sending server is blocked.
            if (step == SmtpStep.Connect)
                return BounceCause.Blocked;
        }
        if (fromText == BounceCause.HostUnknown && status is { Length: > 0 } && status[0] == '4')
            return BounceCause.NetworkError; // a DNS answer that may be different tomorrow
        if (fromText is { } t)
            return t;
        if (fromStatus is { } s)
            return s;
        if (delayed)
            return BounceCause.Expired;
        if (status is { Length: > 2 } && (status.StartsWith("5.7", StringComparison.Ordinal) || status.StartsWith("4.7", StringComparison.Ordinal)))
            return BounceCause.SecurityError;
        if (status is { Length: > 2 } && (status.StartsWith("5.6", StringComparison.Ordinal) || status.StartsWith("4.6", StringComparison.Ordinal)))
            return BounceCause.ContentError;
        return BounceCause.Undetermined;
    }

    /// <summary>Hard bounce: the address itself cannot receive mail.</summary>
    public static bool IsHard(BounceCause cause, string? status, string? text) => cause switch
    {
        BounceCause.UserUnknown or BounceCause.HostUnknown or BounceCause.HasMoved => true,
        // A domain that takes no mail at all (null MX, RFC 7505): hard unless the server called it temporary.
        BounceCause.NotAccept => status is null ? !LooksTemporary(text) : status[0] == '5',
        _ => false,
    };

    /// <summary>The text says the failure is temporary (a 4xx code or the word).</summary>
    public static bool LooksTemporary(string? text)
    {
        if (string.IsNullOrEmpty(text))
            return false;
        var code = SmtpCodes.FindStatus(text) ?? SmtpCodes.FindReplyCode(text);
        if (code is not null)
            return code[0] == '4';
        return TemporaryWording().IsMatch(Normalize(text));
    }

    /// <summary>The inferred status for a cause when the report states none: x.0.9yy (see <see cref="FailedRecipient.Status"/>).</summary>
    public static string InferredStatus(BounceCause cause, bool temporary, bool hasText)
    {
        var detail = cause switch
        {
            BounceCause.Undetermined => hasText ? "901" : "900",
            BounceCause.SyntaxError => "902",
            BounceCause.NoRelaying => "909",
            BounceCause.Filtered => temporary ? "924" : "910",
            BounceCause.UserUnknown => "911",
            BounceCause.HostUnknown => "912",
            BounceCause.HasMoved => "916",
            BounceCause.Rejected => "918",
            BounceCause.Suspend => "921",
            BounceCause.MailboxFull => "922",
            BounceCause.ExceedLimit => "923",
            BounceCause.AuthFailure => "926",
            BounceCause.SystemError => "930",
            BounceCause.SystemFull => "931",
            BounceCause.NotAccept => "932",
            BounceCause.MesgTooBig => "934",
            BounceCause.MailerError => "939",
            BounceCause.NetworkError => "944",
            BounceCause.TooManyConn => "945",
            BounceCause.Speeding => "946",
            BounceCause.Expired => "947",
            BounceCause.ContentError => "960",
            BounceCause.SecurityError => "970",
            BounceCause.Blocked => "971",
            BounceCause.PolicyViolation => "972",
            BounceCause.RequirePtr => "973",
            BounceCause.NotCompliantRfc => "974",
            BounceCause.BadReputation => "975",
            BounceCause.FailedStartTls => "976",
            BounceCause.SpamDetected => "980",
            BounceCause.VirusDetected => "981",
            _ => "900",
        };
        // Unknown users and hosts are never temporary; the convention has no 4.0.911 or 4.0.912.
        var klass = temporary && cause is not (BounceCause.UserUnknown or BounceCause.HostUnknown or BounceCause.HasMoved) ? '4' : '5';
        return $"{klass}.0.{detail}";
    }

    [GeneratedRegex(@"\btemporar|\bpersistent|will be retried|retry timeout exceeded|have been failing|still (?:be )?trying|warning message only|will (?:keep|continue) (?:trying|retrying)")]
    private static partial Regex TemporaryWording();

    private static bool IsClassOnly(string status) => status.EndsWith(".0.0", StringComparison.Ordinal);

    private const string SpamContentPattern = @"blacklisted (?:url|link)|(?:url|link|domain) in (?:the )?(?:message|body) (?:is )?(?:black|block)listed|uribl|surbl|" +
        @"message (?:content )?(?:looks like|classified as|considered|identified as|detected as) spam|spam (?:message|content) (?:detected|rejected)";

    [GeneratedRegex(SpamContentPattern)]
    private static partial Regex SpamContent();

    private const string NoSuchDomainPattern = @"(?:account or )?domain may not exist|domain name not found|no such domain|domain is not reachable|please check the domain";

    [GeneratedRegex(NoSuchDomainPattern)]
    private static partial Regex NoSuchDomain();

    [GeneratedRegex(@"(?<rcpt>after rcpt(?: to| command)|smtp:rcpt|\brcpt to:?\s*<|in reply to rcpt to|>>> rcpt to|rcpt to response|\[rcpt_to\]|did not like our rcpt to|does not like recipient|sent <<< rcpt to|" +
        @"-+ ?smtp command:? rcpt)|" +
        @"(?<data>after (?:end of )?data|in reply to (?:end of )?data command|>>> data|\[data\]|did not like our (?:final )?data|-+ ?smtp command:? data|after the data|" +
        @"end of data|body of message generated response)|" +
        @"(?<mail>after mail from|in reply to mail from|>>> mail from|\[mail_from\]|did not like our mail from|-+ ?smtp command:? mail)|" +
        @"(?<connect>after initial connection|in reply to (?:ehlo|helo) command|>>> (?:ehlo|helo)|my name was rejected|during greeting|greeting wait|smtp greeting|banner)")]
    private static partial Regex SessionStep();

    // "User unknown" wording of directory-based servers, which only say it of addresses they looked up.
    [GeneratedRegex(@"recipient name is not recognized|not listed in (?:the )?(?:domino directory|public name|name & address|address book)|invalid final delivery userid|" +
        @"\bunknown user: |user .{1,60} not listed|unknown recipient|no such recipient|no valid recipients|please check if (?:the )?address is correct|" +
        @"resolver\.adr\.recip|recipient address rejected: access denied|address couldn't be found|this user doesn't have an? .{1,60} account|" +
        @"the email account that you tried to reach does not exist|address not found|requested action not taken: mailbox unavailable|destinataire invalide")]
    private static partial Regex DirectoryWording();

    private const string LocalDeliveryPattern = @"procmail|x-unix|pipe to |command (?:died|failed|exited)|exited with|child status|mailer error|unknown mailer|program failed";

    [GeneratedRegex(LocalDeliveryPattern)]
    private static partial Regex LocalDelivery();

    private const string SenderRejectedPattern = @"sender (?:address |domain |e-?mail )?(?:was |is )?(?:rejected|refused|denied|invalid|blocked|not allowed|unknown|verify failed|verification failed)|" +
        @"domain of sender address|sender (?:domain )?(?:must|does not) (?:exist|resolve)|bad sender|invalid sender|from: domain is invalid|" +
        @"(?:envelope|from|sender) (?:address |domain )?.{0,40}(?:is not|isn't) (?:allowed|permitted|valid)|send mail as|sender verify|unverified sender|" +
        @"you are not (?:a )?member|not (?:a )?member of|(?:do not|don't) have permission to post|not allowed to post|permission to post|" +
        @"group .{0,60}(?:does not exist|may not exist|not exist)|メッセージを投稿する権限|グループ.{0,20}存在しない|googlegroups|groups\.google\.com";

    [GeneratedRegex(SenderRejectedPattern)]
    private static partial Regex SenderRejected();

    private const string DnsTroublePattern = @"name service error.{0,120}(?:try again|malformed|unexpected|timed out|timeout)|malformed or unexpected name server reply|" +
        @"dns (?:lookup )?(?:timeout|timed out)|temporary failure in name resolution|dns error.{0,80}(?:servfail|timeout)";

    [GeneratedRegex(DnsTroublePattern)]
    private static partial Regex DnsTrouble();

    // The patterns below are matched against lower-cased text with single spaces.

    private const string MailboxFullPattern = @"mailbox (is )?full|mailbox.{0,40}(exceed|over).{0,20}(quota|limit|size)|(over|exceed(ed|s)?( (the|his|her|their|storage|disk))?|full) quota|quota (exceeded|full|limit)|" +
        @"mail ?(box|folder) (is )?(full|over)|mailfolder is full|insufficient (disk |storage )?space|not enough (disk |storage )?space|disk quota|" +
        @"(account|inbox|mailbox|storage) (is )?(full|over capacity)|full mailbox|mailbox size limit|would exceed (the )?(mailbox|quota)|" +
        @"number of messages in recipient's mailbox exceeded|exceeded (his|her|their|the) (storage|mailbox)|bo[iî]te (aux lettres )?pleine|" +
        @"postfach (ist )?voll|buz[oó]n (est[aá] )?lleno|caixa postal (est[aá] )?cheia|casella (di posta )?piena|mailbox vol|" +
        @"user has exceeded|recipient('s)? (mailbox|account) (is )?over|too many messages in (this|the) mailbox|容量";

    [GeneratedRegex(MailboxFullPattern, RegexOptions.NonBacktracking)]
    private static partial Regex MailboxFull();

    private const string MesgTooBigPattern = @"message (size |length )?(is )?too (big|large)|(message|mail) size (limit )?exceed|exceeds? (the )?(maximum |max )?(allowed )?(message )?size|" +
        @"size limit exceeded|line limit exceeded|message length exceeds|too large for|message (is )?larger than|maximum message size|mail size limit|size exceeds";

    [GeneratedRegex(MesgTooBigPattern)]
    private static partial Regex MesgTooBig();

    private const string SuspendPattern = @"(account|mailbox|address|user)( has been| is| was)? (disabled|suspended|deactivated|inactive|locked|frozen|closed|discontinued)|" +
        @"(disabled|suspended|inactive|deactivated|expired) (account|mailbox|user)|is no longer (active|in service)|" +
        @"account (has )?expired|not an active (account|mailbox)|mailbox (is )?(temporarily )?unavailable due to|" +
        @"this account has been|temporarily disabled|receiving (is )?disabled|suspended due to|temporar(il)?y locked|\blocked\b";

    [GeneratedRegex(SuspendPattern, RegexOptions.NonBacktracking)]
    private static partial Regex Suspend();

    private const string HasMovedPattern = @"address has (been )?(changed|moved)|has moved|moved (permanently )?to|no longer (valid|available) at|" +
        @"user has moved|changed (his|her|their) (e-?mail )?address|no longer (works|employed|with)";

    [GeneratedRegex(HasMovedPattern)]
    private static partial Regex HasMoved();

    private const string NotAcceptPattern = @"null mx|does not accept (e-?)?mail|not accepting (any )?(e-?)?mail|accepts no mail|no mail(s)? (is |are )?accepted|domain (does not|doesn't) (accept|receive) mail|" +
        @"host does not accept|no mx (record )?found|no mx record|mx or srv record indicated no smtp service|indicated no smtp service";

    [GeneratedRegex(NotAcceptPattern)]
    private static partial Regex NotAccept();

    private const string RequirePtrPattern = @"reverse (dns|lookup|hostname|ip)|\bptr\b|rdns|cannot find your (reverse )?hostname|ip name (lookup|possibly forged)|" +
        @"(no|missing|invalid|fcrdns) (dns )?ptr|unresolvable (address|ip|host)|hostname (does not|doesn't) match|client host rejected: cannot find";

    [GeneratedRegex(RequirePtrPattern)]
    private static partial Regex RequirePtr();

    private const string AuthFailurePattern = @"\bspf\b|\bdkim\b|\bdmarc\b|sender policy framework|unauthenticated (e-?)?mail|authentication (results|checks?) fail|" +
        @"domain authentication|(not|fails?) (pass|passing) (authentication|spf)|does not pass";

    [GeneratedRegex(AuthFailurePattern)]
    private static partial Regex AuthFailure();

    private const string BadReputationPattern = @"(bad|poor|low|negative) (ip |sender |domain )?reputation|reputation (of|is)|ip reputation|sender score";

    [GeneratedRegex(BadReputationPattern)]
    private static partial Regex BadReputation();

    private const string BlockedPattern = @"black ?list|block ?list|blocked (using|by|ip|host|for)|\bip\b.{0,40}(block|ban|listed|denied|reject)|(is|are|was|been) listed (in|on|at|by) |spamhaus|" +
        @"\brbl\b|dnsbl|sorbs|spamcop|barracuda ?central|client host .{0,60}(blocked|rejected|refused)|your (ip|host|server|network)|invalid ip for sending|" +
        @"messages from .{0,40} weren't sent|contact your internet service provider|" +
        @"connection (refused|rejected|denied)( by)?.{0,30}(policy|blocked)|(dynamic|dial-?up|residential) (ip|address|pool)|" +
        @"use the smtp server of your isp|please use your isp|access denied for|refused to talk|not allowed to (send|connect)|" +
        @"rejected by .{0,20}(anti-?spam|firewall)|has been (temporarily )?(blocked|rate limited)|mail server .{0,30}blocked|" +
        @"\bblocked\b";

    [GeneratedRegex(BlockedPattern, RegexOptions.NonBacktracking)]
    private static partial Regex Blocked();

    private const string NoRelayingPattern = @"relay(ing)? (access )?(denied|not (permitted|allowed)|prohibited|refused)|(not|unable to) (permitted to )?relay|" +
        @"we do not relay|no relaying|cannot relay|relay not permitted|not a gateway|open relay";

    [GeneratedRegex(NoRelayingPattern)]
    private static partial Regex NoRelaying();

    private const string UserUnknownPattern = @"user (unknown|not found|doesn't exist|does not exist|not exist|invalid)|unknown (user|recipient|mailbox|address|e-?mail|local[- ]?part|account)|" +
        @"no such (user|mailbox|recipient|address|person|account|local user)|(mailbox|recipient|address|account|user|addressee)( name)? (does not|doesn't|did not|not) exist|" +
        @"(recipient|user|mailbox|address|account|addressee) (was )?not (found|known|listed|local|valid)|invalid (recipient|mailbox|address|user|e-?mail address)|" +
        @"not a (valid|known) (mailbox|recipient|user|address)|is not a known user|recip ?not ?found|recip(ient)?notfound|(recipient|user) <?[^\s@<>]+@[^\s<>]+?>? (was )?not found|wasn't found at|no mailbox (here )?by that name|" +
        @"mailbox (is )?unavailable|(address|recipient) unknown|addressee unknown|bad destination mailbox|not listed in (the )?(domino )?(directory|public name)|" +
        @"this user doesn't have a|the email account that you tried to reach does not exist|recipient address rejected: (access denied|invalid|user)|" +
        @"undeliverable address|no valid recipients|utilisateur inconnu|usuario desconocido|unbekannte?r? (empf[aä]nger|benutzer)|" +
        @"destinatario (desconocido|inexistente|sconosciuto)|(not|isn't|is not) (a )?(valid )?(local|registered) (user|address)|" +
        @"(email|e-mail) address (is )?(not valid|invalid|does not exist|could not be found)|couldn't be found|was not found|name is not recognized|" +
        @"recipient (name )?is not recognized|does not have an? (account|mailbox)|no account by that name|address is invalid|" +
        @"no mailbox|mailbox not found|mailbox (is )?invalid|not our customer|has no mailbox|the recipient.{0,20}(cannot be found|is unknown)|" +
        @"no valid recipient|not a valid recipient|bad recipient|invalid address|invalid final delivery userid|no such user here|recipient address rejected(?:$|[^:])|" +
        @"please check if (the )?address is correct";

    [GeneratedRegex(UserUnknownPattern, RegexOptions.NonBacktracking)]
    private static partial Regex UserUnknown();

    private const string HostUnknownPattern = @"host (unknown|not found)|unknown (host|domain)|domain (not found|does not exist|doesn't exist|unknown|is invalid)|no such domain|" +
        @"(host|domain) name (not found|lookup failed)|nxdomain|name or service not known|unrouteable (mail )?domain|unroutable domain|" +
        @"(invalid|bad) (destination )?(domain|host)|could not resolve|hostname (could not be|not) resolved|no route for (the )?domain|" +
        @"mx (points to|records point)|dns (lookup|error).{0,40}domain|domain .{0,60}(is not valid|does not resolve)|" +
        @"recipient domain .{0,30}(invalid|unknown)|bad destination system address|unrouteable address|name server: .{0,80}(no data known|host not found)|" +
        @"\b[a-z0-9-]+(\.[a-z0-9-]+)+ does not exist|domain may not exist|account or domain may not exist|dns lookup failure: host|dns type '?mx'? lookup of .{0,80}nxdomain";

    [GeneratedRegex(HostUnknownPattern, RegexOptions.NonBacktracking)]
    private static partial Regex HostUnknown();

    private const string VirusDetectedPattern = @"virus|malware|infected|trojan|worm detected|malicious";

    [GeneratedRegex(VirusDetectedPattern)]
    private static partial Regex VirusDetected();

    private const string SpamDetectedPattern = @"spam|junk mail|unsolicited|\buce\b|bulk (e-?)?mail|content (was )?(rejected|refused|blocked) .{0,40}(score|filter)|" +
        @"message (was )?classified as|looks like (spam|bulk)|suspicious (content|message)|phish";

    [GeneratedRegex(SpamDetectedPattern)]
    private static partial Regex SpamDetected();

    private const string PolicyViolationPattern = @"polic(y|ies)|violat|prohibited|not (allowed|permitted) (by|to)|local restrictions|restricted|compliance";

    [GeneratedRegex(PolicyViolationPattern)]
    private static partial Regex PolicyViolation();

    private const string RejectedPattern = @"sender (address |domain |e-?mail )?(was |is )?(rejected|refused|denied|invalid|blocked|not allowed|unknown|verify failed|verification failed)|" +
        @"(mail ?from|envelope (sender|from)|return[- ]path|your (e-?mail )?address) .{0,40}(rejected|refused|denied|invalid|not allowed)|" +
        @"domain of sender address|sender (domain )?(must|does not) (exist|resolve)|bad sender|invalid sender|rejected .{0,20}sender|" +
        @"you are not (a )?member|not (a )?member of|(do not|don't) have permission to post|group .{0,60}(does not exist|may not exist|not exist)|" +
        @"not allowed to post|posting (is )?(not allowed|restricted)|permission to post|メッセージを投稿する権限|グループ.{0,20}存在しない|" +
        @"sender verify|verify sender|unverified sender|from address|sender.{0,30}(not|isn't) (permitted|authorized|allowed)";

    [GeneratedRegex(RejectedPattern, RegexOptions.NonBacktracking)]
    private static partial Regex Rejected();

    private const string FilteredPattern = @"filter|refused by (the )?recipient|recipient (has )?(refused|rejected|blocked|does not accept)|rejected by (the )?(recipient|user|domain)|" +
        @"(message|mail) (was )?(rejected|refused|blocked) by|(not|no longer) accept(ing)? (mail|messages|e-?mail) from|" +
        @"blocked by (the )?recipient|denied by (the )?recipient|due to (the )?(recipient|user)'?s? (settings|preferences)|" +
        @"mailbox (is )?disabled|cannot (receive|accept) (mail|messages|e-?mail)|can't (receive|accept)|no longer (receiv|accept)|" +
        @"does not accept messages|access denied|not authorized|unauthori[sz]ed";

    [GeneratedRegex(FilteredPattern)]
    private static partial Regex Filtered();

    private const string ExpiredPattern = @"(message|delivery|it) (has |was )?expired|retry (time(out)?|period|limit) (exceeded|reached|expired)|retry timeout|" +
        @"gave up|giving up|give up|could not be delivered (for|within|in) \d+|too long in (the )?queue|delivery time expired|" +
        @"(has not|hasn't|could not|couldn't) been? delivered (for|in|within|after)|cannot send message for|maximum time|timeout (exceeded|reached)|" +
        @"been (queued|undeliverable|delayed) (for|too long)|i'm not going to try again|will not be retried|unable to deliver .{0,40}for \d+|" +
        @"no further (delivery )?attempts|delivery attempts? (will continue|has been suspended)|time ?out.{0,40}(retry|queue)|" +
        @"message (has been |was )?delayed|delayed|deferred|expired|did not accept our requests to connect|failed \d+ attempts|host not reachable|" +
        @"all hosts have been failing|not going to try again|aborted after \d";

    [GeneratedRegex(ExpiredPattern, RegexOptions.NonBacktracking)]
    private static partial Regex Expired();

    private const string TooManyConnPattern = @"too many (connections|concurrent|messages|recipients|sessions|mails)|rate limit|(sending|receiving) rate|throttl|" +
        @"exceeded .{0,30}(connections|rate)|connection limit|try (again )?later.{0,20}(many|limit)|too fast|too much mail";

    [GeneratedRegex(TooManyConnPattern)]
    private static partial Regex TooManyConn();

    private const string NetworkErrorPattern = @"connection (refused|timed out|reset|closed|dropped|lost)|could not connect|unable to connect|couldn't connect|" +
        @"network (is )?unreachable|no route to host|(mail|routing) loop|too many hops|hop count exceeded|lost connection|" +
        @"dns (lookup )?(fail|error|problem)|temporary failure in name resolution|host is down|no answer|" +
        @"did not (reply|respond)|timed out|time-?out|could not be contacted|was not (reachable|contacted)|" +
        @"connection to .{0,60}(failed|refused)|read error|broken pipe|all (relevant )?mx (hosts|records)|loops back to myself";

    [GeneratedRegex(NetworkErrorPattern)]
    private static partial Regex NetworkError();

    private const string SystemFullPattern = @"system (is )?full|mail system full|insufficient system storage|disk (is )?full|out of (disk|storage) space|server (is )?full";

    [GeneratedRegex(SystemFullPattern)]
    private static partial Regex SystemFull();

    private const string SystemErrorPattern = @"duplicated message-id|loop alert|system error|internal (server )?error|local (configuration )?error|configuration error|server error|" +
        @"service (not |un)?available|temporar(il)?y (unavailable|failure|error|problem)|out of memory|resources? (temporarily )?unavailable|" +
        @"(mail|message) system .{0,20}(error|problem|failure)|local error|unexpected error|try again later|service is unavailable|" +
        @"not available|unavailable";

    [GeneratedRegex(SystemErrorPattern)]
    private static partial Regex SystemError();

    private const string FailedStartTlsPattern = @"starttls|tls (is )?required|must issue a starttls|encryption required|requires? (a )?secure connection";

    [GeneratedRegex(FailedStartTlsPattern)]
    private static partial Regex FailedStartTls();

    private const string SecurityErrorPattern = @"authentication (failed|required|credentials)|auth(entication)? mechanism|not authenticated|access not allowed|" +
        @"security (policy|error)|certificate|encryption";

    [GeneratedRegex(SecurityErrorPattern)]
    private static partial Regex SecurityError();

    private const string ContentErrorPattern = @"content (error|rejected|not allowed)|header (error|too long|line too long)|illegal (character|header)|" +
        @"invalid (header|mime|character)|(mime|charset|encoding) (error|not supported)|8-?bit|line too long|message (header )?(is )?(malformed|corrupt)";

    [GeneratedRegex(ContentErrorPattern)]
    private static partial Regex ContentError();

    private const string SyntaxErrorPattern = @"malformed (?:address|recipient)|syntax error|command (not )?(recognized|unrecognized)|unrecognized command|bad command|command out of sequence|bad sequence of commands";

    [GeneratedRegex(SyntaxErrorPattern)]
    private static partial Regex SyntaxError();

    private const string MailerErrorPattern = @"mailer error|x-unix|procmail|pipe to|command (died|failed|exited)|program failed|unknown mailer|" +
        @"exited with|child status|deliver(y)? program|local delivery failed|mail delivery agent";

    [GeneratedRegex(MailerErrorPattern)]
    private static partial Regex MailerError();
}
